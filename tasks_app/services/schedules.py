"""Scheduled goals: a GoalTemplate that celery-beat starts on a crontab or an interval.

The schedule is a django-celery-beat PeriodicTask (task "horizon.start_goal", kwargs {"template": name},
queue horizon.control), so operators see and edit it in the admin next to the sweep. Each run creates a
new task from the template through agent_task_create, like any other goal.

A run starts at most once per START_GUARD_SECONDS: the start is a conditional UPDATE of the template's
last_started_at in the same transaction as the new task, so a second beat during a rolling deploy (or
a duplicated message) finds the row already stamped and starts nothing.
"""

from __future__ import annotations

import json
import logging
import zoneinfo
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.validators import crontab_validator

from agents.errors import InvalidInput
from tasks_app.conf import settings
from tasks_app.models import AgentTask, GoalTemplate
from tasks_app.services.tasks import agent_task_create, new_task_validated

logger = logging.getLogger("horizon.schedules")

START_TASK = "horizon.start_goal"
QUEUE = "horizon.control"
NAME_MAX = 100
# Cron's resolution is a minute; an interval schedule may not be shorter either.
MIN_INTERVAL_SECONDS = 60
START_GUARD_SECONDS = 30


def periodic_task_name(template_name: str) -> str:
    return f"horizon.goal:{template_name}"


def _parse_crontab(expression: str) -> dict[str, str]:
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidInput(
            f"the cron expression {expression!r} needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    try:
        crontab_validator(" ".join(fields))
    except ValidationError as exc:
        raise InvalidInput(f"the cron expression {expression!r} is invalid: {'; '.join(exc.messages)}") from None
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None


def _validate_template(template: GoalTemplate) -> None:
    """Refuse a template that agent_task_create would refuse, now rather than at its first run; keep
    its goal and context as validated (secrets redacted), as every task it starts would have them."""
    new = new_task_validated(goal=template.goal, context=template.context, profile=template.profile, max_steps=template.max_steps)
    template.goal, template.context = new.goal, new.context


def goal_template_schedule(
    *,
    name: str,
    goal: str | None = None,
    context: dict[str, Any] | None = None,
    profile: str | None = None,
    max_steps: int | None = None,
    crontab: str | None = None,
    every_seconds: int | None = None,
    timezone_name: str | None = None,
) -> GoalTemplate:
    """Create or update a template and its schedule, and enable both.

    For an existing template, arguments left as None keep their values (its schedule included).
    A new template needs a goal and exactly one of crontab ("0 9 * * 1": Mondays at 9:00) or every_seconds.
    Raises InvalidInput; nothing is written then.
    """
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a template name must be 1 to {NAME_MAX} characters")
    if crontab is not None and every_seconds is not None:
        raise InvalidInput("give a cron expression or an interval, not both")
    if every_seconds is not None and every_seconds < MIN_INTERVAL_SECONDS:
        raise InvalidInput(f"the interval must be at least {MIN_INTERVAL_SECONDS} seconds")
    cron_fields = _parse_crontab(crontab) if crontab is not None else None
    if timezone_name is not None:
        _zone(timezone_name)
        if crontab is None:
            raise InvalidInput("a time zone applies to a cron expression only")
    with transaction.atomic():
        template = GoalTemplate.objects.select_for_update().filter(name=name).first()
        new = template is None
        if template is None:
            if goal is None:
                raise InvalidInput(f"no template {name!r} yet: give its goal")
            if cron_fields is None and every_seconds is None:
                raise InvalidInput(f"no template {name!r} yet: give its schedule (a cron expression or an interval)")
            template = GoalTemplate(name=name, goal=goal)
        if goal is not None:
            template.goal = goal.strip() if isinstance(goal, str) else goal
        if context is not None:
            template.context = context
        if profile is not None:
            template.profile = profile
        if max_steps is not None:
            template.max_steps = max_steps
        _validate_template(template)
        template.enabled = True
        template.save()

        periodic = template.periodic_task
        if periodic is None:
            if cron_fields is None and every_seconds is None:
                raise InvalidInput(f"template {name!r} has no schedule (it was deleted): give a cron expression or an interval")
            periodic = PeriodicTask(name=periodic_task_name(name))
        if cron_fields is not None:
            schedule, _ = CrontabSchedule.objects.get_or_create(
                **cron_fields, timezone=_zone(timezone_name or settings.CELERY_TIMEZONE)
            )
            periodic.crontab, periodic.interval = schedule, None
        elif every_seconds is not None:
            interval, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
            periodic.interval, periodic.crontab = interval, None
        periodic.task = START_TASK
        periodic.kwargs = json.dumps({"template": name})
        periodic.queue = QUEUE
        periodic.enabled = True
        periodic.description = f"Horizon: start a goal from template {name!r}"
        # save(), not update(): django-celery-beat's signal bumps its change marker so that a
        # running beat reloads the schedule.
        periodic.save()
        if template.periodic_task_id != periodic.pk:
            template.periodic_task = periodic
            template.save(update_fields=["periodic_task"])
    # DEBUG: schedule_goal prints this itself; the admin's periodic task row is the record.
    logger.debug("goal template %r %s: %s", name, "created" if new else "updated", periodic.crontab or periodic.interval)
    return template


def goal_template_disable(*, name: str) -> GoalTemplate:
    """Stop a template's runs; its schedule row stays (disabled), so enabling it again keeps the schedule."""
    with transaction.atomic():
        template = GoalTemplate.objects.select_for_update().filter(name=name).first()
        if template is None:
            raise InvalidInput(f"no goal template {name!r}")
        template.enabled = False
        template.save(update_fields=["enabled"])
        if template.periodic_task is not None:
            template.periodic_task.enabled = False
            template.periodic_task.save()
    return template


def goal_template_start(*, name: str) -> AgentTask | None:
    """Create a task from the template (beat's run). Unknown, disabled or just-started templates start nothing."""
    now = timezone.now()
    with transaction.atomic():
        stamped = (
            GoalTemplate.objects.filter(name=name, enabled=True)
            .filter(Q(last_started_at__isnull=True) | Q(last_started_at__lt=now - timedelta(seconds=START_GUARD_SECONDS)))
            .update(last_started_at=now)
        )
        if not stamped:
            template = GoalTemplate.objects.filter(name=name).first()
            if template is None:
                logger.warning("scheduled goal: no template %r; nothing started", name)
            elif not template.enabled:
                logger.info("scheduled goal: template %r is disabled; nothing started", name)
            else:
                logger.info(
                    "scheduled goal: template %r was started at %s already; nothing started", name, template.last_started_at
                )
            return None
        template = GoalTemplate.objects.get(name=name)
        # The template was validated when it was saved, but a profile may have been removed since:
        # the InvalidInput rolls the stamp back and is logged by the Celery task.
        task = agent_task_create(
            goal=template.goal, context=template.context, profile=template.profile, max_steps=template.max_steps
        )
    logger.info("scheduled goal: template %r started task %s", name, task.pk)
    return task
