"""What operators watch or switch besides tasks: the LLM endpoints' circuit breakers and scheduled goals."""

from __future__ import annotations

from django.contrib import admin

from tasks_app.admin.common import ModelAdmin
from tasks_app.models import EndpointBreaker, GoalTemplate


@admin.register(EndpointBreaker)
class EndpointBreakerAdmin(ModelAdmin):
    """Circuit breakers of the LLM endpoints: what is open, since when, after how many failures."""

    list_display = ("key", "state", "failures", "opened_at", "updated_at")
    list_filter = ("state",)
    readonly_fields = ("key", "state", "failures", "opened_at", "trial_started_at", "updated_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(GoalTemplate)
class GoalTemplateAdmin(ModelAdmin):
    """Scheduled goals. Schedules are set with `manage.py schedule_goal` (validated there); the
    schedule itself is the linked periodic task, editable under Periodic tasks."""

    list_display = ("name", "goal", "profile", "enabled", "periodic_task", "last_started_at")
    list_filter = ("enabled", "profile")
    readonly_fields = ("name", "goal", "context", "profile", "max_steps", "periodic_task", "last_started_at", "created_at")
    fields = ("name", "goal", "context", "profile", "max_steps", "enabled", "periodic_task", "last_started_at", "created_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
