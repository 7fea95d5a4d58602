"""Sub-agents on the in-memory store (agents/subtasks.py): fan-out, fan-in, budgets, failure
policies, the doorbell and its re-check timer, exactly-once spawn. The LLM is the offline
scripted model with a script per goal; every committed checkpoint must equal a replay of the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.events import rebuild
from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.status import TaskStatus
from agents.subtasks import child_id
from tests.support.operator import continue_task
from tests.support.subtask_scenarios import child_goal, fan_out_model

START = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def make(profiles: dict[str, AgentProfile] | None = None, **model_kwargs: object) -> tuple[InMemoryStore, Runner, Clock]:
    clock = Clock()
    store = InMemoryStore(clock=clock)
    runner = Runner(store, fan_out_model(**model_kwargs), profiles=profiles, clock=clock, children_recheck=60)
    return store, runner, clock


def drive(store: InMemoryStore, runner: Runner, *, max_ticks: int = 200) -> int:
    """Tick every due task until none is due (what the in-process driver does)."""
    ticks = 0
    while ticks < max_ticks:
        due = store.due_tasks(limit=50)
        if not due:
            return ticks
        for task_id in due:
            if runner.tick(task_id).committed:
                cp = store.latest_checkpoint(task_id)
                assert cp is not None
                assert rebuild(None, store.events(task_id)).to_json() == cp.state
            ticks += 1
    raise AssertionError("still ticking")


def test_fan_out_and_fan_in() -> None:
    store, runner, _ = make()
    parent = runner.create("Write the report")
    first = runner.tick(parent)  # plan
    spawn = runner.tick(parent)  # step 0: spawns three children and waits
    assert first.decision == "plan"
    assert spawn.status == TaskStatus.WAITING and len(spawn.spawned) == 3
    assert sorted(store.children(parent)) == sorted(spawn.spawned)
    for child in spawn.spawned:
        record = store.get_task(child)
        assert record.parent_id == parent and record.status == TaskStatus.PENDING
    drive(store, runner)
    assert store.get_task(parent).status == TaskStatus.COMPLETED
    step0 = store.step(parent, 0)
    assert step0.status == "completed"
    # The step received the children's results as the tool's result.
    tool_message = next(m for m in step0.transcript if m.get("role") == "tool")
    assert "part 0 done" in str(tool_message["content"]) and '"failed": 0' in str(tool_message["content"])
    types = [e.type for e in store.events(parent)]
    assert types.count("child.ended") == 3
    for i in range(3):
        assert store.get_task(child_id(f"{parent}/p1/s0/c1", i)).goal == child_goal(i)


def test_parent_usage_includes_children() -> None:
    store, runner, _ = make()
    parent = runner.create("Write the report")
    drive(store, runner)
    kids = store.children(parent)
    kid_tokens = 0
    kid_steps = 0
    for kid in kids:
        state = store.latest_checkpoint(kid).state  # type: ignore[union-attr]
        kid_tokens += state["prompt_tokens"] + state["completion_tokens"]
        kid_steps += state["steps_run"]
    parent_state = store.latest_checkpoint(parent).state  # type: ignore[union-attr]
    own = [e for e in store.events(parent) if e.type in ("plan.created", "step.completed")]
    own_tokens = sum(e.payload["usage"]["prompt_tokens"] + e.payload["usage"]["completion_tokens"] for e in own)
    assert kid_tokens > 0 and kid_steps == 3
    assert parent_state["prompt_tokens"] + parent_state["completion_tokens"] == own_tokens
    step_usage = next(e for e in own if e.type == "step.completed" and e.payload["index"] == 0).payload["usage"]
    assert step_usage["child_steps"] == 3
    assert parent_state["steps_run"] == 2 + 3  # its own two steps and its children's three


def test_child_budget_is_a_share_of_the_parents_remaining_budget() -> None:
    profiles = {"default": AgentProfile(name="default", max_tokens=10_000, max_cost_usd=0, max_steps=21)}
    store, runner, _ = make(profiles=profiles, shares=[0.5, 0.25, 0.25])
    parent = runner.create("Write the report")
    runner.tick(parent)
    spawn = runner.tick(parent)
    used = sum(
        e.payload["usage"]["prompt_tokens"] + e.payload["usage"]["completion_tokens"]
        for e in store.events(parent)
        if e.type == "plan.created"
    )
    # The step's first model call (the one asking to spawn) was spent too before the spawn.
    asked = store.journal_get(f"{parent}/p1/s0/c0")
    assert asked is not None
    used += asked.result["usage"]["prompt_tokens"] + asked.result["usage"]["completion_tokens"]
    configs = [store.get_task(c).profile_config for c in spawn.spawned]
    remaining = 10_000 - used
    assert [c["max_tokens"] for c in configs] == [remaining // 2, remaining // 4, remaining // 4]  # type: ignore[index]
    # Steps: 21 - 0 run - 1 (the parent's current step) = 20, shared 10/5/5.
    assert [c["max_steps"] for c in configs] == [10, 5, 5]  # type: ignore[index]


def test_child_share_exhausted_escalates_the_child() -> None:
    # The parent has 400 tokens left after planning; a 0.05 share is ~20 tokens: less than a plan.
    profiles = {"default": AgentProfile(name="default", max_tokens=500)}
    store, runner, _ = make(profiles=profiles, n=1, shares=[0.05])
    parent = runner.create("Write the report")
    runner.tick(parent)
    spawn = runner.tick(parent)
    kid = spawn.spawned[0]
    cap = store.get_task(kid).profile_config["max_tokens"]  # type: ignore[index]
    drive(store, runner)
    record = store.get_task(kid)
    assert record.status == TaskStatus.REQUIRES_HUMAN and "token budget exhausted" in record.status_reason
    kid_state = store.latest_checkpoint(kid).state  # type: ignore[union-attr]
    # Budgets are checked before each model call: at most the call that crossed the line is over.
    assert kid_state["prompt_tokens"] + kid_state["completion_tokens"] >= cap
    assert kid_state["steps_run"] == 0  # it never got to run a step on the parent's money
    assert store.get_task(parent).status == TaskStatus.WAITING  # a person decides about the child


@pytest.mark.parametrize("policy", ["fail_parent", "continue", "escalate"])
def test_failure_policies(policy: str) -> None:
    store, runner, _ = make(policy=policy, failing=(1,))
    parent = runner.create("Write the report")
    drive(store, runner)
    kids = [store.get_task(k) for k in store.children(parent)]
    assert sorted(k.status for k in kids) == ["completed", "completed", "failed"]
    record = store.get_task(parent)
    if policy == "fail_parent":
        assert record.status == TaskStatus.FAILED
        assert "1 of 3 sub-agents did not complete" in record.status_reason
        assert store.step(parent, 0).status == "failed"
    elif policy == "continue":
        assert record.status == TaskStatus.COMPLETED
        tool_message = next(m for m in store.step(parent, 0).transcript if m.get("role") == "tool")
        assert '"failed": 1' in str(tool_message["content"]) and "cannot be researched" in str(tool_message["content"])
    else:
        assert record.status == TaskStatus.REQUIRES_HUMAN
        assert "1 of 3 sub-agents did not complete" in record.status_reason
        # A person resumes it: the step goes on with the failure as data and the task completes.
        continue_task(store, parent, by="alice")
        drive(store, runner)
        assert store.get_task(parent).status == TaskStatus.COMPLETED
        assert len(store.children(parent)) == 3  # nobody spawned twice


def test_lost_doorbell_is_caught_by_the_recheck_timer() -> None:
    store, runner, clock = make(n=1)
    parent = runner.create("Write the report")
    runner.tick(parent)
    spawn = runner.tick(parent)
    kid = spawn.spawned[0]
    # The child runs on a runner whose store loses the doorbell (its process died after the commit).
    deaf = Runner(store, fan_out_model(n=1), clock=clock)
    deaf_ring = store.operator_change

    def lose_child_ended(task_id: str, change):  # type: ignore[no-untyped-def]
        if change.event.type == "child.ended":
            raise KeyboardInterrupt("the process died before ringing the parent")
        return deaf_ring(task_id, change)

    store.operator_change = lose_child_ended  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        deaf.run(kid)
    store.operator_change = deaf_ring  # type: ignore[method-assign]
    assert store.get_task(kid).status == TaskStatus.COMPLETED
    assert store.get_task(parent).status == TaskStatus.WAITING
    assert store.due_tasks(limit=10) == []  # nothing due: the doorbell was lost
    clock.now += timedelta(seconds=61)  # the parent's re-check timer
    assert store.due_tasks(limit=10) == [parent]
    drive(store, runner)
    assert store.get_task(parent).status == TaskStatus.COMPLETED


def test_a_child_that_ends_before_the_parent_commits_its_wait_is_not_missed() -> None:
    store, runner, _ = make(n=1)
    parent = runner.create("Write the report")
    runner.tick(parent)
    real_commit = store.commit
    kid_runner = Runner(store, fan_out_model(n=1))

    def child_finishes_first(lease, commit):  # type: ignore[no-untyped-def]
        # Between the parent's check of its child and its commit, the child runs to its end.
        if lease.task_id == parent and commit.status == TaskStatus.WAITING and not getattr(child_finishes_first, "done", False):
            child_finishes_first.done = True  # type: ignore[attr-defined]
            store.commit = real_commit  # type: ignore[method-assign]
            kid_runner.run(store.children(parent)[0])
        return real_commit(lease, commit)

    store.commit = child_finishes_first  # type: ignore[method-assign]
    runner.tick(parent)
    store.commit = real_commit  # type: ignore[method-assign]
    # The child's doorbell moved the parent's log: the parent's commit conflicted and re-checked.
    drive(store, runner)
    assert store.get_task(parent).status == TaskStatus.COMPLETED


def test_spawn_is_exactly_once_when_the_tick_dies_after_the_spawn() -> None:
    store, runner, clock = make()
    parent = runner.create("Write the report")
    runner.tick(parent)
    real_commit = store.commit

    def die(lease, commit):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("killed after the spawn's transaction, before the tick's commit")

    store.commit = die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        runner.tick(parent)
    store.commit = real_commit  # type: ignore[method-assign]
    assert len(store.children(parent)) == 3
    clock.now += timedelta(seconds=400)  # the dead tick's lease expires
    retried = Runner(store, fan_out_model(), clock=clock).tick(parent)
    assert retried.committed and retried.status == TaskStatus.WAITING
    assert len(store.children(parent)) == 3  # the retry spawned nobody again
    drive(store, runner)
    assert store.get_task(parent).status == TaskStatus.COMPLETED
    assert len(store.children(parent)) == 3


def test_bad_spawn_arguments_go_back_to_the_model() -> None:
    from agents.scripted import ScriptedModel, validate_scenario

    scenario = validate_scenario(
        {
            "plan": [{"title": "Split"}],
            "steps": {
                "0": [
                    {
                        "tool": "spawn_subtasks",
                        "arguments": {"children": [{"goal": "a", "budget_share": 0.8}, {"goal": "b", "budget_share": 0.5}]},
                    },
                    {"tool": "spawn_subtasks", "arguments": {"children": [{"goal": "a", "profile": "nope"}]}},
                    {"final": "gave up splitting"},
                ]
            },
        }
    )
    store = InMemoryStore()
    runner = Runner(store, ScriptedModel(scenario))
    parent = runner.create("Split the work")
    runner.run(parent)
    assert store.get_task(parent).status == TaskStatus.COMPLETED
    assert store.children(parent) == []
    tools = [str(m["content"]) for m in store.step(parent, 0).transcript if m.get("role") == "tool"]
    assert "add up to 1.3" in tools[0] and "unknown profile 'nope'" in tools[1]


def test_sub_agents_nest_only_so_deep() -> None:
    from agents.scripted import ScriptedModel, validate_scenario
    from agents.subtasks import MAX_DEPTH

    # Every task spawns one child with the same goal: the chain stops at the depth limit.
    scenario = validate_scenario(
        {
            "plan": [{"title": "Delegate"}],
            "steps": {
                "0": [
                    {
                        "tool": "spawn_subtasks",
                        "arguments": {"children": [{"goal": "Delegate again"}], "on_child_failure": "continue"},
                    },
                    {"final": "delegated"},
                ]
            },
        }
    )
    store = InMemoryStore()
    runner = Runner(store, ScriptedModel(scenario))
    root = runner.create("Delegate again")
    drive(store, runner)
    chain = [root]
    while store.children(chain[-1]):
        chain.append(store.children(chain[-1])[0])
    assert len(chain) == MAX_DEPTH + 1
    assert all(store.get_task(t).status == TaskStatus.COMPLETED for t in chain)
    deepest = store.step(chain[-1], 0)
    refused = next(m for m in deepest.transcript if m.get("role") == "tool")
    assert "may not spawn more" in str(refused["content"])


def test_a_task_with_sub_agents_replays_in_a_regression_run() -> None:
    from agents.regression import regress

    store, runner, _ = make()
    parent = runner.create("Write the report")
    drive(store, runner)
    assert store.get_task(parent).status == TaskStatus.COMPLETED
    report = regress(store, parent, runner_factory=lambda s, m, t: Runner(s, m, t))
    assert not report.diverged, report.to_json()
    assert report.replay_status == TaskStatus.COMPLETED
    assert report.tool_calls >= 1  # the spawn was answered from the recording: nobody was spawned
