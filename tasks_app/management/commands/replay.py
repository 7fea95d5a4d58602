import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.services.replay import task_replay


class Command(HorizonCommand):
    help = (
        "Rebuild a task's state from its events and compare it with its latest checkpoint. "
        "Exits non-zero when they differ or the log cannot be replayed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        report = task_replay(task_id=options["task_id"])
        if options["json"]:
            self.stdout.write(json.dumps(report.to_json(), indent=2, default=str))
        elif report.error:
            pass  # said by the CommandError below
        elif report.checkpoint_seq is None:
            self.stdout.write(f"task {report.task_id}: no checkpoint yet; its {report.events} events replay cleanly")
        elif report.matches:
            self.stdout.write(
                f"task {report.task_id}: matches: checkpoint #{report.checkpoint_seq} equals the state rebuilt from "
                f"events 1-{report.checkpoint_event_seq} ({report.events} events in the log)"
            )
        else:
            self.stdout.write(f"task {report.task_id}: checkpoint #{report.checkpoint_seq} differs from the replayed state:")
            for key, values in report.differences.items():
                self.stdout.write(f"  {key}: checkpoint {values['checkpoint']!r}, replayed {values['replayed']!r}")
        if report.error:
            raise CommandError(f"task {report.task_id}: the event log cannot be replayed: {report.error}")
        if not report.matches:
            raise CommandError(
                f"task {report.task_id}: checkpoint #{report.checkpoint_seq} differs in {', '.join(report.differences)}"
            )
