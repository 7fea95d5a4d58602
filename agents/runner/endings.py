"""The events that end a step or a task badly: a failed step, a failed task (with compensation), an escalation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from agents import events as ev
from agents.compensation import compensate
from agents.errors import HorizonError
from agents.events import TaskState
from agents.journal import Journal
from agents.json_value import as_list
from agents.planner import RAW_OUTPUT_MAX_CHARS
from agents.runner.draft import CommitDraft
from agents.runner.limits import EVENT_TEXT_MAX_CHARS, cap
from agents.status import StepStatus
from agents.tools.registry import ToolRegistry
from agents.types import JSON, NewEvent, StepUpdate
from agents.usage import Spent


def step_failed(index: int, title: str, error: str, spent: Spent) -> NewEvent:
    payload: dict[str, JSON] = {
        "index": index,
        "title": title,
        "error": cap(error, EVENT_TEXT_MAX_CHARS),
        "usage": spent.as_json(),
    }
    return ev.new_event(ev.STEP_FAILED, payload)


def fail_task(journal: Journal, tools: ToolRegistry, task_id: str, reason: str) -> list[NewEvent]:
    """End the task as failed, undoing its recorded side effects first (the saga's compensation)."""
    undone = compensate(journal, tools, task_id)
    events = []
    if any(undone.values()):
        events.append(ev.new_event(ev.TASK_COMPENSATED, undone))
        if undone["failed"] or undone["unknown"]:
            failed, unknown = len(as_list(undone["failed"])), len(as_list(undone["unknown"]))
            reason += f"; compensation left {failed} failed and {unknown} unknown undo(s)"
    return [*events, ev.new_event(ev.TASK_FAILED, {"reason": reason})]


def escalation(
    reason: str,
    state: TaskState,
    attempts: int,
    draft: CommitDraft,
    clock: Callable[[], datetime],
    *,
    error: Exception | None = None,
) -> NewEvent:
    if state.plan_version and state.next_step < state.step_count and draft.step_update is None:
        draft.step_update = StepUpdate(
            index=state.next_step, status=StepStatus.FAILED, attempts=attempts, error=reason, finished_at=clock()
        )
    payload: dict[str, JSON] = {
        "reason": reason,
        "error": type(error).__name__ if error else "",
        "step_index": state.next_step,
    }
    # What a person needs to judge the failure: the model's own words, capped.
    raw = getattr(error, "raw_output", None) or getattr(error, "excerpt", None)
    if raw:
        payload["raw_output"] = cap(str(raw), RAW_OUTPUT_MAX_CHARS)
    if isinstance(error, HorizonError) and error.usage:
        payload["usage"] = error.usage
    payload.update(getattr(error, "escalation_payload", None) or {})
    return ev.new_event(ev.TASK_ESCALATED, payload)
