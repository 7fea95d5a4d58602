"""The admin's forks and branches: a "Fork from checkpoint" link on each checkpoint of a task's page,
its confirmation page (optionally another profile or model), and the Branches page comparing the
task with its forks. Thin interfaces: the fork is `agent_task_fork`, the comparison is the
`task_branches` selector that `manage.py compare_branches` prints."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from agents.errors import InvalidInput
from tasks_app.admin.common import ModelAdmin, ReadOnlyInline
from tasks_app.models import AgentTask, Checkpoint
from tasks_app.runtime import profiles
from tasks_app.selectors.branches import task_branches
from tasks_app.selectors.history import checkpoint_get
from tasks_app.services.forks import agent_task_fork
from tasks_app.views import viewable_task


class CheckpointInline(ReadOnlyInline):
    model = Checkpoint
    fields = ("seq", "event_seq", "created_at", "fork")
    ordering = ("seq",)

    def has_view_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Whoever may see the task sees where it can be forked from (the fork itself needs more).
        return bool(request.user.has_perm("tasks_app.view_agenttask") or request.user.has_perm("tasks_app.change_agenttask"))

    @admin.display(description="fork")
    def fork(self, obj: Checkpoint) -> str:
        url = reverse("admin:tasks_app_agenttask_fork", args=[obj.task_id, obj.seq])
        return format_html('<a href="{}">Fork from checkpoint #{}</a>', url, obj.seq)


def fork_view(request: HttpRequest, task_id: str, seq: int, *, model_admin: ModelAdmin) -> HttpResponse:
    """GET: what the fork will start from; POST: fork (needs the change permission on tasks)."""
    task = viewable_task(model_admin, request, task_id)
    checkpoint = checkpoint_get(task=task, seq=seq)
    if checkpoint is None:
        raise Http404(f"task {task_id} has no checkpoint {seq}")
    if request.method == "POST":
        if not model_admin.has_change_permission(request):
            raise PermissionDenied
        try:
            fork = agent_task_fork(
                source_task_id=str(task.pk),
                checkpoint_seq=seq,
                profile=request.POST.get("profile") or None,
                model=request.POST.get("model") or None,
            )
        except InvalidInput as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
        else:
            model_admin.message_user(request, f"Forked from checkpoint #{seq}: task {fork.pk}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:tasks_app_agenttask_change", args=[fork.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": AgentTask._meta,
        "title": f"Fork from checkpoint #{seq}",
        "task_obj": task,
        "checkpoint": checkpoint,
        "state": checkpoint.state,
        "profiles": sorted(profiles()),
        "can_fork": model_admin.has_change_permission(request),
    }
    return render(request, "admin/tasks_app/agenttask/fork.html", context)


def branches_view(request: HttpRequest, task_id: str, *, model_admin: ModelAdmin) -> HttpResponse:
    task = viewable_task(model_admin, request, task_id)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": AgentTask._meta,
        "title": f"Branches: {task.goal[:80]}",
        "task_obj": task,
        "branches": task_branches(task_id=str(task.pk)),
    }
    return render(request, "admin/tasks_app/agenttask/branches.html", context)


def branch_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    wrap = model_admin.admin_site.admin_view

    def bound(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        return wrap(lambda request, **kwargs: view(request, model_admin=model_admin, **kwargs))

    return [
        path("<path:task_id>/fork/<int:seq>/", bound(fork_view), name="tasks_app_agenttask_fork"),
        path("<path:task_id>/branches/", bound(branches_view), name="tasks_app_agenttask_branches"),
    ]


def branches_link(obj: AgentTask) -> str:
    return format_html('<a href="{}">branches</a>', reverse("admin:tasks_app_agenttask_branches", args=[obj.pk]))
