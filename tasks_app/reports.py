"""Two admin report pages: outcomes per agent profile and the stuck-task report.

Thin views over the selectors (tasks_app/selectors/); served under /admin/reports/ behind the admin's
login (horizon_project/urls.py), for staff who may view tasks.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tasks_app.selectors.outcomes import outcomes_by_profile
from tasks_app.selectors.stuck import CATEGORIES, DEFAULT_HUMAN_HOURS, DEFAULT_WAIT_HOURS, stuck_tasks


def _check(request: HttpRequest) -> None:
    if not request.user.has_perm("tasks_app.view_agenttask"):
        raise PermissionDenied


def _hours(request: HttpRequest, name: str, default: float) -> float:
    try:
        value = float(request.GET.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def outcomes_page(request: HttpRequest) -> HttpResponse:
    _check(request)
    context = {**admin.site.each_context(request), "title": "Outcomes per agent profile", "rows": outcomes_by_profile()}
    return TemplateResponse(request, "tasks_app/reports/outcomes.html", context)


def stuck_page(request: HttpRequest) -> HttpResponse:
    _check(request)
    human_hours = _hours(request, "human_hours", DEFAULT_HUMAN_HOURS)
    wait_hours = _hours(request, "wait_hours", DEFAULT_WAIT_HOURS)
    rows = stuck_tasks(human_hours=human_hours, wait_hours=wait_hours)
    groups = [(category, [r for r in rows if r.category == category]) for category in CATEGORIES]
    context = {
        **admin.site.each_context(request),
        "title": "Stuck tasks",
        "groups": groups,
        "human_hours": human_hours,
        "wait_hours": wait_hours,
        "total": len(rows),
    }
    return TemplateResponse(request, "tasks_app/reports/stuck.html", context)
