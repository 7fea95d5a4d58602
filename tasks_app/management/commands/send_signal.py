from typing import Any

from django.core.management.base import CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.services.control import signal_send


class Command(HorizonCommand):
    help = "Send a signal to a task: it wakes a wait_for_signal, or waits in the inbox for one."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument("name", type=inputs.text)
        parser.add_argument("--payload", default="null", help="a JSON value delivered with the signal")

    def handle(self, *args: Any, **options: Any) -> None:
        payload = inputs.json_option(options["payload"], "--payload")
        signal = signal_send(task_id=options["task_id"], name=options["name"], payload=payload)
        self.stdout.write(f"signal {signal.name} #{signal.id} sent to {options['task_id']}")
