"""Reads of tasks and their steps: one task by id, the tasks a user of the API may see, a step by number."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agents.errors import TaskNotFound
from tasks_app.models import AgentTask, Step
from tasks_app.store import task_pk


def task_get(*, task_id: str) -> AgentTask:
    """The task; TaskNotFound when there is none (a malformed id is an unknown task too)."""
    task = AgentTask.objects.filter(pk=task_pk(task_id)).first()
    if task is None:
        raise TaskNotFound(task_id)
    return task


def _visible_to(user: Any) -> QuerySet[AgentTask]:
    # A superuser sees every task; anyone else only the tasks they own (created through the API).
    tasks = AgentTask.objects.all()
    return tasks if user.is_superuser else tasks.filter(owner=user)


def task_list_for_owner(*, user: Any, status: str | None = None) -> QuerySet[AgentTask]:
    """The tasks `user` may see, newest first, optionally of one status (a queryset: callers page it)."""
    tasks = _visible_to(user).order_by("-created_at", "-pk")
    return tasks.filter(status=status) if status else tasks


def task_get_for_owner(*, user: Any, task_id: str) -> AgentTask:
    """The task if `user` may see it; TaskNotFound otherwise, so that another's task looks like none."""
    task = _visible_to(user).filter(pk=task_pk(task_id)).first()
    if task is None:
        raise TaskNotFound(task_id)
    return task


def task_ids_visible_to(*, user: Any, task_ids: list[str]) -> set[str]:
    """Those of `task_ids` that `user` may see."""
    return {str(pk) for pk in _visible_to(user).filter(pk__in=task_ids).values_list("pk", flat=True)}


def step_get_by_number(*, task: AgentTask, number: int) -> Step | None:
    """The task's step shown to people as `number` (1-based), or None."""
    return Step.objects.filter(task=task, index=number - 1).first()
