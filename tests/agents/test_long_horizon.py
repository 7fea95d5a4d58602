"""LongHorizonRunner, the library facade (agents/long_horizon.py), on the in-memory store: no Django involved."""

from __future__ import annotations

import uuid

import pytest

from agents import LongHorizonResult, LongHorizonRunner, ToolLoop
from agents.errors import InvalidInput, TaskNotFound
from agents.events import DEADLINE_EXCEEDED
from agents.inmemory_store import InMemoryStore
from agents.scripted import ScriptedModel
from agents.tools.registry import ToolContext, ToolRegistry
from agents.types import LLMRequest, LLMResponse
from tests.conftest import make_scenario
from tests.support.clock import FakeClock


class Recording:
    """A model that notes the purpose of each request it is asked, then lets the scripted model answer."""

    def __init__(self, inner: ScriptedModel, name: str) -> None:
        self.inner, self.name, self.purposes = inner, name, []

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.purposes.append(request.purpose)
        return self.inner.complete(request)


def make(store: InMemoryStore, clock: FakeClock | None = None, **options: object) -> LongHorizonRunner:
    options.setdefault("plan_model", ScriptedModel(make_scenario(3)))
    return LongHorizonRunner(
        task_id="nightly-report",
        goal="Write the nightly report",
        checkpoint_store=store,
        clock=clock or FakeClock(),
        **options,  # type: ignore[arg-type]
    )


def test_start_records_the_task_and_tick_advances_one_unit_at_a_time() -> None:
    store = InMemoryStore()
    runner = make(store, event_log=store)
    started = runner.start(initial_context={"day": "monday"})
    assert isinstance(started, LongHorizonResult)
    assert (started.status, started.steps, started.checkpoint, started.done) == ("pending", (), None, False)
    assert store.get_task(started.store_task_id).context == {"day": "monday"}
    planned = runner.tick()
    assert (planned.status, planned.steps, planned.ticks, planned.checkpoint.seq) == ("running", (), 1, 1)  # type: ignore[union-attr]
    first = runner.tick()
    assert [(s.index, s.status, s.attempts) for s in first.steps] == [(0, "completed", 1)]
    final = runner.run()
    assert (final.status, final.done, final.ticks) == (
        "completed",
        True,
        2,
    )  # two steps; the last one completes the task in its commit
    assert [s.title for s in final.steps] == ["Step 0", "Step 1", "Step 2"]
    assert final.checkpoint is not None and final.checkpoint.seq == 4
    assert runner.tick().ticks == 0  # an ended task is not claimed again


def test_resume_picks_up_from_the_last_checkpoint_in_a_new_runner() -> None:
    store = InMemoryStore()
    model = ScriptedModel(make_scenario(3))
    make(store, plan_model=model).start()
    make(store, plan_model=model).tick()  # plans; this runner object is then gone
    resumed = LongHorizonRunner.resume(task_id="nightly-report", checkpoint_store=store, plan_model=model)
    assert resumed.goal == "Write the nightly report"
    result = resumed.run()
    assert result.status == "completed"
    assert [s.attempts for s in result.steps] == [1, 1, 1]  # nothing ran twice
    with pytest.raises(TaskNotFound):
        LongHorizonRunner.resume(task_id="never-started", checkpoint_store=store, plan_model=model)


def test_task_ids_names_map_to_one_uuid_and_uuids_are_kept() -> None:
    store = InMemoryStore()
    a, b = make(store), make(store)
    assert (
        a.store_task_id == b.store_task_id == str(uuid.uuid5(uuid.UUID("5b0c6a52-3f0e-4d6e-9a43-6f2b1c0d7e11"), "nightly-report"))
    )
    given = str(uuid.uuid4())
    runner = LongHorizonRunner(task_id=given, goal="g", checkpoint_store=store, plan_model=ScriptedModel(make_scenario(1)))
    assert runner.start().store_task_id == given
    with pytest.raises(InvalidInput, match="task_id"):
        LongHorizonRunner(task_id=" ", goal="g", checkpoint_store=store, plan_model=ScriptedModel(make_scenario(1)))


def test_starting_twice_changes_nothing_and_another_goal_is_refused() -> None:
    store = InMemoryStore()
    runner = make(store)
    runner.start(initial_context={"n": 1})
    runner.tick()
    again = make(store).start(initial_context={"n": 2})
    assert (again.status, store.get_task(again.store_task_id).context) == ("running", {"n": 1})
    other = LongHorizonRunner(
        task_id="nightly-report", goal="Something else", checkpoint_store=store, plan_model=ScriptedModel(make_scenario(3))
    )
    with pytest.raises(InvalidInput, match="another goal"):
        other.start()


def test_the_event_log_must_be_the_checkpoint_store() -> None:
    with pytest.raises(InvalidInput, match="event_log"):
        make(InMemoryStore(), event_log=InMemoryStore())
    with pytest.raises(InvalidInput, match="max_step_duration_seconds"):
        make(InMemoryStore(), max_step_duration_seconds=0)


def test_plans_go_to_the_plan_model_and_steps_to_the_step_executor_with_its_tools() -> None:
    calls: list[str] = []
    tools = ToolRegistry()

    @tools.tool(idempotent=True, risk="read")
    def lookup(ctx: ToolContext, key: str) -> str:
        """Look a key up."""
        calls.append(key)
        return "42"

    scenario = make_scenario(2, tool_steps={0: [{"tool": "lookup", "arguments": {"key": "answer"}}, {"final": "42"}]})
    planner, stepper = Recording(ScriptedModel(scenario), "planner"), Recording(ScriptedModel(scenario), "stepper")
    store = InMemoryStore()
    runner = make(store, plan_model=planner, step_executor=ToolLoop(model=stepper, tools=tools))
    runner.start()
    result = runner.run()
    assert result.status == "completed"
    assert planner.purposes == ["plan"]
    assert stepper.purposes == ["step", "step", "step"]  # step 0 asks twice (the tool call, then its answer)
    assert calls == ["answer"]
    assert result.steps[0].output == "42"


def test_a_step_past_its_duration_escalates_to_a_person() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    runner = make(store, clock, max_step_duration_seconds=600)
    runner.start()
    runner.tick()  # the plan: step 1 is current from now
    clock.advance(599)
    assert runner.tick().steps[0].status == "completed"  # in time; step 2 is current from now
    clock.advance(600)
    late = runner.tick()
    assert (late.status, late.done, late.ticks) == ("requires_human", True, 0)
    assert late.reason.startswith("step 2 passed its deadline")
    [event] = [e for e in store.events(late.store_task_id) if e.type == DEADLINE_EXCEEDED]
    assert event.payload["kind"] == "step"
    assert store.get_task(late.store_task_id).profile_config["step_deadline_minutes"] == 10  # type: ignore[index]


def test_the_overall_deadline_aborts_the_task() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    runner = make(store, clock, overall_deadline_seconds=3600)
    runner.start()
    runner.tick()
    clock.advance(3600)
    result = runner.tick()
    assert (result.status, result.done, result.ticks) == ("aborted", True, 0)
    assert "deadline" in result.reason
    assert result.duration_s == 3600.0  # creation to the end, by the store's clock
    # A resumed runner that is given no limits finds the task ended all the same.
    resumed = LongHorizonRunner.resume(
        task_id="nightly-report", checkpoint_store=store, plan_model=ScriptedModel(make_scenario(3))
    )
    assert resumed.tick().status == "aborted"
