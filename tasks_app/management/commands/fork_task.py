import time
from typing import Any

from django.core.management.base import CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.management.reporting import print_result
from tasks_app.runtime import build_runner
from tasks_app.services.forks import agent_task_fork
from tasks_app.services.tasks import agent_task_drive


class Command(HorizonCommand):
    help = (
        "Create a new task from a checkpoint of another (optionally with another profile or model). "
        "Calls journaled before the checkpoint are reused; the rest runs again. The source is not touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument("--checkpoint", type=inputs.positive, required=True, help="the source's checkpoint seq to start from")
        parser.add_argument("--profile", type=inputs.text, help="run the fork under this profile (as configured now)")
        parser.add_argument("--model", type=inputs.text, help="run the fork with this model")
        parser.add_argument("--run", action="store_true", help="drive the fork to its end in this process and print its result")

    def handle(self, *args: Any, **options: Any) -> None:
        fork = agent_task_fork(
            source_task_id=options["task_id"],
            checkpoint_seq=options["checkpoint"],
            profile=options["profile"],
            model=options["model"],
        )
        self.stdout.write(f"fork {fork.pk} of {options['task_id']} from checkpoint #{options['checkpoint']} ({fork.status})")
        if options["run"]:
            started = time.monotonic()
            ticks = agent_task_drive(task_id=str(fork.pk))
            result = build_runner().result(str(fork.pk), duration_s=time.monotonic() - started, ticks=ticks)
            print_result(self.stdout, self.style, result)
