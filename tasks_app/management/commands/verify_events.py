import json

from django.core.management.base import BaseCommand, CommandError

from agents.errors import TaskNotFound
from tasks_app.services.audit import events_verify


class Command(BaseCommand):
    help = (
        "Recompute the hash chain of tasks' event logs and report the first event that does not verify "
        "(changed, removed or reordered after it was written). Exits non-zero when any chain is broken."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("task_ids", nargs="*", metavar="ID")
        parser.add_argument("--all", action="store_true", help="every task")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        ids = options["task_ids"]
        if bool(ids) == bool(options["all"]):
            raise CommandError("give task ids or --all (not both)")
        broken = []
        checked = 0
        try:
            for report in events_verify(task_ids=None if options["all"] else ids):
                checked += 1
                if options["json"]:
                    self.stdout.write(json.dumps(report.to_json()))
                elif report.ok:
                    self.stdout.write(f"task {report.task_id}: ok ({report.events} events)")
                else:
                    self.stdout.write(f"task {report.task_id}: BROKEN at event {report.broken_seq}: {report.reason}")
                if not report.ok:
                    broken.append(report)
        except TaskNotFound as exc:
            raise CommandError(str(exc)) from None
        if broken:
            first = broken[0]
            raise CommandError(
                f"{len(broken)} of {checked} event logs do not verify; first: task {first.task_id} at event {first.broken_seq}"
            )
