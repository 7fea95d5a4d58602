"""Deadline changes: what the sweeper (tasks_app/services/sweep.py) and LongHorizonRunner.tick append when time runs out.

A task past its deadline fails; a step current for longer than its deadline escalates to a person.
Both are operator changes (one event, one status, the schedule cleared), so a tick in flight is fenced.
"""

from __future__ import annotations

from datetime import datetime

from agents import events as ev
from agents.status import TaskStatus, TaskStatusName
from agents.types import JSON, OperatorChange


def deadline_change(
    kind: str, deadline: datetime, reason: str, from_statuses: frozenset[TaskStatusName], status: TaskStatusName
) -> OperatorChange:
    payload: dict[str, JSON] = {"kind": kind, "deadline": deadline.isoformat(), "reason": reason}
    return OperatorChange(
        event=ev.new_event(ev.DEADLINE_EXCEEDED, payload),
        from_statuses=from_statuses,
        status=status,
        status_reason=reason,
        clear_schedule=True,
    )


def task_deadline_change(deadline: datetime) -> OperatorChange:
    """The task's overall deadline passed: it fails, from any status that has not ended."""
    reason = f"the task's deadline ({deadline.isoformat()}) passed"
    return deadline_change("task", deadline, reason, TaskStatus.ACTIVE, TaskStatus.FAILED)


def step_deadline_change(index: int, deadline: datetime) -> OperatorChange:
    """The current step passed its deadline while the task was working on it: a person looks at it."""
    reason = f"step {index + 1} passed its deadline ({deadline.isoformat()})"
    return deadline_change("step", deadline, reason, TaskStatus.WORKING, TaskStatus.REQUIRES_HUMAN)
