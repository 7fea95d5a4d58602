import json
from datetime import UTC, timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.readable import duration_text
from tasks_app.services.schedules import goal_template_disable, goal_template_schedule


class Command(HorizonCommand):
    help = (
        "Create or update a goal template that celery-beat starts on a schedule, e.g. "
        '`schedule_goal weekly-report --goal "Write the weekly report" --cron "0 9 * * 1"` (Mondays at 9:00). '
        "Options left out keep an existing template's values. --disable stops its runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("name", help="the template's unique name")
        parser.add_argument("--goal", type=inputs.text, help="what each run's agent should achieve")
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--cron", help='minute hour day-of-month month day-of-week, e.g. "0 9 * * 1"')
        when.add_argument("--every", type=inputs.positive, metavar="SECONDS", help="an interval instead of a cron expression")
        when.add_argument("--disable", action="store_true", help="stop the template's runs (its schedule is kept)")
        parser.add_argument("--timezone", help="the cron expression's time zone (default: CELERY_TIMEZONE)")
        parser.add_argument("--context", help="each run's initial context, as a JSON object")
        parser.add_argument("--profile", type=inputs.text)
        parser.add_argument("--max-steps", type=inputs.positive)
        parser.add_argument("--json", action="store_true", help='print {"name", "schedule", "goal", "next_run"} as JSON')

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        if options["disable"]:
            given = [f"--{k.replace('_', '-')}" for k in ("goal", "context", "profile", "max_steps", "timezone") if options[k]]
            if given:
                raise CommandError(f"--disable takes no other options (got {', '.join(given)})")
            goal_template_disable(name=name)
            self.stdout.write(f"template {name} disabled")
            return
        context = None
        if options["context"] is not None:
            context = inputs.json_object_option(options["context"], "--context")
        template = goal_template_schedule(
            name=name,
            goal=options["goal"],
            context=context,
            profile=options["profile"],
            max_steps=options["max_steps"],
            crontab=options["cron"],
            every_seconds=options["every"],
            timezone_name=options["timezone"],
        )
        periodic = template.periodic_task
        assert periodic is not None  # goal_template_schedule always leaves one
        if periodic.crontab is not None:
            c = periodic.crontab
            when = f'cron "{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}" ({c.timezone})'
        else:
            when = f"every {periodic.interval.every} {periodic.interval.period}" if periodic.interval else "?"
        now = timezone.now()
        due = None
        if template.enabled and periodic.enabled:
            due = now + periodic.schedule.remaining_estimate(periodic.last_run_at or now)
            due = (due + timedelta(seconds=30)).replace(second=0, microsecond=0)  # the estimate's clock is not ours
        if options["json"]:
            data = {"name": template.name, "schedule": when, "goal": template.goal, "next_run": due.isoformat() if due else None}
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(f"template {template.name} scheduled {when}: {template.goal}")
        if due is not None:
            utc = due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            self.stdout.write(f"  next run: {utc} (in {duration_text(due - now)}), when celery-beat runs")
        else:
            self.stdout.write("  disabled: no run is scheduled (schedule it again without --disable to enable it)")
