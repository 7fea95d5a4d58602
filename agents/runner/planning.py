"""Planning and re-planning: ask the model for a plan, repair it up to the profile's limit, record it."""

from __future__ import annotations

from agents import events as ev
from agents.errors import PlanInvalid, ReplanLimit
from agents.events import TaskState
from agents.journal import call_key
from agents.planner import parse_plan, plan_request, repair_request, replan_request
from agents.profiles import AgentProfile
from agents.runner.draft import TickScope
from agents.runner.limits import EVENT_TEXT_MAX_CHARS, cap
from agents.types import LLMRequest, NewEvent, StepSpec, TaskRecord
from agents.usage import Spent


def ask_for_plan(
    scope: TickScope, request: LLMRequest, *, version: int, first_index: int
) -> tuple[tuple[StepSpec, ...], Spent, str]:
    """Ask, validate, and send repair prompts up to the profile's limit; journaled like every call."""
    task, profile = scope.task, scope.profile
    spent = Spent()
    model = scope.model()
    for attempt in range(profile.max_plan_repairs + 1):
        response = scope.journal.model_call(call_key(task.id, version, "plan", attempt), model, request)
        spent.add(response)
        try:
            return (
                parse_plan(response, max_steps=task.max_steps - first_index, first_index=first_index),
                spent,
                response.model,
            )
        except PlanInvalid as exc:
            if attempt == profile.max_plan_repairs:
                failure = PlanInvalid(f"{exc} (after {attempt} repair prompts)", raw_output=exc.raw_output)
                failure.usage = spent.as_json()
                raise failure from None
            request = repair_request(request, response, exc)
    raise AssertionError("unreachable")


def plan(scope: TickScope) -> NewEvent:
    task = scope.task
    version = scope.state.plan_version + 1
    request = plan_request(task, max_steps=task.max_steps)
    steps, spent, model_name = ask_for_plan(scope, request, version=version, first_index=0)
    scope.draft.new_plan(steps, version)
    return ev.new_event(
        ev.PLAN_CREATED,
        {"version": version, "steps": [s.to_json() for s in steps], "model": model_name, "usage": spent.as_json()},
    )


def replan_refusal(task: TaskRecord, state: TaskState, profile: AgentProfile, *, from_index: int) -> str:
    """Why no re-plan is possible now ("" when one is)."""
    if state.replans >= profile.max_replans:
        return f"the re-plan limit ({profile.max_replans}) is reached"
    if from_index >= task.max_steps:
        return f"the task has no room for more steps (max_steps {task.max_steps})"
    return ""


def replan(scope: TickScope, *, from_index: int, why: str, failed_title: str) -> NewEvent:
    """A new plan version replacing the steps from `from_index` on (recorded as plan.revised)."""
    task, state = scope.task, scope.state
    if refusal := replan_refusal(task, state, scope.profile, from_index=from_index):
        raise ReplanLimit(f"{why}; {refusal}")
    remaining = [
        s.title for s in scope.store.steps(task.id) if s.index > from_index or (s.index == from_index and failed_title == "")
    ]
    version = state.plan_version + 1
    request = replan_request(
        task,
        recent=state.recent,
        from_index=from_index,
        failed_title=failed_title,
        reason=why,
        remaining=remaining,
        max_steps=task.max_steps - from_index,
    )
    steps, spent, model_name = ask_for_plan(scope, request, version=version, first_index=from_index)
    scope.draft.new_plan(steps, version, truncate_from=from_index)
    return ev.new_event(
        ev.PLAN_REVISED,
        {
            "version": version,
            "from_index": from_index,
            "reason": cap(why, EVENT_TEXT_MAX_CHARS),
            "steps": [s.to_json() for s in steps],
            "model": model_name,
            "usage": spent.as_json(),
        },
    )
