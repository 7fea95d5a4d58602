"""Reads of approvals: one for the API's caller or for the decide page, a task's list, the pending ones."""

from __future__ import annotations

from typing import Any

from tasks_app.models import AgentTask, Approval
from tasks_app.store import task_pk


def approval_get_for_owner(*, user: Any, approval_id: int) -> Approval | None:
    """The approval if `user` may see its task (a superuser sees every one), with who decided it."""
    approvals = Approval.objects.select_related("decided_by")
    if not user.is_superuser:
        approvals = approvals.filter(task__owner=user)
    return approvals.filter(pk=approval_id).first()


def approval_get_for_decision(*, approval_id: int) -> Approval | None:
    """The approval with its task and who decided it (the admin's decide page)."""
    return Approval.objects.select_related("task", "decided_by").filter(pk=approval_id).first()


def approval_list_for_task(*, task: AgentTask) -> list[Approval]:
    """Every approval the task asked for, in the order asked (the timeline)."""
    return list(Approval.objects.filter(task=task).select_related("decided_by").order_by("requested_at", "pk"))


def approval_list_latest_for_task(*, task: AgentTask, limit: int) -> list[Approval]:
    """The task's latest `limit` approvals, newest first (the API)."""
    return list(Approval.objects.filter(task=task).select_related("decided_by").order_by("-requested_at")[:limit])


def approval_pending_ids(*, task_id: str) -> list[int]:
    """The task's pending approvals, oldest first."""
    pending = Approval.objects.filter(task_id=task_pk(task_id), status=Approval.Status.PENDING).order_by("pk")
    return list(pending.values_list("pk", flat=True))
