"""What people and other tasks send a running task: signals (operator changes, a child ringing its parent) and approvals."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from agents.status import ApprovalStatus as _ApprovalStatus
from tasks_app.models.tasks import AgentTask


class Signal(models.Model):
    """A task's inbox: a signal stays here until a wait consumes it (once: consumed_key is its journal key)."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="signals", db_index=False)
    name = models.CharField(max_length=100)
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    consumed_key = models.CharField(max_length=500, null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "id"]
        indexes = [
            models.Index(fields=["task", "name"], name="signal_pending_idx", condition=models.Q(consumed_key__isnull=True)),
            models.Index(fields=["task", "id"], name="signal_task_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} for {self.task_id}"


class Approval(models.Model):
    """A proposed action waiting for (or decided by) a person: a flagged step or a risky tool call.

    `action` is exactly what the agent proposed and `digest` pins it; a decision applies to that
    action only (agents/approvals.py). Decisions go through tasks_app/services/approvals.py.
    """

    class Status(models.TextChoices):
        PENDING = _ApprovalStatus.PENDING
        APPROVED = _ApprovalStatus.APPROVED
        REJECTED = _ApprovalStatus.REJECTED
        STALE = _ApprovalStatus.STALE  # the action under this key changed before anyone decided

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="approvals")
    key = models.CharField(max_length=500)  # the step's or the tool call's place in the journal
    kind = models.CharField(max_length=10, choices=[("step", "step"), ("tool", "tool call")])
    step_index = models.PositiveIntegerField()
    plan_version = models.PositiveIntegerField()
    action = models.JSONField()
    digest = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    comment = models.TextField(blank=True, default="")
    edited_arguments = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["status", "-requested_at"]
        permissions = [("decide_approval", "Can approve, reject or edit an agent's proposed action")]
        constraints = [
            models.UniqueConstraint(fields=["task", "key"], name="approval_unique_task_key"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "approved", "rejected", "stale"]), name="approval_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["requested_at"], name="approval_pending_idx", condition=models.Q(status="pending"))]

    def __str__(self) -> str:
        what = self.action.get("tool") or self.action.get("step")
        return f"{self.kind} {what} ({self.status})"
