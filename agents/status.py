"""Task and step states. tasks_app.models mirrors these as TextChoices with a CheckConstraint."""

from __future__ import annotations

from agents.errors import TransitionError as TransitionError  # re-exported: defined in agents.errors


class TaskStatus:
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    REQUIRES_HUMAN = "requires_human"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    ALL = (PENDING, RUNNING, WAITING, REQUIRES_HUMAN, PAUSED, COMPLETED, FAILED, CANCELLED)
    TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
    # A tick may claim a task only in these states (and only once next_run_at is due); the others
    # wait for a person. A WAITING task is claimed when its timer is due or a signal rang for it.
    CLAIMABLE = frozenset({PENDING, RUNNING, WAITING})
    ACTIVE = frozenset({PENDING, RUNNING, WAITING, PAUSED, REQUIRES_HUMAN})  # not ended
    WORKING = frozenset({PENDING, RUNNING})  # expected to make progress on its own, now


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
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    ALL = (PENDING, RUNNING, COMPLETED, FAILED)


def check_transition(old: str, new: str) -> None:
    if new not in ALLOWED_TRANSITIONS.get(old, frozenset()):
        raise TransitionError(f"a task cannot go from {old!r} to {new!r}")
