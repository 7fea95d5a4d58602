"""What a task did: the append-only event log, checkpoints over it, and the files its tools wrote."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from agents.errors import AppendOnlyError
from tasks_app.models.tasks import AgentTask


class Event(models.Model):
    """The append-only log of every fact about a task. Rows are never updated or deleted."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="events", db_index=False)  # see Step.task
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=64)
    schema_version = models.PositiveSmallIntegerField(default=1)
    payload = models.JSONField(default=dict)
    worker = models.CharField(max_length=200, blank=True, default="")
    # Set by the store, not on save: the time is part of the event's hash (agents/audit.py).
    created_at = models.DateTimeField(default=timezone.now)
    # "k<version>:" + 64 hex characters when keyed (agents/audit.py), 64 hex characters when not.
    prev_hash = models.CharField(max_length=80, blank=True, default="")
    hash = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        ordering = ["task", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["task", "seq"], name="event_unique_task_seq"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="event_seq_positive"),
            models.CheckConstraint(condition=models.Q(schema_version__gte=1), name="event_schema_version_positive"),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("events are append-only: an event cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("events are append-only: an event cannot be deleted")

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"


class Checkpoint(models.Model):
    """Small state after a tick plus the seq of the last event it includes; never a copy of history."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="checkpoints", db_index=False)  # see Step.task
    seq = models.PositiveBigIntegerField()
    event_seq = models.PositiveBigIntegerField()
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "seq"]
        constraints = [models.UniqueConstraint(fields=["task", "seq"], name="checkpoint_unique_task_seq")]

    def __str__(self) -> str:
        return f"checkpoint {self.seq} (through event {self.event_seq})"


class WorkspaceFile(models.Model):
    """A file a task's tools wrote; the workspace lives in the database, so it survives any worker."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=500)
    content = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "path"]
        constraints = [models.UniqueConstraint(fields=["task", "path"], name="workspacefile_unique_task_path")]

    def __str__(self) -> str:
        return self.path
