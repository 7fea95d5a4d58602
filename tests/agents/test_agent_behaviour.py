"""Issue 3's agent behaviour on the in-memory store: repairs, bad outputs, budgets, profiles,
self-review, drift checks, re-plans, the agent ending its task, notes and transcripts.

The model is a queue of scripted answers per purpose (plan, replan, step, review, drift), so each
test says exactly what the model does and asserts what the harness made of it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.errors import InvalidInput
from agents.events import rebuild
from agents.inmemory_store import InMemoryStore
from agents.profiles import BUILTIN_PROFILES, AgentProfile, load_profiles
from agents.runner import Runner
from agents.types import LLMResponse, Usage
from tests.support.queue_model import QueueModel, call, final, plan, verdict


def run(model: QueueModel, store: InMemoryStore | None = None, **profile: Any) -> tuple[Any, InMemoryStore]:
    store = store or InMemoryStore()
    profiles = {"default": AgentProfile(name="default", **profile)}
    result = Runner(store, model, profiles=profiles).start("ship the thing")
    return result, store


def event_types(store: InMemoryStore, task_id: str) -> list[str]:
    return [e.type for e in store.events(task_id)]


def assert_replayable(store: InMemoryStore, task_id: str) -> None:
    assert rebuild(None, store.events(task_id)).to_json() == store.latest_checkpoint(task_id).state  # type: ignore[union-attr]


# --- planning --------------------------------------------------------------------------------


def test_a_malformed_plan_gets_a_repair_prompt_and_the_repaired_plan_runs() -> None:
    model = QueueModel(plan=["{not json", plan("a", "b")])
    result, store = run(model)
    assert result.status == "completed"
    repair = model.requests[1]
    assert repair.purpose == "plan" and repair.messages[-2] == {"role": "assistant", "content": "{not json"}
    assert "not valid JSON" in repair.messages[-1]["content"]
    assert repair.response_schema is not None and repair.response_schema["name"] == "plan"
    created = store.events(result.task_id)[1]
    assert created.type == "plan.created" and created.payload["usage"]["model_calls"] == 2
    assert store.journal_get(f"{result.task_id}/p1/plan/c1") is not None


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (LLMResponse(content='{"steps": [{"title": "a"', finish_reason="length"), "cut off"),
        (LLMResponse(content=None, refusal="I can't help with that"), "refused to plan"),
        (LLMResponse(content=""), "empty plan"),
        (LLMResponse(content='{"steps": [{"title": "a", "colour": "red"}]}'), "Extra inputs are not permitted"),
    ],
)
def test_repairs_are_capped_then_the_task_escalates_with_the_raw_output(bad: LLMResponse, reason: str) -> None:
    model = QueueModel(plan=[bad, bad, bad])
    result, store = run(model, max_plan_repairs=2)
    assert result.status == "requires_human"
    assert reason in result.reason and "after 2 repair prompts" in result.reason
    escalated = store.events(result.task_id)[-1]
    assert escalated.type == "task.escalated" and escalated.payload["error"] == "PlanInvalid"
    assert escalated.payload["usage"]["model_calls"] == 3
    assert escalated.payload.get("raw_output") == (bad.content or bad.refusal or None)
    assert model.by_purpose["plan"] == 3


# --- the step loop and bad model output --------------------------------------------------------


def test_bad_tool_calls_go_back_to_the_model_as_errors_and_count_against_the_step() -> None:
    model = QueueModel(
        plan=[plan("a")],
        step=[
            call("write_file", parse_error="Expecting ',' delimiter"),
            call("nope"),
            call("write_file", {"path": "x.txt"}),
            call("write_file", {"path": "x.txt", "content": "hi", "mode": "a"}),
            LLMResponse(content=""),
            LLMResponse(content="half an ans", finish_reason="length"),
            final("done"),
        ],
    )
    result, store = run(model, max_model_calls_per_step=7)
    assert result.status == "completed" and result.steps[0].output == "done"
    last = model.requests[-1].messages
    tool_errors = [json.loads(m["content"])["error"] for m in last if m["role"] == "tool"]
    assert "not a JSON object" in tool_errors[0]
    assert tool_errors[1] == "unknown tool 'nope'"
    assert "missing required argument 'content'" in tool_errors[2]
    assert "unexpected argument 'mode'" in tool_errors[3]
    nudges = [m["content"] for m in last if m["role"] == "user"][1:]
    assert "empty" in nudges[0] and "cut off" in nudges[1]
    assert store.workspace_list(result.task_id) == []  # no invalid call ran


def test_a_model_that_keeps_failing_its_step_is_stopped_by_the_call_cap() -> None:
    model = QueueModel(plan=[plan("a")], step=[LLMResponse(content="")] * 10)
    result, _ = run(model, max_model_calls_per_step=3, replan_on_failure=False)
    assert result.status == "requires_human" and "used its 3 model calls" in result.reason
    assert model.by_purpose["step"] == 3


def test_a_refused_step_escalates_with_the_refusal_when_replanning_is_off() -> None:
    model = QueueModel(plan=[plan("a")], step=[LLMResponse(content=None, refusal="not allowed")])
    result, store = run(model, replan_on_failure=False)
    assert result.status == "requires_human" and "refused step 1: not allowed" in result.reason
    assert result.steps[0].status == "failed"


def test_finish_step_ends_a_step_and_finish_task_ends_the_whole_task() -> None:
    model = QueueModel(
        plan=[plan("a", "b", "c")],
        step=[call("finish_step", {"result": "a is done"}), call("finish_task", {"result": "all done early"})],
    )
    result, store = run(model)
    assert result.status == "completed"
    assert result.result == {"output": "all done early", "steps": 2}
    assert [s.status for s in result.steps] == ["completed", "completed", "pending"]
    assert_replayable(store, result.task_id)


def test_abort_task_fails_the_task_with_the_agents_reason() -> None:
    model = QueueModel(plan=[plan("a", "b")], step=[call("abort_task", {"reason": "the tenant does not exist"})])
    result, store = run(model)
    assert result.status == "aborted"
    assert "the tenant does not exist" in result.reason
    assert event_types(store, result.task_id)[-2:] == ["step.failed", "task.failed"]


# --- budgets -----------------------------------------------------------------------------------


def test_exhausting_the_token_budget_escalates_instead_of_calling_again() -> None:
    model = QueueModel(plan=[plan("a", "b", "c", "d")])  # plan 30 tokens, each step 15
    result, _ = run(model, max_tokens=50)
    assert result.status == "requires_human" and "token budget exhausted" in result.reason
    assert model.by_purpose["step"] == 2


def test_exhausting_the_cost_budget_escalates() -> None:
    priced = [LLMResponse(content="ok", usage=Usage(1, 1), cost_usd=0.4)] * 5
    model = QueueModel(plan=[plan("a", "b", "c", "d")], step=priced)
    result, store = run(model, max_cost_usd=1.0)
    assert result.status == "requires_human" and "cost budget exhausted" in result.reason
    assert store.latest_checkpoint(result.task_id).state["cost_usd"] == pytest.approx(1.2)  # type: ignore[union-attr]


def test_the_step_budget_counts_every_step_run() -> None:
    model = QueueModel(plan=[plan("a", "b", "c")])
    result, _ = run(model, max_steps=2)
    assert result.status == "requires_human" and "step budget exhausted: 2 of 2" in result.reason


# --- profiles ------------------------------------------------------------------------------------


def test_an_unknown_profile_is_refused_at_creation() -> None:
    with pytest.raises(InvalidInput, match="unknown profile 'nope'"):
        Runner(InMemoryStore(), QueueModel()).create("goal", profile="nope")


def test_profiles_from_configuration_are_validated() -> None:
    profiles = load_profiles({"researcher": {"tools": ["read_file"], "max_tokens": 10}}, tool_names={"read_file"})
    assert profiles["researcher"].tools == ("read_file",) and profiles["default"] == BUILTIN_PROFILES["default"]
    for bad, message in [
        ({"x": {"colour": 1}}, "unknown settings: colour"),
        ({"x": {"max_tokens": -1}}, "non-negative integer"),
        ({"x": {"approval_policy": "sometimes"}}, "approval_policy"),
        ({"x": {"tools": ["rm_rf"]}}, "not registered: rm_rf"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            load_profiles(bad, tool_names={"read_file"})


def test_a_profile_limits_the_tools_the_model_sees_and_may_call() -> None:
    model = QueueModel(plan=[plan("a")], step=[call("write_file", {"path": "x", "content": "y"}), final("done")])
    result, store = run(model, tools=("read_file",), system_prompt="Be terse.")
    first = model.requests[1]
    assert {t["function"]["name"] for t in first.tools} == {"read_file", "finish_step", "finish_task", "abort_task"}
    assert first.messages[0]["content"].endswith("Be terse.")
    error = json.loads(model.requests[2].messages[-1]["content"])["error"]
    assert error == "unknown tool 'write_file'" and store.workspace_list(result.task_id) == []


def test_a_step_that_needs_approval_waits_for_a_person() -> None:
    model = QueueModel(plan=[plan("a", "delete the old tenant", approval=(1,))])
    result, store = run(model)
    assert result.status == "requires_human" and "step 'delete the old tenant' at step 2 needs approval" in result.reason
    assert [s.status for s in result.steps] == ["completed", "pending"]
    assert model.by_purpose["step"] == 1
    result, _ = run(QueueModel(plan=[plan("a", "b", approval=(1,))]), approval_policy="never")
    assert result.status == "completed"


# --- self-review, drift and re-plans -----------------------------------------------------------


def test_a_rejected_review_retries_the_step_with_the_critique() -> None:
    model = QueueModel(
        plan=[plan("a")],
        step=[final("sloppy"), final("careful")],
        review=[verdict(False, "the numbers are missing"), verdict(True)],
    )
    result, store = run(model, self_review=True)
    assert result.status == "completed" and result.steps[0].output == "careful"
    retry = [r for r in model.requests if r.purpose == "step"][1]
    assert "the numbers are missing" in retry.messages[1]["content"]
    reviews = [e.payload for e in store.events(result.task_id) if e.type == "step.reviewed"]
    assert [r["approved"] for r in reviews] == [False, True]
    assert store.journal_get(f"{result.task_id}/p1/s0retry1/c0") is not None
    assert_replayable(store, result.task_id)


def test_a_step_the_reviewer_keeps_rejecting_ends_in_a_replan_then_an_escalation() -> None:
    model = QueueModel(plan=[plan("a")], replan=[plan("a2")], review=[verdict(False, "no")] * 4)
    result, store = run(model, self_review=True, max_review_retries=1, max_replans=1)
    assert result.status == "requires_human"
    assert "rejected step 1 2 times" in result.reason and "re-plan limit (1)" in result.reason


def test_a_failed_step_is_replanned_as_a_new_plan_version() -> None:
    model = QueueModel(
        plan=[plan("a", "b", "c")],
        step=[final("a ok"), LLMResponse(content=None, refusal="cannot do b")],
        replan=[json.dumps({"steps": [{"title": "b, another way"}, {"title": "c"}, {"title": "d"}]})],
    )
    result, store = run(model)
    assert result.status == "completed"
    assert [(s.index, s.title, s.status) for s in result.steps] == [
        (0, "a", "completed"),
        (1, "b, another way", "completed"),
        (2, "c", "completed"),
        (3, "d", "completed"),
    ]
    revised = next(e for e in store.events(result.task_id) if e.type == "plan.revised")
    assert revised.payload["version"] == 2 and revised.payload["from_index"] == 1
    replan_request = next(r for r in model.requests if r.purpose == "replan")
    assert "'b', could not be done" in replan_request.messages[1]["content"]
    assert "refused step 2: cannot do b" in replan_request.messages[1]["content"]
    failed = next(e for e in store.events(result.task_id) if e.type == "step.failed")
    assert failed.payload["index"] == 1
    assert_replayable(store, result.task_id)


def test_a_replan_that_shrinks_the_plan_drops_the_old_tail() -> None:
    model = QueueModel(
        plan=[plan("a", "b", "c", "d")],
        step=[final("a ok")],
        drift=[verdict(False, "d is no longer needed")],
        replan=[plan("b and c together")],
    )
    result, store = run(model, drift_check_every=1)
    assert result.status == "completed"
    assert [s.title for s in result.steps] == ["a", "b and c together"]
    drift = [e.payload for e in store.events(result.task_id) if e.type == "step.reviewed"]
    assert drift[0]["kind"] == "drift" and drift[0]["approved"] is False
    assert_replayable(store, result.task_id)


# --- transcript, context and notes -------------------------------------------------------------


def test_each_step_keeps_its_own_transcript_and_sees_only_a_summary_of_earlier_steps() -> None:
    titles = [f"s{i}" for i in range(8)]
    model = QueueModel(plan=[plan(*titles)])
    result, store = run(model)
    assert result.status == "completed"
    step_prompts = [r.messages[1]["content"] for r in model.requests if r.purpose == "step"]
    last = step_prompts[-1]
    assert "ok: s6" in last and "ok: s4" in last and "ok: s0" not in last  # the last 3 only
    assert len(step_prompts[-1]) < 2 * len(step_prompts[3])  # it does not grow with the task
    transcript = store.step(result.task_id, 7).transcript
    assert [m["role"] for m in transcript] == ["user", "assistant"] and transcript[1]["content"] == "ok: s7"


def test_notes_remembered_in_one_step_are_recalled_in_a_later_one() -> None:
    model = QueueModel(
        plan=[plan("a", "b")],
        step=[
            call("remember", {"key": "tenant-id", "text": "t-42"}),
            final("noted"),
            call("recall", {"key": "tenant-id"}),
            final("used it"),
        ],
    )
    result, store = run(model)
    assert result.status == "completed"
    recalled = model.requests[-1].messages[-1]
    assert recalled["role"] == "tool" and json.loads(recalled["content"]) == "t-42"
    assert store.workspace_list(result.task_id) == [".notes/tenant-id"]


def test_a_running_task_keeps_the_profile_it_started_with() -> None:
    """Changing (or removing) a profile does not change the tasks already running under it."""
    store = InMemoryStore()
    model = QueueModel(plan=[plan("a", "b")], step=[call("look_around"), call("look_around"), call("look_around")])
    generous = {"default": AgentProfile(name="default", max_model_calls_per_step=2, replan_on_failure=False)}
    first = Runner(store, model, profiles=generous)
    task_id = first.create("goal")
    created = store.events(task_id)[0].payload
    assert created["profile_config"]["max_model_calls_per_step"] == 2
    first.tick(task_id)  # plan
    # The profile changes under the running task; a worker with the new configuration picks it up.
    changed = {"default": AgentProfile(name="default", max_model_calls_per_step=50, replan_on_failure=True)}
    result = Runner(store, model, profiles=changed).run(task_id)
    assert result.status == "requires_human" and "used its 2 model calls" in result.reason
    assert store.get_task(task_id).profile_config == created["profile_config"]
    # A worker whose configuration no longer has the profile at all still runs a task as it started.
    other = Runner(store, QueueModel(plan=[plan("x")]), profiles=generous).create("second goal")
    gone = Runner(store, QueueModel(plan=[plan("x")]), profiles={"other": AgentProfile(name="other")})
    assert gone.run(other).status == "completed"


def test_review_rounds_before_a_wait_are_recorded_once() -> None:
    """A step that was reviewed, retried and then waited replays its review rounds from the journal
    when it resumes; their events (and their usage) must not be recorded a second time."""
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = InMemoryStore(clock=lambda: now[0])
    model = QueueModel(
        plan=[plan("a")],
        step=[final("first"), call("sleep_for", {"seconds": 60}), final("second")],
        review=[verdict(False, "try again"), verdict(True)],
    )
    profiles = {"default": AgentProfile(name="default", self_review=True, max_review_retries=1)}
    runner = Runner(store, model, profiles=profiles, clock=lambda: now[0])
    task_id = runner.create("goal")
    runner.run(task_id)
    assert store.get_task(task_id).status == "waiting"
    now[0] += timedelta(seconds=61)
    assert runner.run(task_id).status == "completed"
    reviews = [e.payload["round"] for e in store.events(task_id) if e.type == "step.reviewed"]
    assert reviews == [0, 1]
    assert_replayable(store, task_id)
    assert rebuild(None, store.events(task_id)).model_calls == model.by_purpose["plan"] + model.by_purpose["step"] + 2


def test_a_failed_step_that_cannot_be_replanned_keeps_its_usage() -> None:
    model = QueueModel(plan=[plan("a")], step=[call("nope"), call("nope")])
    store = InMemoryStore()
    result, _ = run(model, store, max_model_calls_per_step=2, max_replans=0)
    assert result.status == "requires_human" and "re-plan limit (0) is reached" in result.reason
    escalated = store.events(result.task_id)[-1].payload
    assert escalated["error"] == "ReplanLimit" and escalated["usage"]["model_calls"] == 2
    assert rebuild(None, store.events(result.task_id)).model_calls == 3  # the plan and the step's two calls


def test_an_escalated_step_keeps_its_review_events() -> None:
    model = QueueModel(plan=[plan("a")], step=[final("sloppy")], review=[verdict(False, "no numbers")])
    store = InMemoryStore()
    result, _ = run(model, store, self_review=True, max_review_retries=0, replan_on_failure=False)
    assert result.status == "requires_human" and "rejected step 1 1 times" in result.reason
    assert [e.type for e in store.events(result.task_id)][-2:] == ["step.reviewed", "task.escalated"]
    assert rebuild(None, store.events(result.task_id)).model_calls == 3  # plan, step, review
