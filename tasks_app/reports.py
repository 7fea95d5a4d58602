"""The admin's report pages: outcomes per agent profile, the stuck-task report, forked tasks.

Thin views over the selectors (tasks_app/selectors/); served under /admin/reports/ behind the admin's
login (horizon_project/urls.py), for staff who may view tasks.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tasks_app.readable import duration_text
from tasks_app.selectors.branches import forked_tasks
from tasks_app.selectors.outcomes import ProfileOutcomes, outcomes_by_profile
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
    rows = [{**r.__dict__, **_rates(r), "mean_duration_text": duration_text(r.mean_duration)} for r in outcomes_by_profile()]
    context = {**admin.site.each_context(request), "title": "Outcomes per agent profile", "rows": rows}
    return TemplateResponse(request, "tasks_app/reports/outcomes.html", context)


def _rates(r: ProfileOutcomes) -> dict[str, float | None]:
    return {"completion_rate": r.completion_rate, "escalation_rate": r.escalation_rate}


def branches_page(request: HttpRequest) -> HttpResponse:
    """Tasks that were forked, each with a link to its Branches page (the comparison of its forks)."""
    _check(request)
    context = {**admin.site.each_context(request), "title": "Forked tasks and their branches", "rows": forked_tasks()}
    return TemplateResponse(request, "tasks_app/reports/branches.html", context)


def stuck_page(request: HttpRequest) -> HttpResponse:
    _check(request)
    human_hours = _hours(request, "human_hours", DEFAULT_HUMAN_HOURS)
    wait_hours = _hours(request, "wait_hours", DEFAULT_WAIT_HOURS)
    rows = stuck_tasks(human_hours=human_hours, wait_hours=wait_hours)
    groups = [(category, [r for r in rows if r.category == category]) for category in CATEGORIES]
    context = {
        **admin.site.each_context(request),
        "title": f"Stuck tasks ({len(rows)})",  # the page's one heading
        "groups": groups,
        "human_hours": human_hours,
        "wait_hours": wait_hours,
        "total": len(rows),
    }
    return TemplateResponse(request, "tasks_app/reports/stuck.html", context)
