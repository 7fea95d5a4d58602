"""Long-term memory: what tasks remember across tasks (agents/recall)."""

from __future__ import annotations

from django.db import models


class MemoryItem(models.Model):
    """A fact in an agent's long-term memory (agents/recall/), scoped to a task or to a profile.

    The vector is float32 bytes (4 bytes a dimension), with the embedder that made it: a search only
    compares items of one embedder and dimension. Written by the remember tool, as upserts on a
    natural key: (scope, scope_id, key) for a named fact, the call's journal key otherwise.
    """

    class Scope(models.TextChoices):
        TASK = "task"
        PROFILE = "profile"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    scope_id = models.CharField(max_length=200)  # the task id, or the profile name
    key = models.CharField(max_length=100, blank=True, default="")
    text = models.TextField()
    embedding = models.BinaryField()
    embedder = models.CharField(max_length=200)
    dim = models.PositiveIntegerField()
    metadata = models.JSONField(default=dict, blank=True)
    source_key = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["scope", "scope_id", "embedder", "dim"], name="memoryitem_scope_embedder")]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=["task", "profile"]), name="memoryitem_scope_valid"),
            models.UniqueConstraint(
                fields=["scope", "scope_id", "key"], condition=~models.Q(key=""), name="memoryitem_unique_key"
            ),
            models.UniqueConstraint(
                fields=["source_key"], condition=models.Q(key="") & ~models.Q(source_key=""), name="memoryitem_unique_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.scope_id}: {self.text[:60]}"
