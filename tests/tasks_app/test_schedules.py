"""Scheduled goals (issue 5, item 6): a GoalTemplate, its celery-beat rows, and the run that beat starts."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from agents.errors import InvalidInput
from tasks_app.models import AgentTask, GoalTemplate
from tasks_app.services.schedules import START_GUARD_SECONDS, goal_template_schedule
from tasks_app.tasks import start_goal

pytestmark = pytest.mark.django_db


def run(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def weekly() -> GoalTemplate:
    run(
        "schedule_goal",
        "weekly-report",
        "--goal",
        "Write the weekly report",
        "--cron",
        "0 9 * * 1",
        "--context",
        '{"team": "ops"}',
    )
    return GoalTemplate.objects.get(name="weekly-report")


def test_schedule_goal_creates_the_template_and_its_beat_rows() -> None:
    template = weekly()
    assert (template.goal, template.context, template.profile, template.enabled) == (
        "Write the weekly report",
        {"team": "ops"},
        "default",
        True,
    )
    periodic = PeriodicTask.objects.get(name="horizon.goal:weekly-report")
    assert template.periodic_task == periodic
    assert (periodic.task, json.loads(periodic.kwargs), periodic.queue, periodic.enabled) == (
        "horizon.start_goal",
        {"template": "weekly-report"},
        "horizon.control",
        True,
    )
    c = periodic.crontab
    assert c is not None and periodic.interval is None
    assert (c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week, str(c.timezone)) == ("0", "9", "*", "*", "1", "UTC")
    # Beat's own reading of the row (a celery crontab): Mondays at 9:00.
    schedule = periodic.schedule
    assert (schedule.minute, schedule.hour, schedule.day_of_week) == ({0}, {9}, {1})


def test_rescheduling_updates_the_same_rows_and_keeps_unspecified_fields() -> None:
    template = weekly()
    output = run("schedule_goal", "weekly-report", "--cron", "30 8 * * 1-5", "--timezone", "Europe/Paris")
    assert 'cron "30 8 * * 1-5" (Europe/Paris)' in output
    template.refresh_from_db()
    assert template.goal == "Write the weekly report" and template.context == {"team": "ops"}
    assert PeriodicTask.objects.filter(task="horizon.start_goal").count() == 1
    periodic = PeriodicTask.objects.get(pk=template.periodic_task_id)
    assert periodic.crontab is not None and (periodic.crontab.hour, periodic.crontab.day_of_week) == ("8", "1-5")
    run("schedule_goal", "weekly-report", "--every", "3600", "--goal", "Write the hourly report")
    periodic.refresh_from_db()
    template.refresh_from_db()
    assert periodic.crontab is None and periodic.interval is not None and periodic.interval.every == 3600
    assert template.goal == "Write the hourly report"


def as_beat_sends_it() -> Any:
    """Call horizon.start_goal with the keyword arguments of the schedule's beat row, as a worker does."""
    kwargs = json.loads(PeriodicTask.objects.get(name="horizon.goal:weekly-report").kwargs)
    return start_goal(**kwargs)


def test_the_celery_task_creates_a_goal_from_the_template() -> None:
    weekly()
    task_id = as_beat_sends_it()
    task = AgentTask.objects.get(pk=task_id)
    assert (task.goal, task.context, task.profile, task.status) == (
        "Write the weekly report",
        {"team": "ops"},
        "default",
        "pending",
    )
    assert GoalTemplate.objects.get().last_started_at is not None


def test_a_second_start_within_the_guard_starts_nothing_a_later_one_does() -> None:
    """Two beats during a rolling deploy (or a duplicated message) start one run, not two."""
    weekly()
    assert start_goal("weekly-report") is not None
    assert start_goal("weekly-report") is None
    assert AgentTask.objects.count() == 1
    GoalTemplate.objects.update(last_started_at=timezone.now() - timedelta(seconds=START_GUARD_SECONDS + 1))
    assert start_goal("weekly-report") is not None
    assert AgentTask.objects.count() == 2


def test_disabled_and_unknown_templates_start_nothing() -> None:
    weekly()
    assert run("schedule_goal", "weekly-report", "--disable").strip() == "template weekly-report disabled"
    assert PeriodicTask.objects.get(name="horizon.goal:weekly-report").enabled is False
    assert start_goal("weekly-report") is None
    assert start_goal("no-such-template") is None
    assert not AgentTask.objects.exists()
    # Scheduling it again enables both, with the schedule it had.
    run("schedule_goal", "weekly-report")
    assert PeriodicTask.objects.get(name="horizon.goal:weekly-report").enabled is True
    assert start_goal("weekly-report") is not None


def test_a_template_refused_at_run_time_is_logged_and_starts_nothing(caplog: pytest.LogCaptureFixture) -> None:
    weekly()
    GoalTemplate.objects.update(profile="removed-since")
    assert as_beat_sends_it() is None
    assert "scheduled goal 'weekly-report' not started: unknown profile 'removed-since'" in caplog.text
    assert not AgentTask.objects.exists() and GoalTemplate.objects.get().last_started_at is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["r", "--goal", "x", "--cron", "0 9 * *"], "needs 5 fields"),
        (["r", "--goal", "x", "--cron", "61 9 * * 1"], "the cron expression '61 9 \\* \\* 1' is invalid"),
        (["r", "--goal", "x", "--cron", "0 9 * * funday"], "is invalid"),
        (["r", "--goal", "x", "--every", "5"], "at least 60 seconds"),
        (["r", "--goal", "x", "--cron", "0 9 * * 1", "--every", "60"], "not allowed with argument"),
        (["r", "--goal", "x", "--cron", "0 9 * * 1", "--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["r", "--goal", "x", "--every", "60", "--timezone", "UTC"], "a time zone applies to a cron expression only"),
        (["r", "--cron", "0 9 * * 1"], "no template 'r' yet: give its goal"),
        (["r", "--goal", "x"], "no template 'r' yet: give its schedule"),
        (["r", "--goal", "  ", "--cron", "0 9 * * 1"], "the goal is empty"),
        (["r", "--goal", "x", "--cron", "0 9 * * 1", "--profile", "nope"], "unknown profile 'nope'"),
        (["r", "--goal", "x", "--cron", "0 9 * * 1", "--context", "{oops"], "--context is not valid JSON"),
        (["r", "--goal", "x", "--cron", "0 9 * * 1", "--context", "[1]"], "--context must be a JSON object"),
        (["r", "--goal", "x", "--cron", "0 9 * * 1", "--max-steps", "0"], "argument --max-steps: must be 1 or more"),
        (["r", "--disable"], "no goal template 'r'"),
        (["r", "--disable", "--goal", "x"], "--disable takes no other options"),
        (["", "--goal", "x", "--cron", "0 9 * * 1"], "a template name must be"),
    ],
)
def test_schedule_goal_refuses_bad_input_and_writes_nothing(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("schedule_goal", *args)
    assert not GoalTemplate.objects.exists()
    assert not PeriodicTask.objects.filter(task="horizon.start_goal").exists()


def test_the_service_refuses_both_schedules_at_once() -> None:
    with pytest.raises(InvalidInput, match="not both"):
        goal_template_schedule(name="r", goal="x", crontab="0 9 * * 1", every_seconds=60)
