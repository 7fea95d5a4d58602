"""The JSON API's tables: API tokens (hashed at rest), per-token rate windows, webhook deliveries.

Re-exported by tasks_app/models/__init__.py, as every model is.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from tasks_app.models.tasks import AgentTask


class ApiToken(models.Model):
    """A bearer token for /api/. Only its SHA-256 is stored; the raw token is shown once, at creation.

    The raw token is `hzn_<prefix>_<secret>`: the prefix (not secret) finds the row by an index, and
    the digest of the whole token is compared in constant time. 32 random bytes of secret make a
    salt or a slow hash unnecessary: nobody can brute-force 256 bits from a leaked digest.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.prefix}…) of {self.user_id}"


class ApiRateWindow(models.Model):
    """A fixed-window counter of task creations per token (or session user): shared by every process."""

    key = models.CharField(max_length=100)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="apiratewindow_unique_key_window")]


class WebhookDelivery(models.Model):
    """One notification of a task's status to its callback URL, with every attempt to deliver it.

    Unique per (task, event_seq): the status change that caused it, so a repeated hook is a no-op.
    A pending row whose next_attempt_at has passed is due; a worker claims it by moving
    next_attempt_at forward (a conditional UPDATE), so two deliverers never send it at once.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # every attempt failed

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event_seq = models.PositiveBigIntegerField()
    task_status = models.CharField(max_length=20)
    url = models.CharField(max_length=2000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # [{"attempt": n, "at": iso, "status_code": int | None, "error": str}], one per attempt (bounded by max attempts).
    attempt_log = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "event_seq"], name="webhookdelivery_unique_task_seq"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "delivered", "failed"]), name="webhookdelivery_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["next_attempt_at"], name="webhookdelivery_due_idx", condition=models.Q(status="pending"))]

    def __str__(self) -> str:
        return f"{self.task_status} of {self.task_id} to {self.url} ({self.status})"
