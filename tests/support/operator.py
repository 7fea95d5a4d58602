"""What a person's "continue" does to a task that waits for one, on any Store (the in-memory one
included): agents tests have no Django, so they cannot call tasks_app.services.control."""

from __future__ import annotations

from agents import events as ev
from agents.status import TaskStatus
from agents.store import Store
from agents.types import OperatorChange


def continue_task(store: Store, task_id: str, *, by: str = "test") -> None:
    """Like agent_task_resume for a task in requires_human (and what the approval decision service does
    after a decision): log task.continued and run the task again."""
    store.operator_change(
        task_id,
        OperatorChange(
            event=ev.new_event(ev.TASK_CONTINUED, {"by": by}),
            from_statuses=frozenset({TaskStatus.REQUIRES_HUMAN}),
            status=TaskStatus.RUNNING,
            wake=True,
        ),
    )
