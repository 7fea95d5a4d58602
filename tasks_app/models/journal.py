"""The journal of model and tool calls, so that none is paid for (or done) twice."""

from __future__ import annotations

from django.db import models

from agents.status import JournalStatus as _JournalStatus
from tasks_app.models.tasks import AgentTask


class JournalEntry(models.Model):
    """The ledger of model and tool calls, keyed task/plan/step/call, so that none is paid for twice."""

    class Status(models.TextChoices):
        STARTED = _JournalStatus.STARTED
        COMPLETED = _JournalStatus.COMPLETED

    # Unique through Meta.constraints rather than unique=True, which on PostgreSQL also builds a
    # second, LIKE-pattern index that no query here uses.
    key = models.CharField(max_length=255)
    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="journal")
    kind = models.CharField(max_length=10)
    name = models.CharField(max_length=200)
    request_digest = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(fields=["key"], name="journal_unique_key"),
            models.CheckConstraint(condition=models.Q(status__in=["started", "completed"]), name="journal_status_valid"),
            models.CheckConstraint(condition=models.Q(kind__in=["llm", "tool"]), name="journal_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.key
