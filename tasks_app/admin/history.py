"""Read-only pages of the append-only log and its checkpoints."""

from __future__ import annotations

from django.contrib import admin

from tasks_app.admin.common import ReadOnlyAdmin
from tasks_app.models import Checkpoint, Event


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("task", "seq", "type", "worker", "created_at")
    list_filter = ("type",)
    search_fields = ("task__id", "type")
    list_select_related = ("task",)
    readonly_fields = ("task", "seq", "type", "schema_version", "payload", "worker", "created_at")


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("task", "seq", "event_seq", "created_at")
    list_select_related = ("task",)
    readonly_fields = ("task", "seq", "event_seq", "state", "created_at")
