"""task_status and the timeline show which builds touched a task and what code changed under it."""

from __future__ import annotations

import json
import time
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from agents.runner import Runner
from agents.tools.registry import ToolContext, ToolRegistry
from agents.types import Build
from tasks_app.store import DjangoStore
from tests.support.queue_model import QueueModel, call, final, plan

pytestmark = pytest.mark.django_db(transaction=True)


class Crash(Exception):
    pass


def registry(description: str, crash: bool) -> ToolRegistry:
    tools = ToolRegistry()

    def note(ctx: ToolContext, text: str) -> str:
        if crash and text == "die":
            raise Crash()
        return text

    note.__doc__ = description
    tools.tool(idempotent=True)(note)
    return tools


def test_task_status_and_the_timeline_name_the_builds_and_the_code_change() -> None:
    store = DjangoStore()
    old = QueueModel(plan=[plan("write")], step=[call("note", {"text": "a"}), call("note", {"text": "die"}), final("ok")])
    first = Runner(store, old, registry("Keep a note.", crash=True), build=Build("build-one", 1))
    task_id = first.create("note twice")
    first.tick(task_id)
    with pytest.raises(Crash):
        first.tick(task_id)
    time.sleep(1.1)  # the crashed tick gave its lease back due in 1 s
    second = Runner(
        store, QueueModel(step=[final("ok")]), registry("Keep a short note.", crash=False), build=Build("build-two", 2)
    )
    assert second.run(task_id).status == "completed"

    out = StringIO()
    call_command("task_status", task_id, stdout=out)
    text = out.getvalue()
    assert "builds: build-one -> build-two" in text
    assert "code changed under the task" in text and "build build-two continued from 2 recorded answer(s)" in text
    data = json.loads(_status_json(task_id))
    assert data["builds"] == ["build-one", "build-two"] and data["code_changes"][0]["build"] == "build-two"

    admin = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("admin:tasks_app_agenttask_timeline", args=[task_id])).content.decode()
    assert "build-one → build-two" in page and "code.changed" in page


def _status_json(task_id: str) -> str:
    out = StringIO()
    call_command("task_status", task_id, "--json", stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])
@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_the_claim_records_builds_in_order_and_refuses_an_older_one(kind: str) -> None:
    from agents.errors import BuildSuperseded
    from agents.inmemory_store import InMemoryStore
    from agents.types import NewTask

    store = InMemoryStore() if kind == "memory" else DjangoStore(using="sqlite" if kind == "sqlite" else "default")
    task_id = store.create_task(NewTask(goal="roll"))
    lease = store.claim(task_id, owner="a", lease_seconds=0.01, build=Build("b1", 10))
    assert lease is not None and store.release(lease)
    lease = store.claim(task_id, owner="b", lease_seconds=0.01, build=Build("b2", 20))
    assert lease is not None
    record = store.get_task(task_id)
    assert (record.build_rank, record.builds.split(), record.step_attempts) == (20, ["b1", "b2"], 2)
    assert store.release(lease)
    with pytest.raises(BuildSuperseded):
        store.claim(task_id, owner="c", lease_seconds=0.01, build=Build("b1", 10))
    assert store.get_task(task_id).step_attempts == 2  # no attempt spent
    # An unranked runner (a test, a script) records nothing and is refused nothing.
    unranked = store.claim(task_id, owner="d", lease_seconds=0.01)
    assert unranked is not None and store.get_task(task_id).builds.split() == ["b1", "b2"]
    # A sub-agent starts on the build that spawned it: an older build does not take it either.
    child = store.create_task(NewTask(goal="child", parent_id=task_id))
    assert (store.get_task(child).build_rank, store.get_task(child).builds.split()) == (20, ["b2"])
    with pytest.raises(BuildSuperseded):
        store.claim(child, owner="e", lease_seconds=0.01, build=Build("b1", 10))
