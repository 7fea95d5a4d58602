"""Audit integrity: every store writes a hash chain over each task's events; verify_events finds the
first event changed behind the runtime's back; on PostgreSQL a trigger refuses UPDATE and DELETE."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from agents import events as ev
from agents.audit import verify_chain
from agents.inmemory_store import InMemoryStore
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.types import OperatorChange
from tasks_app.models import AgentTask, Event
from tasks_app.services.audit import agent_task_purge, events_verify
from tasks_app.services.sweep import sweep
from tasks_app.store import DjangoStore
from tests.conftest import make_scenario


def run_task(store) -> str:  # type: ignore[no-untyped-def]
    runner = Runner(store, ScriptedModel(make_scenario(3)))
    result = runner.start("Audit me", {"k": 1})
    assert result.status == "completed"
    return result.task_id


def test_the_in_memory_store_chains_events_and_a_changed_one_breaks_the_chain_at_its_seq() -> None:
    store = InMemoryStore()
    task_id = run_task(store)
    events = store.events(task_id)
    assert len(events) >= 6 and verify_chain(task_id, events) is None
    assert all(e.prev_hash == p.hash for p, e in zip(events, events[1:], strict=False))
    tampered = [replace(e, payload={**e.payload, "output": "forged"}) if e.seq == 4 else e for e in events]
    problem = verify_chain(task_id, tampered)
    assert problem is not None and problem.seq == 4
    assert verify_chain(task_id, [e for e in events if e.seq != 3]).seq == 3  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])
@pytest.mark.parametrize("using", ["default", "sqlite"])
def test_both_orm_paths_chain_ticks_operator_changes_and_the_task_row(using: str) -> None:
    # "default" is PostgreSQL (the one-statement commit), "sqlite" the ORM transaction.
    store = DjangoStore(using=using)
    task_id = run_task(store)
    store.operator_change(
        task_id,
        OperatorChange(event=ev.new_event(ev.TASK_STUCK, {"since": "now"}), from_statuses=frozenset({"completed"})),
    )
    events = store.events(task_id)
    assert verify_chain(task_id, events) is None
    task = store.get_task(task_id)
    assert (task.last_event_seq, task.last_event_hash) == (events[-1].seq, events[-1].hash)


@pytest.mark.django_db(transaction=True)
def test_verify_events_passes_untampered_and_fails_at_exactly_the_tampered_seq() -> None:
    first, second = run_task(DjangoStore()), run_task(DjangoStore())
    out = StringIO()
    call_command("verify_events", "--all", stdout=out)
    assert out.getvalue().count(": ok (") == 2

    # A superuser can switch triggers off for the session: the chain still tells.
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                "UPDATE tasks_app_event SET payload = jsonb_set(payload, '{output}', '\"forged\"') "
                "WHERE task_id = %s AND seq = 4",
                [first],
            )
            assert cursor.rowcount == 1
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
    out = StringIO()
    with pytest.raises(CommandError, match=f"1 of 2 event logs do not verify; first: task {first} at event 4"):
        call_command("verify_events", first, second, stdout=out)
    assert f"task {first}: BROKEN at event 4: its content does not match its hash" in out.getvalue()
    assert f"task {second}: ok" in out.getvalue()
    call_command("verify_events", second, stdout=StringIO())  # the other task still verifies


@pytest.mark.django_db(transaction=True)
def test_verify_events_finds_a_removed_event_and_a_removed_tail() -> None:
    task_id = run_task(DjangoStore())
    last = AgentTask.objects.get(pk=task_id).last_event_seq
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute("DELETE FROM tasks_app_event WHERE task_id = %s AND seq IN (2, %s)", [task_id, last])
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
    [report] = events_verify(task_ids=[task_id])
    assert (report.broken_seq, report.ok) == (2, False)


@pytest.mark.django_db(transaction=True)
def test_verify_events_refuses_bad_arguments_and_unknown_ids() -> None:
    with pytest.raises(CommandError, match="give task ids or --all"):
        call_command("verify_events", stdout=StringIO())
    with pytest.raises(CommandError, match="not-a-task"):
        call_command("verify_events", "not-a-task", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_the_trigger_refuses_update_and_delete_of_events_on_postgresql() -> None:
    task_id = run_task(DjangoStore())
    with pytest.raises(DatabaseError, match="events are append-only: UPDATE of event 1"), transaction.atomic():
        Event.objects.filter(task_id=task_id, seq=1).update(payload={"goal": "rewritten"})
    with pytest.raises(DatabaseError, match="events are append-only: DELETE"), transaction.atomic():
        Event.objects.filter(task_id=task_id).delete()
    # Deleting the task would take its log with it: refused the same way (Django deletes the events first).
    with pytest.raises(DatabaseError, match="events are append-only: DELETE"), transaction.atomic():
        AgentTask.objects.filter(pk=task_id).delete()
    assert Event.objects.filter(task_id=task_id).count() == AgentTask.objects.get(pk=task_id).last_event_seq
    call_command("verify_events", task_id, stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_purging_a_whole_task_is_the_one_way_its_events_go() -> None:
    task_id = run_task(DjangoStore())
    kept = run_task(DjangoStore())
    events = Event.objects.filter(task_id=task_id).count()
    assert agent_task_purge(task_id=task_id) >= events + 1
    assert not AgentTask.objects.filter(pk=task_id).exists() and not Event.objects.filter(task_id=task_id).exists()
    # The opt-in was transaction-local: the next delete is refused again.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Event.objects.filter(task_id=kept).delete()


@pytest.mark.django_db(transaction=True)
def test_the_sweepers_stalled_event_and_the_ticks_after_it_stay_on_the_chain() -> None:
    store = DjangoStore()
    runner = Runner(store, ScriptedModel(make_scenario(3)))
    task_id = runner.create("Stall me")
    runner.run(task_id, max_ticks=2)
    assert store.claim(task_id, owner="dead-host:1:x", lease_seconds=300) is not None
    AgentTask.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    assert sweep().stalled == [task_id]
    assert runner.resume(task_id).status == "completed"  # the next tick chains to the sweeper's event
    events = store.events(task_id)
    assert ev.TASK_STALLED in [e.type for e in events] and verify_chain(task_id, events) is None
    call_command("verify_events", task_id, stdout=StringIO())
