"""Deploys with tasks in flight, in one process (issue 15, items 2-4; the worker tests are in
tests/integration/test_deploys.py).

A step is interrupted after a recorded side effect; a runner with changed code resumes it. The
recorded answers are facts: the step continues from them, the side effect never runs again, and a
code.changed event names the keys whose requests now render differently. Only a recorded call to a
tool this build no longer has escalates, by name. A task a newer build has ticked is never claimed
by an older one. Identical calls in one answer run once.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents import events as ev
from agents.errors import BuildSuperseded
from agents.inmemory_store import InMemoryStore
from agents.runner import Runner
from agents.tools.registry import Tool, ToolContext, ToolRegistry
from agents.types import Build, LLMResponse, ToolCall, Usage
from tests.support.queue_model import QueueModel, call, final, plan


class Crash(Exception):
    """The worker dies (after the tool's effect is recorded, before the step commits)."""


def world_registry(effects: list[str]) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool(risk="write")
    def send(ctx: ToolContext, to: str, body: str) -> str:
        "Send a message (not idempotent: each run is one more message)."
        effects.append(f"{to}:{body}")
        return f"sent #{len(effects)}"

    @tools.tool(idempotent=True)
    def die(ctx: ToolContext) -> str:
        "Kill the worker."
        raise Crash()

    @tools.tool(idempotent=True)
    def unused(ctx: ToolContext) -> str:
        "Never called."
        return ""

    return tools


def interrupted(effects: list[str]) -> tuple[InMemoryStore, str, QueueModel]:
    """A task whose step sent a message and then lost its worker; old build (rank 1)."""
    store = InMemoryStore()
    model = QueueModel(plan=[plan("notify")], step=[call("send", {"to": "ops", "body": "hi"}), call("die"), final("done")])
    runner = Runner(store, model, world_registry(effects), lease_seconds=0.05, build=Build("old", 1))
    task_id = runner.create("notify ops")
    runner.tick(task_id)
    with pytest.raises(Crash):
        runner.tick(task_id)
    assert effects == ["ops:hi"]
    return store, task_id, model


def changed_registry(effects: list[str], *, drop: str) -> ToolRegistry:
    tools = world_registry(effects)
    send = tools.tools["send"]
    tools.register(replace(send, description=send.description + " Mind the recipient."))  # an edited description
    tools.register(
        Tool(name="added", description="A new tool.", parameters={"type": "object", "properties": {}}, fn=lambda ctx: "")
    )
    del tools.tools[drop]
    # The resumed step's recorded `die` answered; now it lets the step go on.
    tools.register(replace(tools.tools.get("die") or world_registry([]).tools["die"], fn=lambda ctx: "alive"))
    return tools


def resume(store: InMemoryStore, task_id: str, registry: ToolRegistry, answers: list[LLMResponse]) -> Runner:
    import time

    time.sleep(1.1)  # the crashed tick gave its lease back due in 1 s
    model = QueueModel(step=answers)
    runner = Runner(store, model, registry, build=Build("new", 2))
    runner.run(task_id)
    return runner


def test_new_code_continues_from_the_recorded_conversation_and_says_what_changed() -> None:
    effects: list[str] = []
    store, task_id, _ = interrupted(effects)
    # The new build: an edited tool description, a tool added, an unused tool removed. Its model is
    # asked only past the recorded conversation.
    runner = resume(store, task_id, changed_registry(effects, drop="unused"), [final("new")])
    assert [r.purpose for r in runner.model_for(None).requests] == ["step"]  # type: ignore[arg-type, attr-defined]
    task = store.get_task(task_id)
    assert task.status == "completed", task.status_reason
    assert effects == ["ops:hi"]  # the recorded side effect did not run again
    events = store.events(task_id)
    [changed] = [e for e in events if e.type == ev.CODE_CHANGED]
    assert changed.payload["build"] == "new"
    keys = [c["key"] for c in changed.payload["changes"]]
    assert keys[0] == f"{task_id}/p1/s0/c0" and all(c["recorded"] != c["now"] for c in changed.payload["changes"])
    assert task.builds.split() == ["old", "new"]
    assert not [e for e in events if e.type == ev.TASK_ESCALATED]


def test_a_recorded_call_to_a_removed_tool_escalates_naming_it() -> None:
    effects: list[str] = []
    store, task_id, _ = interrupted(effects)
    resume(store, task_id, changed_registry(effects, drop="send"), [final("never asked")])
    task = store.get_task(task_id)
    assert task.status == "requires_human"
    assert f"the recorded call {task_id}/p1/s0/c1 to tool 'send' cannot be honoured: this build has no tool 'send'" in (
        task.status_reason
    )
    assert effects == ["ops:hi"]


def test_an_older_build_leaves_a_task_a_newer_build_has_ticked() -> None:
    store = InMemoryStore()
    model = QueueModel(plan=[plan("a", "b")])
    new = Runner(store, model, build=Build("new", 7))
    old = Runner(store, model, build=Build("old", 3))
    task_id = new.create("roll")
    assert new.tick(task_id).decision == "plan"
    attempts = store.get_task(task_id).step_attempts
    with pytest.raises(BuildSuperseded):
        old.tick(task_id)
    assert store.get_task(task_id).step_attempts == attempts  # no attempt spent
    assert old.run(task_id).status == "running"  # the old runner stops; the task did not move
    assert new.run(task_id).status == "completed"
    assert store.get_task(task_id).builds.split() == ["new"]


def test_identical_calls_in_one_answer_run_once_and_both_are_answered() -> None:
    effects: list[str] = []
    twice = LLMResponse(
        content=None,
        tool_calls=(
            ToolCall(name="send", arguments={"to": "ops", "body": "hi"}, call_id="a"),
            ToolCall(name="send", arguments={"body": "hi", "to": "ops"}, call_id="b"),  # same call, other key order
            ToolCall(name="send", arguments={"to": "dev", "body": "hi"}, call_id="c"),
        ),
        finish_reason="tool_calls",
        usage=Usage(10, 5),
    )
    store = InMemoryStore()
    model = QueueModel(plan=[plan("notify")], step=[twice, final("done")])
    result = Runner(store, model, world_registry(effects)).start("notify")
    assert result.status == "completed"
    assert effects == ["ops:hi", "dev:hi"]
    tool_rows = [e for e in store.journal_entries(result.task_id) if e.kind == "tool"]
    assert [e.key.rsplit("/", 1)[1] for e in tool_rows] == ["c1", "c3"]  # one row for the pair, keys in place
    answers = {m["tool_call_id"]: m["content"] for m in model.requests[-1].messages if m["role"] == "tool"}
    assert answers == {"a": '"sent #1"', "b": '"sent #1"', "c": '"sent #2"'}


def test_a_recorded_answer_this_build_cannot_read_escalates_naming_its_key() -> None:
    effects: list[str] = []
    store, task_id, _ = interrupted(effects)
    key = f"{task_id}/p1/s0/c0"
    recorded = store.journal_get(key)
    assert recorded is not None
    store._journal[key] = replace(recorded, result={"tool_calls": [{"arguments": {}}]})  # type: ignore[attr-defined]  # no name
    resume(store, task_id, world_registry(effects), [final("never asked")])
    task = store.get_task(task_id)
    assert task.status == "requires_human"
    assert f"the model answer recorded under {key} cannot be read by this build" in task.status_reason
    assert effects == ["ops:hi"]
