import json
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.readable import manage_py
from tasks_app.selectors.stuck import CATEGORIES, DEFAULT_HUMAN_HOURS, DEFAULT_WAIT_HOURS, stuck_tasks


class Command(HorizonCommand):
    help = (
        "Report tasks that will not finish on their own: past their deadline, a lease without progress, "
        "a wait that can never be satisfied, waiting for a human too long. Reads only; exits 0 when it finds none "
        "and 1 when it reports any (so cron or a health check can alert on it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument(
            "--human-hours", type=inputs.seconds, default=DEFAULT_HUMAN_HOURS, help="requires_human for longer than this"
        )
        parser.add_argument(
            "--wait-hours", type=inputs.seconds, default=DEFAULT_WAIT_HOURS, help="a signal wait without timeout older than this"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("human_hours", "wait_hours"):
            if not options[name] > 0:
                raise CommandError(f"--{name.replace('_', '-')} must be a positive number of hours")
        rows = stuck_tasks(human_hours=options["human_hours"], wait_hours=options["wait_hours"])
        if options["json"]:
            self.stdout.write(json.dumps([r.to_json() for r in rows], indent=2))
        elif not rows:
            self.stdout.write("no stuck tasks")
        else:
            for category in CATEGORIES:
                found = [r for r in rows if r.category == category]
                if found:
                    self.stdout.write(self.style.WARNING(f"{category} ({len(found)})"))
                for r in found:
                    self.stdout.write(f"  {r.task_id}  {r.status:<15} {r.profile:<10} {r.goal[:60]!r}: {r.detail}")
            self.stdout.write(f"{len(rows)} stuck task(s); {manage_py()} task_status ID shows one")
        if rows:
            self.stdout.flush()
            sys.exit(1)
