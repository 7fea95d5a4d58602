"""The runner on the in-memory store: planning, steps, results, bad input and every escalation path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents.errors import InvalidInput, TransientError
from agents.events import rebuild
from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.runner import GOAL_MAX_CHARS, Runner, decide
from agents.scripted import ScriptedModel
from agents.status import TaskStatus
from agents.tools.registry import ToolContext, ToolRegistry
from agents.types import Build, LLMRequest, LLMResponse
from tests.conftest import make_scenario
from tests.support.clock import FakeClock


class Crash(BaseException):
    """Stands in for a worker dying mid-tick: not an Exception, so nothing cleans up after it."""


def counting_registry(calls: list[str], *, idempotent: bool = True, transactional: bool = True) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool(idempotent=idempotent, transactional=transactional, risk="write")
    def record(ctx: ToolContext, note: str) -> str:
        """Record a note (the test's side effect)."""
        calls.append(ctx.idempotency_key)
        return f"recorded {note}"

    return registry


def test_start_runs_a_goal_to_completion_and_reports_everything() -> None:
    store = InMemoryStore()
    runner = Runner(store, ScriptedModel(make_scenario(3)))
    result = runner.start("Write three things")
    assert result.status == "completed"
    assert [s.status for s in result.steps] == ["completed"] * 3
    assert [s.output for s in result.steps] == ["done: Step 0", "done: Step 1", "done: Step 2"]
    assert result.duration_s > 0
    assert result.ticks == 4  # one plan tick, three step ticks; completion rides on the last step
    latest = store.latest_checkpoint(result.task_id)
    assert latest is not None and result.checkpoint is not None
    assert (result.checkpoint.seq, result.checkpoint.event_seq) == (latest.seq, latest.event_seq)
    types = [e.type for e in store.events(result.task_id)]
    assert types == ["task.created", "plan.created"] + ["step.completed"] * 3 + ["task.completed"]
    assert result.result == {"output": "done: Step 2", "steps": 3}


def test_every_checkpoint_equals_the_previous_one_plus_the_events_between() -> None:
    store = InMemoryStore()
    result = Runner(store, ScriptedModel(make_scenario(4))).start("goal")
    checkpoints = store.checkpoints(result.task_id)
    previous = None
    for checkpoint in checkpoints:
        after = previous.event_seq if previous else 0
        between = [e for e in store.events(result.task_id, after_seq=after) if e.seq <= checkpoint.event_seq]
        assert rebuild(previous, between).to_json() == checkpoint.state
        previous = checkpoint
    assert rebuild(None, store.events(result.task_id)).to_json() == checkpoints[-1].state


@pytest.mark.parametrize(
    ("goal", "context", "message"),
    [
        ("", {}, "the goal is empty"),
        ("   ", {}, "the goal is empty"),
        ("x" * (GOAL_MAX_CHARS + 1), {}, "the limit is"),
        ("ok", ["not", "a", "dict"], "must be a JSON object"),
        ("ok", {"blob": "x" * 70_000}, "bytes as JSON"),
        ("ok", {"bad": object()}, "not JSON-serialisable"),
    ],
)
def test_bad_goals_are_refused_and_nothing_is_written(goal: str, context: object, message: str) -> None:
    store = InMemoryStore()
    with pytest.raises(InvalidInput, match=message):
        Runner(store, ScriptedModel(make_scenario(1))).create(goal, context)  # type: ignore[arg-type]
    assert store.due_tasks(limit=10) == []


class PlanModel:
    """Answers the plan request with fixed content; steps like the scripted model."""

    name = "plan-model"

    def __init__(self, content: str | None) -> None:
        self.content = content

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "plan":
            return LLMResponse(content=self.content)
        return LLMResponse(content="step done")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("", "empty plan"),
        ('{"steps": []}', "the plan has no steps"),
        ('{"steps": [{"title": ""}]}', "at least 1 character"),
        ('{"steps": [{"title": "a", "depends_on": [3]}]}', "the first step cannot depend on any step"),
        ('{"steps": [' + ",".join(['{"title": "a"}'] * 6) + "]}", "at most 5"),
    ],
)
def test_an_invalid_plan_escalates_with_the_reason(content: str, reason: str) -> None:
    store = InMemoryStore()
    result = Runner(store, PlanModel(content)).start("goal", max_steps=5)
    assert result.status == "requires_human"
    assert reason in result.reason
    assert store.events(result.task_id)[-1].type == "task.escalated"


def test_unknown_tools_and_invalid_arguments_go_back_to_the_model_as_errors() -> None:
    calls: list[str] = []
    scenario = make_scenario(
        1,
        tool_steps={
            0: [
                {"tool": "nope", "arguments": {}},
                {"tool": "record", "arguments": {"note": 5}},
                {"tool": "record", "arguments": {"note": "x", "extra": 1}},
                {"tool": "record", "arguments": {"note": "fine"}},
                {"final": "finished"},
            ]
        },
    )
    seen: list[str] = []

    class Spy(ScriptedModel):
        def complete(self, request: LLMRequest) -> LLMResponse:
            seen.extend(str(m["content"]) for m in request.messages if m.get("role") == "tool")
            return super().complete(request)

    store = InMemoryStore()
    result = Runner(store, Spy(scenario), counting_registry(calls)).start("goal")
    assert result.status == "completed"
    assert calls == [f"{result.task_id}/p1/s0/c7"]  # only the valid call ran
    errors = seen[-4:]
    assert "unknown tool 'nope'" in errors[0]
    assert "does not match" in errors[1]
    assert "unexpected argument 'extra'" in errors[2]
    assert errors[3] == '"recorded fine"'


def test_a_step_that_never_finishes_escalates_instead_of_looping() -> None:
    scenario = make_scenario(1, tool_steps={0: [{"tool": "list_files", "arguments": {}}] * 20 + [{"final": "x"}]})
    profiles = {"default": AgentProfile(name="default", max_model_calls_per_step=5, replan_on_failure=False)}
    result = Runner(InMemoryStore(), ScriptedModel(scenario), profiles=profiles).start("goal")
    assert result.status == "requires_human"
    assert "used its 5 model calls" in result.reason
    assert result.steps[0].status == "failed"


def test_a_poison_step_is_capped_by_the_attempt_counter() -> None:
    registry = ToolRegistry()

    @registry.tool(idempotent=True)
    def explode(ctx: ToolContext) -> str:
        """Always fails with a bug."""
        raise RuntimeError("boom")

    clock = FakeClock()
    store = InMemoryStore(clock)
    scenario = make_scenario(1, tool_steps={0: [{"tool": "explode", "arguments": {}}, {"final": "x"}]})
    runner = Runner(store, ScriptedModel(scenario), registry, clock=clock)
    task_id = runner.create("goal", max_attempts=3)
    runner.tick(task_id)  # plan
    for _ in range(3):
        with pytest.raises(RuntimeError, match="boom"):
            runner.tick(task_id)
        assert store.get_task(task_id).lease_owner is None  # released for the retry...
        clock.advance(2)  # ...after a short pause
    outcome = runner.tick(task_id)
    assert outcome.status == TaskStatus.REQUIRES_HUMAN
    record = store.get_task(task_id)
    assert "step 1 was attempted 3 times" in record.status_reason
    assert store.steps(task_id)[0].status == "failed"


def test_a_transient_error_releases_the_lease_for_a_later_retry() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock)

    class Flaky(ScriptedModel):
        failures = 1

        def complete(self, request: LLMRequest) -> LLMResponse:
            if self.failures:
                self.failures -= 1
                raise TransientError("busy", retry_after=30)
            return super().complete(request)

    runner = Runner(store, Flaky(make_scenario(1)), clock=clock)
    task_id = runner.create("goal")
    with pytest.raises(TransientError):
        runner.tick(task_id)
    assert store.get_task(task_id).lease_owner is None
    assert not runner.tick(task_id).claimed  # not due for 30 s
    clock.advance(31)
    assert runner.tick(task_id).committed


def test_a_resumed_step_reuses_journaled_calls_and_runs_the_tool_once() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock)
    calls: list[str] = []
    scenario = make_scenario(2, tool_steps={0: [{"tool": "record", "arguments": {"note": "a"}}, {"final": "done"}]})

    class DiesAfterTheTool(ScriptedModel):
        def complete(self, request: LLMRequest) -> LLMResponse:
            if any(m.get("role") == "tool" for m in request.messages):
                raise Crash()
            return super().complete(request)

    first = Runner(store, DiesAfterTheTool(scenario), counting_registry(calls), lease_seconds=10, clock=clock)
    task_id = first.create("goal")
    first.tick(task_id)  # plan
    with pytest.raises(Crash):
        first.tick(task_id)
    assert len(calls) == 1
    # The dead worker's lease is still held: nobody may claim until it expires.
    model = ScriptedModel(scenario)
    second = Runner(store, model, counting_registry(calls), lease_seconds=10, clock=clock)
    assert not second.tick(task_id).claimed
    clock.advance(11)
    outcome = second.tick(task_id)
    assert outcome.committed and outcome.journal_hits == 2  # the first model answer and the tool result
    assert len(calls) == 1  # the tool did not run again
    assert model.requests == 1  # only the call after the tool was new
    record = store.get_task(task_id)
    assert record.resume_count == 1
    assert "task.resumed" in [e.type for e in store.events(task_id)]
    assert second.run(task_id).status == "completed"


def test_a_non_idempotent_tool_with_an_unknown_outcome_goes_to_a_human() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock)
    calls: list[str] = []
    registry = counting_registry(calls, idempotent=False, transactional=False)
    original = registry.tools["record"]

    def send_then_die(ctx: ToolContext, note: str) -> str:
        calls.append(ctx.idempotency_key)
        raise Crash()

    registry.tools["record"] = replace(original, fn=send_then_die)
    scenario = make_scenario(1, tool_steps={0: [{"tool": "record", "arguments": {"note": "pay"}}, {"final": "paid"}]})
    runner = Runner(store, ScriptedModel(scenario), registry, lease_seconds=5, clock=clock)
    task_id = runner.create("goal")
    runner.tick(task_id)
    with pytest.raises(Crash):
        runner.tick(task_id)
    clock.advance(6)
    registry.tools["record"] = original
    outcome = runner.tick(task_id)
    assert outcome.status == TaskStatus.REQUIRES_HUMAN
    assert "outcome was never recorded" in store.get_task(task_id).status_reason
    assert len(calls) == 1  # never blindly retried


def test_a_changed_request_under_a_recorded_key_continues_from_the_record_and_says_so() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock)

    class DiesOnStep(ScriptedModel):
        def complete(self, request: LLMRequest) -> LLMResponse:
            response = super().complete(request)
            if request.purpose == "step" and any(m.get("role") == "tool" for m in request.messages):
                raise Crash()
            return response

    scenario = make_scenario(1, tool_steps={0: [{"tool": "list_files", "arguments": {}}, {"final": "x"}]})
    runner = Runner(store, DiesOnStep(scenario), lease_seconds=5, clock=clock)
    task_id = runner.create("goal")
    runner.tick(task_id)
    with pytest.raises(Crash):
        runner.tick(task_id)
    clock.advance(6)
    # The new code renders the request under the same key differently (a deploy renamed the step):
    # the recorded answer is a fact; the step continues from it and the change is recorded.
    changed = make_scenario(1, tool_steps={0: [{"tool": "list_files", "arguments": {}}, {"final": "x"}]})
    changed["plan"][0]["title"] = "Renamed"
    store._tasks[task_id].steps[0] = replace(store.step(task_id, 0), title="Renamed")  # type: ignore[attr-defined]
    build = Build(id="new-build", rank=2)
    outcome = Runner(store, ScriptedModel(changed), lease_seconds=5, clock=clock, build=build).tick(task_id)
    assert outcome.status == TaskStatus.COMPLETED and outcome.journal_hits >= 2
    [changed_event] = [e for e in store.events(task_id) if e.type == "code.changed"]
    assert changed_event.payload["build"] == "new-build" and changed_event.payload["count"] >= 1
    first = changed_event.payload["changes"][0]
    assert first["key"].endswith("/p1/s0/c0") and first["recorded"] != first["now"]
    assert store.get_task(task_id).builds == " new-build"


def test_a_zombie_is_fenced_and_writes_nothing() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock)
    scenario = make_scenario(2)
    zombie_calls: list[str] = []

    class Paused(ScriptedModel):
        """Stalls long enough (by the fake clock) for its lease to expire and be taken over."""

        def complete(self, request: LLMRequest) -> LLMResponse:
            if request.purpose == "step":
                clock.advance(11)
                assert Runner(store, ScriptedModel(scenario), lease_seconds=10, clock=clock).tick(task_id).committed
            zombie_calls.append(request.purpose)
            return super().complete(request)

    zombie = Runner(store, Paused(scenario), lease_seconds=10, clock=clock)
    task_id = zombie.create("goal")
    zombie.tick(task_id)  # plan
    before = [e.seq for e in store.events(task_id)]
    outcome = zombie.tick(task_id)
    assert outcome.fenced and not outcome.committed
    events = store.events(task_id)
    # Only the new owner's step landed: one step.completed for step 0, nothing from the zombie.
    assert [e.seq for e in events] == before + [before[-1] + 1, before[-1] + 2]
    assert [e.type for e in events[-2:]] == ["task.resumed", "step.completed"]
    assert all(e.worker != zombie.worker_id for e in events[len(before) :])


def test_decide_is_a_pure_function_of_state() -> None:
    from agents.events import TaskState

    assert decide(TaskState(), step_attempts=1, max_attempts=3).kind == "plan"
    planned = TaskState(plan_version=1, step_count=2, next_step=1, status=TaskStatus.RUNNING)
    assert decide(planned, step_attempts=1, max_attempts=3) == decide(planned, step_attempts=1, max_attempts=3)
    assert decide(planned, step_attempts=1, max_attempts=3).step_index == 1
    assert decide(planned, step_attempts=4, max_attempts=3).kind == "escalate"
    done = TaskState(plan_version=1, step_count=2, next_step=2, status=TaskStatus.RUNNING)
    assert decide(done, step_attempts=1, max_attempts=3).kind == "complete"
    assert decide(TaskState(status=TaskStatus.COMPLETED), step_attempts=1, max_attempts=3).kind == "none"


class WriteLog(InMemoryStore):
    """The in-memory store, noting the fenced journal writes and commits a tick makes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def journal_complete(self, lease, entry):  # type: ignore[no-untyped-def]
        self.writes.append(f"{entry.kind} {entry.key.rsplit('/', 1)[1]}")
        super().journal_complete(lease, entry)

    def journal_run(self, lease, entry, fn):  # type: ignore[no-untyped-def]
        self.writes.append(f"{entry.kind} {entry.key.rsplit('/', 1)[1]} run")
        return super().journal_run(lease, entry, fn)

    def commit(self, lease, commit):  # type: ignore[no-untyped-def]
        self.writes.append("commit " + " ".join(e.key.rsplit("/", 1)[1] for e in commit.journal))
        return super().commit(lease, commit)


def test_a_model_answer_is_written_before_the_call_it_asks_for_and_the_last_one_with_the_commit() -> None:
    store = WriteLog()
    calls: list[str] = []
    scenario = make_scenario(2, tool_steps={0: [{"tool": "record", "arguments": {"note": "a"}}, {"final": "done"}]})
    runner = Runner(store, ScriptedModel(scenario), counting_registry(calls))
    task_id = runner.create("goal")
    runner.tick(task_id)  # the plan: its answer rides on the commit
    assert store.writes == ["commit c0"]
    store.writes.clear()
    runner.tick(task_id)  # step 0: answer c0 asks for the tool (c1), answer c2 ends the step
    assert store.writes == ["llm c0", "tool c1 run", "commit c2"]
    store.writes.clear()
    runner.tick(task_id)  # step 1: one answer, no call: one write in all
    assert store.writes == ["commit c0"]
    recorded = [e.key.split("/", 1)[1] for e in store.journal_entries(task_id)]
    assert recorded == ["p1/plan/c0", "p1/s0/c0", "p1/s0/c1", "p1/s0/c2", "p1/s1/c0"]


def test_a_worker_dying_between_its_last_answer_and_the_commit_costs_one_more_model_call_and_nothing_else() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock)
    scenario = make_scenario(1)
    first = Runner(store, ScriptedModel(scenario), lease_seconds=10, clock=clock)
    task_id = first.create("goal")
    first.tick(task_id)  # plan

    def die(lease, commit):  # type: ignore[no-untyped-def]
        raise Crash()

    store.commit = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        first.tick(task_id)
    del store.commit
    assert store.journal_get(f"{task_id}/p1/s0/c0") is None  # the answer was to be written with the commit
    clock.advance(11)
    model = ScriptedModel(scenario)
    result = Runner(store, model, lease_seconds=10, clock=clock).run(task_id)
    assert result.status == "completed" and model.requests == 1  # asked once more
    assert store.journal_get(f"{task_id}/p1/s0/c0") is not None
