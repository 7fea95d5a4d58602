"""Task, step, journal and approval states. tasks_app.models mirrors the task and step states as
TextChoices with a CheckConstraint.

Each state is the plain string the database stores, typed as its Literal (`Final`): mypy knows
TaskStatus.PAUSED is "paused", and the `...Name` aliases type the reducer's state (TaskState) and
the deadlines. Not enums: records read back from a database carry plain strings, and an enum's repr
would change messages. The names live in agents/status_names.py, which the records import.
"""

from __future__ import annotations

from typing import Final

from agents.errors import TransitionError as TransitionError  # re-exported: defined in agents.errors
from agents.status_names import ApprovalStatusName as ApprovalStatusName  # re-exported, as the three below
from agents.status_names import JournalStatusName as JournalStatusName
from agents.status_names import StepStatusName as StepStatusName
from agents.status_names import TaskStatusName as TaskStatusName


class TaskStatus:
    PENDING: Final = "pending"
    RUNNING: Final = "running"
    WAITING: Final = "waiting"
    REQUIRES_HUMAN: Final = "requires_human"
    PAUSED: Final = "paused"
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"
    CANCELLED: Final = "cancelled"

    ALL: Final[tuple[TaskStatusName, ...]] = (PENDING, RUNNING, WAITING, REQUIRES_HUMAN, PAUSED, COMPLETED, FAILED, CANCELLED)
    TERMINAL: Final[frozenset[TaskStatusName]] = frozenset({COMPLETED, FAILED, CANCELLED})
    # A tick may claim a task only in these states (and only once next_run_at is due); the others
    # wait for a person. A WAITING task is claimed when its timer is due or a signal rang for it.
    CLAIMABLE: Final[frozenset[TaskStatusName]] = frozenset({PENDING, RUNNING, WAITING})
    ACTIVE: Final[frozenset[TaskStatusName]] = frozenset({PENDING, RUNNING, WAITING, PAUSED, REQUIRES_HUMAN})  # not ended
    WORKING: Final[frozenset[TaskStatusName]] = frozenset({PENDING, RUNNING})  # expected to make progress on its own, now


# The edges a tick or an operator may take; anything else is a bug, refused by the store.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.PAUSED, TaskStatus.FAILED}),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.RUNNING,
            TaskStatus.WAITING,
            TaskStatus.REQUIRES_HUMAN,
            TaskStatus.PAUSED,
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.WAITING: frozenset(
        {
            TaskStatus.RUNNING,
            TaskStatus.WAITING,
            TaskStatus.REQUIRES_HUMAN,
            TaskStatus.CANCELLED,
            TaskStatus.PAUSED,
            TaskStatus.FAILED,
        }
    ),
    TaskStatus.REQUIRES_HUMAN: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED, TaskStatus.PAUSED}),
    TaskStatus.PAUSED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED}),  # failed: a deadline
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


class StepStatus:
    PENDING: Final = "pending"
    RUNNING: Final = "running"
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"

    ALL: Final[tuple[StepStatusName, ...]] = (PENDING, RUNNING, COMPLETED, FAILED)


class JournalStatus:
    """A call journal entry: started (the call may have happened), or completed with its result."""

    STARTED: Final = "started"
    COMPLETED: Final = "completed"


class ApprovalStatus:
    """A person's decision; stale: the action changed since it was asked for (agents/approvals.py)."""

    PENDING: Final = "pending"
    APPROVED: Final = "approved"
    REJECTED: Final = "rejected"
    STALE: Final = "stale"


def check_transition(old: str, new: str) -> None:
    if new not in ALLOWED_TRANSITIONS.get(old, frozenset()):
        raise TransitionError(f"a task cannot go from {old!r} to {new!r}")
