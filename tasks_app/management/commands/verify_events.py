import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.services.audit import events_verify


def _keys(versions: tuple[int, ...]) -> str:
    """Which keys verified a chain; an unkeyed one proves consistency, not that the runtime wrote it."""
    keyed = [f"key version {v}" for v in versions if v]
    unkeyed = ["unkeyed SHA-256"] if 0 in versions else []
    return "verified with " + " then ".join(unkeyed + keyed) if versions else "empty"


class Command(HorizonCommand):
    help = (
        "Recompute the hash chain of tasks' event logs and report the first event that does not verify "
        "(changed, removed or reordered after it was written). Exits non-zero when any chain is broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_ids", nargs="*", metavar="ID")
        parser.add_argument("--all", action="store_true", help="every task")
        parser.add_argument(
            "--allow-unkeyed",
            action="store_true",
            help="accept plain SHA-256 events although HORIZON_AUDIT_KEY is set (logs written before the key)",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = options["task_ids"]
        if bool(ids) == bool(options["all"]):
            raise CommandError("give task ids or --all (not both)")
        broken = []
        checked = 0
        allow = True if options["allow_unkeyed"] else None
        for report in events_verify(task_ids=None if options["all"] else ids, allow_unkeyed=allow):
            checked += 1
            if options["json"]:
                self.stdout.write(json.dumps(report.to_json()))
            elif report.ok:
                self.stdout.write(f"task {report.task_id}: ok ({report.events} events, {_keys(report.key_versions)})")
            else:
                self.stdout.write(f"task {report.task_id}: BROKEN at event {report.broken_seq}: {report.reason}")
            if not report.ok:
                broken.append(report)
        if broken:
            first = broken[0]
            raise CommandError(
                f"{len(broken)} of {checked} event logs do not verify; first: task {first.task_id} at event {first.broken_seq}"
            )
