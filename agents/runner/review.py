"""Reviewing: the step's self-review rounds and the periodic drift check against the goal."""

from __future__ import annotations

from agents import events as ev
from agents.journal import call_key
from agents.review import Verdict, drift_request, parse_verdict, review_request
from agents.runner.draft import TickScope
from agents.runner.limits import EVENT_TEXT_MAX_CHARS, cap
from agents.runner.planning import replan
from agents.types import JSON, LLMResponse, NewEvent, StepRecord
from agents.usage import Spent


def review(scope: TickScope, step: StepRecord, output: str, round_: int) -> tuple[Verdict, LLMResponse]:
    request = review_request(scope.task, step, output)
    key = call_key(scope.task.id, step.plan_version, f"s{step.index}review", round_)
    response = scope.journal.model_call(key, scope.model(), request)
    return parse_verdict(response), response


def reviewed(index: int, round_: int, verdict: Verdict, response: LLMResponse, *, kind: str = "") -> NewEvent:
    """A step.reviewed event: a self-review round, or (kind "drift") a drift check."""
    payload: dict[str, JSON] = {"index": index, "round": round_, **({"kind": kind} if kind else {})}
    payload.update(
        approved=verdict.approved,
        critique=cap(verdict.critique, EVENT_TEXT_MAX_CHARS),
        usage=Spent.of(response).as_json(),
    )
    return ev.new_event(ev.STEP_REVIEWED, payload)


def drift_check(scope: TickScope, step: StepRecord) -> list[NewEvent]:
    """Re-read the goal every few steps; if the work has drifted, re-plan the rest."""
    request = drift_request(scope.task, scope.state, step)
    key = call_key(scope.task.id, step.plan_version, f"s{step.index}drift", 0)
    response = scope.journal.model_call(key, scope.model(), request)
    verdict = parse_verdict(response)
    checked = reviewed(step.index, 0, verdict, response, kind="drift")
    if verdict.approved:
        return [checked]
    why = f"drift check after step {step.index + 1}: {verdict.critique}"
    return [checked, replan(scope, from_index=step.index + 1, why=why, failed_title="")]
