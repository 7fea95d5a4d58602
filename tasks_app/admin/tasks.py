"""The tasks list and a task's page: filters (stalled, waiting for a human), its steps, events and checkpoints,
the timeline pages, and pause/resume/cancel actions through tasks_app/services/control.py."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from agents.errors import InvalidInput, TaskNotFound
from agents.status import TaskStatus
from tasks_app import views
from tasks_app.admin.branches import CheckpointInline, branch_urls, branches_link
from tasks_app.admin.common import ModelAdmin, ReadOnlyInline
from tasks_app.models import AgentTask, Approval, Event, Step
from tasks_app.readable import duration_text, step_number
from tasks_app.services.control import agent_task_cancel, agent_task_pause, agent_task_resume


class StepInline(ReadOnlyInline):
    model = Step
    fields = ("number", "title", "status", "attempts", "started_at", "finished_at", "duration", "error")

    @admin.display(description="step")
    def number(self, obj: Step) -> str:
        return step_number(obj.index)  # 1-based, like every page and command

    @admin.display(description="duration")
    def duration(self, obj: Step) -> str:
        return duration_text(obj.finished_at - obj.started_at) if obj.started_at and obj.finished_at else "—"


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("seq", "type", "schema_version", "payload", "worker", "created_at")
    ordering = ("seq",)


class StalledFilter(admin.SimpleListFilter):
    """Not ended, and either its lease expired without a release or the sweeper flagged it stuck."""

    title = "stalled"
    parameter_name = "stalled"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("yes", "Stalled"), ("no", "Not stalled")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        stalled = Q(status__in=TaskStatus.ACTIVE) & (
            Q(lease_owner__isnull=False, lease_expires_at__lt=timezone.now()) | Q(stuck_flagged_at__isnull=False)
        )
        if self.value() == "yes":
            return queryset.filter(stalled)
        if self.value() == "no":
            return queryset.exclude(stalled)
        return queryset


class WaitingForHumanFilter(admin.SimpleListFilter):
    title = "waiting for a human"
    parameter_name = "human"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("yes", "Yes"), ("approval", "For an approval"), ("no", "No")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        if self.value() == "yes":
            return queryset.filter(status=TaskStatus.REQUIRES_HUMAN)
        if self.value() == "approval":
            pending = Approval.objects.filter(task=OuterRef("pk"), status=Approval.Status.PENDING)
            return queryset.filter(Exists(pending), status=TaskStatus.REQUIRES_HUMAN)
        if self.value() == "no":
            return queryset.exclude(status=TaskStatus.REQUIRES_HUMAN)
        return queryset


@admin.register(AgentTask)
class AgentTaskAdmin(ModelAdmin):
    list_display = ("goal_text", "status", "profile", "steps_completed", "cost", "resume_count", "updated_at", "timeline")
    list_filter = ("status", "profile", StalledFilter, WaitingForHumanFilter)
    search_fields = ("goal", "id")
    inlines = (StepInline, EventInline, CheckpointInline)
    readonly_fields = ["timeline", "branches", *[f.name for f in AgentTask._meta.fields]]
    actions = ("pause_tasks", "resume_tasks", "cancel_tasks")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # goals are created through the service (command, API), never as raw rows

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # deleting a task would delete its append-only log with it

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:task_id>/timeline/",
                wrap(partial(views.task_timeline, model_admin=self)),
                name="tasks_app_agenttask_timeline",
            ),
            path(
                "<path:task_id>/timeline.json",
                wrap(partial(views.task_timeline_json, model_admin=self)),
                name="tasks_app_agenttask_timeline_json",
            ),
            path(
                "<path:task_id>/timeline/steps/<int:number>/transcript/",
                wrap(partial(views.step_transcript, model_admin=self)),
                name="tasks_app_agenttask_transcript",
            ),
            *branch_urls(self),  # forks and branches (tasks_app/admin/branches.py)
            *super().get_urls(),
        ]

    @admin.display(description="goal", ordering="goal")
    def goal_text(self, obj: AgentTask) -> str:
        return obj.goal if len(obj.goal) <= 80 else obj.goal[:79] + "…"

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, obj: AgentTask) -> str:
        return f"{obj.cost_usd:.4f}"

    @admin.display(description="timeline")
    def timeline(self, obj: AgentTask) -> str:
        return format_html('<a href="{}">timeline</a>', reverse("admin:tasks_app_agenttask_timeline", args=[obj.pk]))

    @admin.display(description="branches")
    def branches(self, obj: AgentTask) -> str:
        return branches_link(obj)

    def _control(self, request: HttpRequest, queryset: QuerySet[AgentTask], verb: str, call: Any) -> None:
        done = 0
        for task in queryset:
            try:
                call(str(task.pk))
            except (InvalidInput, TaskNotFound) as exc:
                self.message_user(request, f"{task.goal[:60]}: {exc}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb} {done} task(s).", messages.SUCCESS)

    @admin.action(description="Pause selected tasks", permissions=["change"])
    def pause_tasks(self, request: HttpRequest, queryset: QuerySet[AgentTask]) -> None:
        by = request.user.get_username()
        self._control(request, queryset, "Paused", lambda tid: agent_task_pause(task_id=tid, by=by))

    @admin.action(description="Resume selected tasks", permissions=["change"])
    def resume_tasks(self, request: HttpRequest, queryset: QuerySet[AgentTask]) -> None:
        by = request.user.get_username()
        self._control(request, queryset, "Resumed", lambda tid: agent_task_resume(task_id=tid, by=by))

    @admin.action(description="Cancel selected tasks", permissions=["change"])
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[AgentTask]) -> None:
        by = request.user.get_username()
        self._control(request, queryset, "Cancelled", lambda tid: agent_task_cancel(task_id=tid, by=by))
