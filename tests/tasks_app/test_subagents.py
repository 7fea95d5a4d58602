"""Sub-agents on PostgreSQL (agents/subtasks.py over DjangoStore and the services): fan-out and
fan-in, exactly-once spawn across a crash, the lost doorbell caught by the sweeper, failure
policies, cascading cancel (with a child mid-run and a grandchild), and a child's frozen profile.
The LLM is the offline scripted model with a script per goal."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.scripted import ScriptedModel, validate_scenario
from agents.status import TaskStatus
from agents.types import LLMRequest, LLMResponse
from tasks_app.models import AgentTask, Event
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.services.audit import events_verify
from tasks_app.services.control import agent_task_cancel
from tasks_app.services.sweep import sweep
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tasks_app.store import DjangoStore
from tests.support.subtask_scenarios import fan_out_model

pytestmark = pytest.mark.django_db(transaction=True)


class Crash(BaseException):
    """Stands for the process dying at this point (nothing after it runs)."""


def row(task_id: str) -> AgentTask:
    return AgentTask.objects.get(pk=task_id)


def kids(task_id: str) -> list[AgentTask]:
    return list(AgentTask.objects.filter(parent_id=task_id).order_by("goal"))


def test_a_parent_fans_out_to_three_children_and_completes_with_their_results() -> None:
    parent = agent_task_create(goal="Write the report")
    agent_task_drive(task_id=str(parent.pk), model=fan_out_model())
    parent.refresh_from_db()
    assert parent.status == TaskStatus.COMPLETED, parent.status_reason
    children = kids(str(parent.pk))
    assert [c.status for c in children] == ["completed"] * 3
    assert [c.result["output"] for c in children] == ["part 0 done", "part 1 done", "part 2 done"]
    step0 = parent.steps.get(index=0)
    tool_message = next(m for m in step0.transcript if m.get("role") == "tool")
    for i in range(3):
        assert f"part {i} done" in tool_message["content"]
    assert Event.objects.filter(task=parent, type="child.ended").count() == 3
    # The parent's usage includes its children's tokens, cost and steps.
    own = Event.objects.filter(task=parent, type__in=["plan.created", "step.completed"])
    child_tokens = sum(c.prompt_tokens + c.completion_tokens for c in children)
    own_tokens = sum(e.payload["usage"]["prompt_tokens"] + e.payload["usage"]["completion_tokens"] for e in own)
    assert child_tokens > 0 and parent.prompt_tokens + parent.completion_tokens == own_tokens
    assert sum(e.payload["usage"].get("child_steps", 0) for e in own) == 3
    # Children's logs and the doorbells appended to the parent's stay on the hash chain.
    assert [r.ok for r in events_verify()] == [True] * 4


class CrashOnCommit(DjangoStore):
    """The worker dies after the spawn's transaction committed and before the tick's commit."""

    def commit(self, lease, commit):  # type: ignore[no-untyped-def]
        raise Crash()


class CrashInsideSpawn(DjangoStore):
    """The worker dies inside the spawn's transaction, after the children's rows were written."""

    def create_task(self, new):  # type: ignore[no-untyped-def]
        task_id = super().create_task(new)
        if new.parent_id is not None and AgentTask.objects.filter(parent_id=new.parent_id).count() == 2:
            raise Crash()
        return task_id


def test_spawn_is_exactly_once_across_a_crash_after_its_commit() -> None:
    parent = str(agent_task_create(goal="Write the report").pk)
    Runner(DjangoStore(), fan_out_model()).tick(parent)  # plan
    with pytest.raises(Crash):
        Runner(CrashOnCommit(), fan_out_model(), lease_seconds=0.2).tick(parent)
    assert len(kids(parent)) == 3  # the spawn committed with its journal row
    assert JournalRow.objects.get(key=f"{parent}/p1/s0/c1").status == "started"
    time.sleep(0.3)  # the dead worker's lease expires
    retried = Runner(DjangoStore(), fan_out_model()).tick(parent)
    assert retried.committed and retried.status == TaskStatus.WAITING and retried.journal_hits >= 1
    assert len(kids(parent)) == 3  # the resumed tick created nobody again
    agent_task_drive(task_id=parent, model=fan_out_model())
    assert row(parent).status == TaskStatus.COMPLETED
    assert len(kids(parent)) == 3


def test_a_crash_inside_the_spawn_leaves_neither_children_nor_journal_row() -> None:
    parent = str(agent_task_create(goal="Write the report").pk)
    Runner(DjangoStore(), fan_out_model()).tick(parent)
    with pytest.raises(Crash):
        Runner(CrashInsideSpawn(), fan_out_model(), lease_seconds=0.2).tick(parent)
    assert kids(parent) == []  # the transaction rolled back: two child rows were written, none is left
    assert not JournalRow.objects.filter(key=f"{parent}/p1/s0/c1").exists()
    time.sleep(0.3)
    agent_task_drive(task_id=parent, model=fan_out_model())
    assert row(parent).status == TaskStatus.COMPLETED
    assert len(kids(parent)) == 3


class LosesTheDoorbell(DjangoStore):
    """The child's process dies between its final commit and ringing its parent."""

    def operator_change(self, task_id, change):  # type: ignore[no-untyped-def]
        if change.event.type == "child.ended":
            raise Crash()
        return super().operator_change(task_id, change)


def test_a_lost_doorbell_is_recovered_by_the_sweep() -> None:
    parent = str(agent_task_create(goal="Write the report").pk)
    runner = Runner(DjangoStore(), fan_out_model(n=1), children_recheck=0.5)
    runner.tick(parent)
    spawned = runner.tick(parent)
    assert spawned.status == TaskStatus.WAITING
    child = spawned.spawned[0]
    with pytest.raises(Crash):
        Runner(LosesTheDoorbell(), fan_out_model(n=1)).run(child)
    assert row(child).status == TaskStatus.COMPLETED
    assert row(parent).status == TaskStatus.WAITING
    assert not Event.objects.filter(task_id=parent, type="child.ended").exists()
    time.sleep(0.6)  # the parent's re-check timer comes due
    report = sweep()
    assert parent in report.enqueued
    agent_task_drive(task_id=parent, model=fan_out_model(n=1))
    assert row(parent).status == TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("policy", "status"),
    [("fail_parent", TaskStatus.FAILED), ("continue", TaskStatus.COMPLETED), ("escalate", TaskStatus.REQUIRES_HUMAN)],
)
def test_child_failure_policies(policy: str, status: str) -> None:
    parent = str(agent_task_create(goal="Write the report").pk)
    agent_task_drive(task_id=parent, model=fan_out_model(policy=policy, failing=(2,)))
    record = row(parent)
    assert record.status == status, record.status_reason
    assert sorted(c.status for c in kids(parent)) == ["completed", "completed", "failed"]
    if status != TaskStatus.COMPLETED:
        assert "1 of 3 sub-agents did not complete" in record.status_reason
        assert "part 2 cannot be researched" in record.status_reason


def tree_scenario() -> dict[str, Any]:
    """A parent spawns two children; the first spawns a grandchild."""
    return validate_scenario(
        {
            "name": "tree",
            "plan": [{"title": "Split"}],
            "steps": {
                "0": [
                    {"tool": "spawn_subtasks", "arguments": {"children": [{"goal": "Branch A"}, {"goal": "Branch B"}]}},
                    {"final": "split done"},
                ]
            },
            "goals": {
                "Branch A": {
                    "plan": [{"title": "Split A"}],
                    "steps": {
                        "0": [
                            {"tool": "spawn_subtasks", "arguments": {"children": [{"goal": "Leaf under A"}]}},
                            {"final": "A done"},
                        ]
                    },
                },
                "Branch B": {"plan": [{"title": "Work B"}, {"title": "More B"}]},
                "Leaf": {"plan": [{"title": "Leaf work"}]},
            },
        }
    )


class CancelsDuringItsCall:
    """A model that, asked for Branch B's step, has the operator cancel the root meanwhile."""

    def __init__(self, root: str) -> None:
        self.inner = ScriptedModel(tree_scenario())
        self.name = "cancels"
        self.root = root

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "step" and "Branch B" in str(request.messages[1]["content"]):
            agent_task_cancel(task_id=self.root, reason="stop everything")
        return self.inner.complete(request)


def test_cancel_cascades_to_children_and_grandchildren_and_fences_a_child_mid_run() -> None:
    root = str(agent_task_create(goal="Root of the tree").pk)
    model = ScriptedModel(tree_scenario())
    runner = Runner(DjangoStore(), model)
    runner.tick(root)
    spawned = runner.tick(root)
    a, b = sorted(spawned.spawned, key=lambda i: row(i).goal)
    runner.tick(a)
    a_wait = runner.tick(a)  # A spawns the leaf and waits
    assert a_wait.status == TaskStatus.WAITING
    leaf = a_wait.spawned[0]
    runner.tick(b)  # B plans
    mid_run = Runner(DjangoStore(), CancelsDuringItsCall(root)).tick(b)  # cancelled during its step
    assert mid_run.fenced and not mid_run.committed
    for task_id in (root, a, b, leaf):
        assert row(task_id).status == TaskStatus.CANCELLED, task_id
    assert not Event.objects.filter(task_id=b, type="step.completed").exists()  # its step's work was discarded
    assert row(leaf).status_reason.startswith("its parent was cancelled")


def test_cancelling_one_child_wakes_its_waiting_parent() -> None:
    parent = str(agent_task_create(goal="Write the report").pk)
    runner = Runner(DjangoStore(), fan_out_model(n=2, policy="continue"))
    runner.tick(parent)
    children = runner.tick(parent).spawned
    agent_task_cancel(task_id=children[0], reason="not needed")
    assert Event.objects.filter(task_id=parent, type="child.ended", payload__status="cancelled").exists()
    agent_task_drive(task_id=parent, model=fan_out_model(n=2, policy="continue"))
    assert row(parent).status == TaskStatus.COMPLETED
    assert sorted(c.status for c in kids(parent)) == ["cancelled", "completed"]


def test_a_child_keeps_the_profile_config_as_of_its_spawn() -> None:
    scenario = validate_scenario(
        {
            "plan": [{"title": "Split"}],
            "steps": {
                "0": [
                    {"tool": "spawn_subtasks", "arguments": {"children": [{"goal": "Child work", "profile": "researcher"}]}},
                    {"final": "ok"},
                ]
            },
            "goals": {"Child work": {"plan": [{"title": "Research"}]}},
        }
    )
    profiles = {
        "default": AgentProfile(name="default"),
        "researcher": AgentProfile(name="researcher", system_prompt="version one"),
    }
    model = ScriptedModel(scenario)
    runner = Runner(DjangoStore(), model, profiles=profiles)
    parent = runner.create("Parent work")
    runner.tick(parent)
    child = runner.tick(parent).spawned[0]
    # The profile changes while the child has not run a step yet.
    profiles["researcher"] = AgentProfile(name="researcher", system_prompt="version two")
    runner.profiles["researcher"] = profiles["researcher"]
    seen: list[str] = []

    class Recording:
        name = "recording"

        def complete(self, request: LLMRequest) -> LLMResponse:
            seen.append(str(request.messages[0]["content"]))
            return model.complete(request)

    recorder = Runner(DjangoStore(), Recording(), profiles=profiles)
    recorder.run(child)
    assert row(child).profile_config["system_prompt"] == "version one"
    step_prompts = [s for s in seen if "executing one step" in s]
    assert step_prompts and all("version one" in s and "version two" not in s for s in step_prompts)


def test_a_zombie_spawns_nothing() -> None:
    parent = str(agent_task_create(goal="Write the report").pk)
    store = DjangoStore()
    Runner(store, fan_out_model()).tick(parent)
    lease = store.claim(parent, owner="zombie", lease_seconds=0.1)
    assert lease is not None
    time.sleep(0.2)
    assert store.claim(parent, owner="new-owner", lease_seconds=30) is not None  # took over
    from agents.errors import LeaseLost
    from agents.types import JournalEntry, NewTask

    entry = JournalEntry(key=f"{parent}/p1/s0/c1", kind="tool", name="spawn_subtasks", request_digest="d", status="started")
    with pytest.raises(LeaseLost):
        store.spawn_children(lease, entry, [NewTask(goal="x", parent_id=parent, task_id="6f1d4c2e-8a57-4c1b-9d0e-5b3a7c9e2f11")])
    assert kids(parent) == [] and not JournalRow.objects.filter(key=entry.key).exists()


def test_deadlines_a_parent_failed_on_its_deadline_cancels_its_children_and_a_failed_child_rings_its_parent() -> None:
    from datetime import timedelta

    from django.utils import timezone

    parent = str(agent_task_create(goal="Write the report").pk)
    runner = Runner(DjangoStore(), fan_out_model(n=2, policy="continue"))
    runner.tick(parent)
    first, second = runner.tick(parent).spawned
    AgentTask.objects.filter(pk=first).update(deadline=timezone.now() - timedelta(seconds=1))
    report = sweep()
    assert first in report.deadline_failed and row(first).status == TaskStatus.FAILED
    assert Event.objects.filter(task_id=parent, type="child.ended", payload__child=first).exists()
    assert row(parent).next_run_at is not None and row(parent).next_run_at <= timezone.now()  # rung

    AgentTask.objects.filter(pk=parent).update(deadline=timezone.now() - timedelta(seconds=1))
    report = sweep()
    assert parent in report.deadline_failed and row(parent).status == TaskStatus.FAILED
    assert row(second).status == TaskStatus.CANCELLED
    assert row(second).status_reason.startswith("its parent failed")
