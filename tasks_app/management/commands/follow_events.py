import json
import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from agents.status import TaskStatus
from agents.types import EventRecord
from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.readable import event_text
from tasks_app.store import store_for, task_pk


class Command(HorizonCommand):
    help = (
        "Print a task's events as they arrive (the database is polled), until the task ends or --timeout passes. "
        "A task waiting for a person has not ended: follow it with --timeout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument(
            "--after", type=inputs.count, default=0, metavar="SEQ", help="start after this event (default: the first)"
        )
        parser.add_argument(
            "--timeout", type=inputs.seconds, default=None, metavar="S", help="stop after S seconds (default: never)"
        )
        parser.add_argument("--interval", type=inputs.seconds, default=0.5, metavar="S", help="seconds between polls")
        parser.add_argument("--json", action="store_true", help="one JSON object per event and line, with the whole payload")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["after"] < 0:
            raise CommandError("--after must be 0 or a positive event seq")
        if options["timeout"] is not None and options["timeout"] < 0:
            raise CommandError("--timeout must be positive")
        if not 0 < options["interval"] <= 60:
            raise CommandError("--interval must be between 0 and 60 seconds")
        store = store_for()
        task_id = str(task_pk(options["task_id"]))
        store.get_task(task_id)
        deadline = time.monotonic() + options["timeout"] if options["timeout"] is not None else None
        after = options["after"]
        while True:
            # Read the status before the events: a task that has ended wrote its last event first,
            # so this poll's events include it and the loop can stop without one more round.
            status = store.get_task(task_id).status
            for event in store.events(task_id, after_seq=after):
                self._print(event, as_json=options["json"])
                after = event.seq
            self.stdout.flush()
            if status in TaskStatus.TERMINAL:
                if not options["json"]:
                    self.stdout.write(f"task {task_id} ended: {status}")
                return
            if deadline is not None and time.monotonic() >= deadline:
                if not options["json"]:
                    self.stdout.write(f"timed out after {options['timeout']:g} s; task {task_id} is {status}")
                return
            time.sleep(
                options["interval"] if deadline is None else max(0.0, min(options["interval"], deadline - time.monotonic()))
            )

    def _print(self, event: EventRecord, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "seq": event.seq,
                        "type": event.type,
                        "payload": event.payload,
                        "worker": event.worker,
                        "created_at": event.created_at.isoformat() if event.created_at else None,
                    },
                    default=str,
                )
            )
            return
        when = event.created_at.strftime("%H:%M:%S") if event.created_at else "--:--:--"
        # One readable line (tasks_app/readable.py); --json keeps the whole payload.
        self.stdout.write(f"#{event.seq:<4} {when} {event.type:<18} {event_text(event.type, event.payload)}")
