from django.core.management.base import BaseCommand, CommandError

from agents.errors import InvalidInput, TaskNotFound
from tasks_app.management import inputs
from tasks_app.services.control import signal_send


class Command(BaseCommand):
    help = "Send a signal to a task: it wakes a wait_for_signal, or waits in the inbox for one."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument("name", type=inputs.text)
        parser.add_argument("--payload", default="null", help="a JSON value delivered with the signal")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        payload = inputs.json_option(options["payload"], "--payload")
        try:
            signal = signal_send(task_id=options["task_id"], name=options["name"], payload=payload)
        except (TaskNotFound, InvalidInput) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"signal {signal.name} #{signal.id} sent to {options['task_id']}")
