"""The Store conformance suite's part for sub-agents and their doorbell, on every Store (in memory,
DjangoStore on SQLite and on PostgreSQL, PostgresStore): spawn_children is fenced and idempotent, a created task
keeps its parent, and wake_if_waiting wakes a waiting task only."""

from __future__ import annotations

import time

import pytest

from agents import events as ev
from agents.errors import LeaseLost
from agents.status import TaskStatus
from agents.subtasks import child_id
from agents.types import JournalEntry, NewTask, OperatorChange
from tests.tasks_app.test_store_conformance import simple_commit, store  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])


def spawn_entry(key: str) -> JournalEntry:
    return JournalEntry(
        key=key, kind="tool", name="spawn_subtasks", request_digest="d", status="started", result={"wait": {"kind": "children"}}
    )


def test_spawn_children_is_idempotent_and_keeps_the_parent(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    parent = store.create_task(NewTask(goal="parent"))
    lease = store.claim(parent, owner="w1", lease_seconds=30)
    key = f"{parent}/p1/s0/c1"
    children = [NewTask(goal=f"child {i}", parent_id=parent, task_id=child_id(key, i)) for i in range(3)]
    store.spawn_children(lease, spawn_entry(key), children)
    store.spawn_children(lease, spawn_entry(key), children)  # a retry: nothing new
    assert sorted(store.children(parent)) == sorted(c.task_id for c in children)
    assert store.get_task(children[0].task_id).parent_id == parent
    assert store.get_task(children[0].task_id).goal == "child 0"
    entry = store.journal_get(key)
    assert entry is not None and entry.status == "started" and entry.result == {"wait": {"kind": "children"}}
    assert [e.type for e in store.events(children[1].task_id)] == ["task.created"]  # created once


def test_a_stale_lease_spawns_nothing(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    parent = store.create_task(NewTask(goal="parent"))
    stale = store.claim(parent, owner="zombie", lease_seconds=0.05)
    time.sleep(0.1)
    assert store.claim(parent, owner="w2", lease_seconds=30) is not None
    key = f"{parent}/p1/s0/c1"
    with pytest.raises(LeaseLost):
        store.spawn_children(stale, spawn_entry(key), [NewTask(goal="c", parent_id=parent, task_id=child_id(key, 0))])
    assert store.children(parent) == [] and store.journal_get(key) is None


def test_wake_if_waiting_wakes_only_a_waiting_task(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    waiting = store.create_task(NewTask(goal="waits"))
    lease = store.claim(waiting, owner="w1", lease_seconds=30)
    commit = simple_commit(1, status=TaskStatus.WAITING, runnable=False)
    assert store.commit(lease, commit).value == "committed"
    running = store.create_task(NewTask(goal="runs"))
    assert store.claim(running, owner="w2", lease_seconds=30) is not None
    assert waiting not in store.due_tasks(limit=10)
    ring = OperatorChange(
        event=ev.new_event(ev.CHILD_ENDED, {"child": "x", "status": "completed"}),
        from_statuses=TaskStatus.ACTIVE,
        wake_if_waiting=True,
    )
    store.operator_change(waiting, ring)
    store.operator_change(running, ring)
    assert waiting in store.due_tasks(limit=10)
    assert running not in store.due_tasks(limit=10)  # leased and running: left alone
    assert store.events(running)[-1].type == "child.ended"
