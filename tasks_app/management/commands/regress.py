import json

from django.core.management.base import BaseCommand, CommandError

from agents.errors import TaskNotFound
from tasks_app.management import inputs
from tasks_app.services.regression import task_regress


class Command(BaseCommand):
    help = (
        "Re-run recorded tasks on the current code, answering every model and tool call from their "
        "journals, and report the first point where a task's decisions diverge. Exits non-zero when "
        "any task diverges (a regression test over recorded tasks, for CI)."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        inputs.one_line_errors(parser)
        parser.add_argument("task_ids", nargs="+", metavar="TASK_ID")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        reports = []
        for task_id in options["task_ids"]:
            try:
                reports.append(task_regress(task_id=task_id))
            except TaskNotFound as exc:
                raise CommandError(f"unknown task: {exc}") from None
        if options["json"]:
            self.stdout.write(json.dumps([r.to_json() for r in reports], indent=2, default=str))
        else:
            for r in reports:
                if r.divergence is None:
                    self.stdout.write(
                        f"task {r.task_id}: no divergence ({r.model_calls} model calls, {r.tool_calls} tool calls, "
                        f"{r.recorded_events} decisions replayed)"
                    )
                else:
                    self.stdout.write(f"task {r.task_id}: DIVERGES: {r.divergence.message}")
                    if r.divergence.kind == "event":
                        self.stdout.write(f"  recorded: {json.dumps(r.divergence.recorded, default=str)}")
                        self.stdout.write(f"  replayed: {json.dumps(r.divergence.replayed, default=str)}")
                for note in r.notes:
                    self.stdout.write(f"  note: {note}")
        diverged = [r.task_id for r in reports if r.diverged]
        if diverged:
            raise CommandError(f"{len(diverged)} of {len(reports)} task(s) diverge: {', '.join(diverged)}")
