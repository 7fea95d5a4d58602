"""Unknown outcomes and compensation (issue 4, items 5 and 6) on the in-memory store.

The "outside world" is a list the tools append to; a Crash (a BaseException nothing catches)
stands in for a worker dying at the worst moment.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.tools.control import ABORT_TASK
from agents.tools.registry import ToolContext, ToolRegistry
from agents.types import JSON, LLMResponse
from tests.support.clock import FakeClock
from tests.support.queue_model import QueueModel, call, final, plan


class Crash(BaseException):
    pass


def payments_registry(world: list[str], *, reconcile: bool, crash_after_send: list[bool]) -> ToolRegistry:
    registry = ToolRegistry()

    def find(ctx: ToolContext, arguments: dict[str, JSON]) -> JSON | None:
        sent = [w for w in world if w == f"charge {ctx.idempotency_key}"]
        return "charged (found by reconciliation)" if sent else None

    @registry.tool(idempotent=False, risk="external", reconcile=find if reconcile else None)
    def charge(ctx: ToolContext, amount: int) -> str:
        """Charge the customer (an external call)."""
        world.append(f"charge {ctx.idempotency_key}")
        if crash_after_send and crash_after_send.pop(0):
            raise Crash()  # the request went out; the worker died before recording the answer
        return "charged"

    return registry


def run_with_a_crash_after_sending(*, reconcile: bool, crash_after_send: list[bool]) -> tuple[Any, list[str], QueueModel]:
    world: list[str] = []
    clock = FakeClock()
    store = InMemoryStore(clock)
    registry = payments_registry(world, reconcile=reconcile, crash_after_send=crash_after_send)
    model = QueueModel(plan=[plan("charge")], step=[call("charge", {"amount": 5}), final("paid")])
    runner = Runner(store, model, registry, lease_seconds=10, clock=clock)
    task_id = runner.create("take the payment")
    runner.tick(task_id)  # plan
    with pytest.raises(Crash):
        runner.tick(task_id)
    clock.now += timedelta(seconds=11)  # the dead worker's lease expires
    return runner.run(task_id), world, model


def test_an_unknown_outcome_without_a_reconciliation_hook_waits_for_a_person() -> None:
    result, world, _ = run_with_a_crash_after_sending(reconcile=False, crash_after_send=[True])
    assert result.status == "requires_human" and "outcome was never recorded" in result.reason
    assert len(world) == 1  # not retried blindly


def test_the_reconciliation_hook_finds_the_effect_and_it_is_not_repeated() -> None:
    result, world, model = run_with_a_crash_after_sending(reconcile=True, crash_after_send=[True])
    assert result.status == "completed"
    assert len(world) == 1
    tool_message = model.requests[-1].messages[-1]
    assert tool_message["role"] == "tool" and "found by reconciliation" in tool_message["content"]


def test_when_reconciliation_finds_nothing_the_call_runs_for_the_first_time() -> None:
    world: list[str] = []
    clock = FakeClock()
    store = InMemoryStore(clock)
    registry = payments_registry(world, reconcile=True, crash_after_send=[])
    model = QueueModel(plan=[plan("charge")], step=[call("charge", {"amount": 5}), final("paid")])
    runner = Runner(store, model, registry, lease_seconds=10, clock=clock)
    task_id = runner.create("take the payment")
    runner.tick(task_id)
    # The worker died after recording "started" and before sending anything.
    lease = store.claim(task_id, owner="dead", lease_seconds=10)
    assert lease is not None
    from agents.types import JournalEntry, digest

    key = f"{task_id}/p1/s0/c1"
    started = JournalEntry(key, "tool", "charge", digest({"tool": "charge", "arguments": {"amount": 5}}), "started")
    store.journal_begin(lease, started)
    clock.now += timedelta(seconds=11)
    assert runner.run(task_id).status == "completed"
    assert world == [f"charge {key}"]  # ran exactly once


def booking_registry(world: list[str], *, crash_in_undo: list[bool]) -> ToolRegistry:
    registry = ToolRegistry()

    def cancel(ctx: ToolContext, arguments: dict[str, JSON], output: JSON) -> str:
        world.append(f"cancel {arguments['what']} ({output})")
        if crash_in_undo and crash_in_undo.pop(0):
            raise Crash()
        return "cancelled"

    @registry.tool(idempotent=True, risk="external", undo=cancel)
    def book(ctx: ToolContext, what: str) -> str:
        """Book something."""
        world.append(f"book {what}")
        return f"booking of {what}"

    return registry


def test_an_aborted_task_undoes_its_side_effects_in_reverse_order_once() -> None:
    world: list[str] = []
    clock = FakeClock()
    store = InMemoryStore(clock)
    registry = booking_registry(world, crash_in_undo=[False, True])  # die during the second undo
    model = QueueModel(
        plan=[plan("hotel", "flight", "visa")],
        step=[
            call("book", {"what": "hotel"}),
            final("hotel booked"),
            call("book", {"what": "flight"}),
            final("flight booked"),
            call(ABORT_TASK, {"reason": "the visa was refused"}),
        ],
    )
    runner = Runner(store, model, registry, lease_seconds=10, clock=clock)
    task_id = runner.create("plan the trip")
    with pytest.raises(Crash):
        runner.run(task_id)
    clock.now += timedelta(seconds=11)
    result = runner.run(task_id)
    assert result.status == "aborted" and "the visa was refused" in result.reason
    # The flight's undo ran once before the crash and was journaled; the hotel's ran twice:
    # once when the worker died inside it (its journal entry never completed), once after.
    assert world == [
        "book hotel",
        "book flight",
        "cancel flight (booking of flight)",
        "cancel hotel (booking of hotel)",
        "cancel hotel (booking of hotel)",
    ]
    compensated = next(e.payload for e in store.events(task_id) if e.type == "task.compensated")
    assert [k.rsplit("/", 2)[-2] for k in compensated["undone"]] == ["s1", "s0"]
    assert store.journal_get(f"{compensated['undone'][0]}/undo") is not None


def test_a_step_that_fails_for_good_compensates_under_a_profile_that_asks() -> None:
    world: list[str] = []
    registry = booking_registry(world, crash_in_undo=[])
    model = QueueModel(
        plan=[plan("hotel", "flight")],
        step=[call("book", {"what": "hotel"}), final("ok"), LLMResponse(content=None, refusal="no flights")],
    )
    profiles = {"default": AgentProfile(name="default", replan_on_failure=False, compensate_on_failure=True)}
    result = Runner(InMemoryStore(), model, registry, profiles=profiles).start("plan the trip")
    assert result.status == "aborted" and "step 2 failed for good" in result.reason
    assert world == ["book hotel", "cancel hotel (booking of hotel)"]
    # Without the profile's consent the effects stay and a person decides.
    world.clear()
    model = QueueModel(
        plan=[plan("hotel", "flight")],
        step=[call("book", {"what": "hotel"}), final("ok"), LLMResponse(content=None, refusal="no flights")],
    )
    profiles = {"default": AgentProfile(name="default", replan_on_failure=False)}
    result = Runner(InMemoryStore(), model, registry, profiles=profiles).start("plan the trip")
    assert result.status == "requires_human" and world == ["book hotel"]
