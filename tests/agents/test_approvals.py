"""Approvals in the runner (issue 5, item 1) on the in-memory store: steps the planner flagged and
tool calls of a risky level wait for a person; the decision applies once, to that exact action."""

from __future__ import annotations

import json
from typing import Any

from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.tools.registry import ToolContext, ToolRegistry
from tests.support.operator import continue_task
from tests.support.queue_model import QueueModel, call, final, plan


def registry(world: list[str]) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool(idempotent=True, risk="external")
    def send_email(ctx: ToolContext, to: str, body: str) -> str:
        """Send an email."""
        world.append(f"{to}: {body}")
        return "sent"

    @tools.tool(idempotent=True, risk="read")
    def look(ctx: ToolContext) -> str:
        """Look around."""
        return "nothing"

    return tools


def runner_for(model: QueueModel, store: InMemoryStore, world: list[str], **profile: Any) -> Runner:
    return Runner(store, model, registry(world), profiles={"default": AgentProfile(name="default", **profile)})


def test_a_flagged_step_waits_then_runs_once_approved() -> None:
    store, world = InMemoryStore(), []
    model = QueueModel(plan=[plan("a", "delete the tenant", approval=(1,))])
    runner = runner_for(model, store, world)
    result = runner.start("goal")
    assert result.status == "requires_human" and model.by_purpose["step"] == 1
    approval = store.approval_get(result.task_id, f"{result.task_id}/p1/s1/step")
    assert approval is not None and approval.status == "pending" and approval.action["step"] == "delete the tenant"
    escalated = store.events(result.task_id)[-1].payload
    assert escalated["approval_id"] == approval.id and escalated["action"]["step"] == "delete the tenant"
    assert approval.id is not None
    store.approval_decide(approval.id, status="approved", by="alice")
    continue_task(store, result.task_id)
    assert runner.run(result.task_id).status == "completed" and model.by_purpose["step"] == 2


def test_a_rejected_step_is_replanned_with_the_reason() -> None:
    store, world = InMemoryStore(), []
    model = QueueModel(plan=[plan("a", "delete the tenant", approval=(1,))], replan=[plan("archive the tenant")])
    runner = runner_for(model, store, world)
    task_id = runner.start("goal").task_id
    approval = store.approval_get(task_id, f"{task_id}/p1/s1/step")
    assert approval is not None and approval.id is not None
    store.approval_decide(approval.id, status="rejected", by="bob", comment="archive it instead")
    continue_task(store, task_id)
    result = runner.run(task_id)
    assert result.status == "completed" and [s.title for s in result.steps] == ["a", "archive the tenant"]
    replan = next(r for r in model.requests if r.purpose == "replan")
    assert "rejected by bob: archive it instead" in replan.messages[1]["content"]


def test_a_risky_tool_call_waits_and_runs_with_the_edited_arguments() -> None:
    store, world = InMemoryStore(), []
    model = QueueModel(
        plan=[plan("mail")],
        step=[call("look"), call("send_email", {"to": "ceo@acme", "body": "hi"}), final("mailed")],
    )
    runner = runner_for(model, store, world, approval_risks=("external",))
    task_id = runner.start("goal").task_id
    assert world == [] and store.get_task(task_id).status == "requires_human"
    key = f"{task_id}/p1/s0/c3"  # model c0, look c1, model c2, send_email c3
    approval = store.approval_get(task_id, key)
    assert approval is not None and approval.action == {"tool": "send_email", "arguments": {"to": "ceo@acme", "body": "hi"}}
    assert approval.id is not None
    store.approval_decide(approval.id, status="approved", by="alice", edited_arguments={"to": "ops@acme", "body": "hi"})
    continue_task(store, task_id)
    assert runner.run(task_id).status == "completed"
    assert world == ["ops@acme: hi"]  # the edited call, once
    assert model.by_purpose["step"] == 3  # the calls before the approval were replayed from the journal


def test_a_rejected_tool_call_goes_back_to_the_model_as_an_error() -> None:
    store, world = InMemoryStore(), []
    model = QueueModel(plan=[plan("mail")], step=[call("send_email", {"to": "all@acme", "body": "x"}), final("gave up")])
    runner = runner_for(model, store, world, approval_risks=("external",))
    task_id = runner.start("goal").task_id
    approval = store.approval_get(task_id, f"{task_id}/p1/s0/c1")
    assert approval is not None and approval.id is not None
    store.approval_decide(approval.id, status="rejected", by="bob", comment="not to everyone")
    continue_task(store, task_id)
    assert runner.run(task_id).status == "completed" and world == []
    error = json.loads(model.requests[-1].messages[-1]["content"])["error"]
    assert "rejected this call (bob): not to everyone" in error


def test_a_decision_about_a_changed_action_is_stale_and_a_new_approval_is_asked() -> None:
    store, world = InMemoryStore(), []
    first = QueueModel(plan=[plan("mail")], step=[call("send_email", {"to": "a@acme", "body": "x"})])
    runner = runner_for(first, store, world, approval_risks=("external",))
    task_id = runner.start("goal").task_id
    key = f"{task_id}/p1/s0/c1"
    old = store.approval_get(task_id, key)
    assert old is not None and old.id is not None
    store.approval_decide(old.id, status="approved", by="alice")
    # The journal is the record of what the model proposed; a different proposal under the same
    # key (here: the model's answer is replaced in the journal, as a changed scenario would) must
    # not run on alice's decision.
    from agents.types import JournalEntry, LLMResponse, ToolCall

    recorded = store.journal_get(f"{task_id}/p1/s0/c0")
    assert recorded is not None
    changed = LLMResponse(content=None, tool_calls=(ToolCall("send_email", {"to": "b@acme", "body": "x"}, "c"),))
    store._journal[recorded.key] = JournalEntry(**{**recorded.__dict__, "result": changed.to_json()})  # noqa: SLF001
    continue_task(store, task_id)
    result = runner.run(task_id)
    assert result.status == "requires_human" and world == []
    new = store.approval_get(task_id, key)
    assert new is not None and new.status == "pending" and new.id != old.id
    assert new.action["arguments"]["to"] == "b@acme"


def _wake(store: InMemoryStore, task_id: str) -> None:
    """What the decision service does after a decision: the task runs again."""
    continue_task(store, task_id)
