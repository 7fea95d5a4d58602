import time
from typing import Any

from django.core.management.base import CommandParser

from agents.runner import TickOutcome
from agents.scripted import ScriptedModel
from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.management.reporting import drive_command, print_result, print_tick
from tasks_app.runtime import build_runner, default_model, model_description
from tasks_app.services.tasks import agent_task_drive


class Command(HorizonCommand):
    help = "Drive due tasks in this process: claim and tick them until nothing is due. With --task, resume one task."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("--task", dest="task_id", help="resume this task only, and print its result")
        parser.add_argument("--scenario", help="a scenario file for the offline scripted model")
        parser.add_argument("--max-ticks", type=inputs.positive, help="stop after this many ticks")
        parser.add_argument("--json", action="store_true", help="with --task: print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        model = ScriptedModel.from_file(options["scenario"]) if options["scenario"] else default_model()
        task_id = options["task_id"]
        runner = build_runner(model=model)
        quiet = options["json"]
        if not quiet:
            self.stdout.write(f"model: {model_description(model)}")
        if task_id is not None:
            record = runner.store.get_task(task_id)
            checkpoint = runner.store.latest_checkpoint(task_id)
            if not quiet:
                where = f"checkpoint #{checkpoint.seq} (through event {checkpoint.event_seq})" if checkpoint else "the start"
                self.stdout.write(f"resuming task {task_id} ({record.status}) from {where}")

        def on_tick(outcome: TickOutcome) -> None:
            if not quiet:
                if task_id is None or outcome.task_id != task_id:  # another task, or one of its sub-agents
                    self.stdout.write(f"task {outcome.task_id}:")
                print_tick(self.stdout, self.style, outcome)

        started = time.monotonic()
        ticks = agent_task_drive(task_id=task_id, model=model, max_ticks=options["max_ticks"], on_tick=on_tick)
        if task_id is not None:
            result = runner.result(task_id, duration_s=time.monotonic() - started, ticks=ticks)
            scenario = options["scenario"]  # the next drive needs the same scripted model
            print_result(self.stdout, self.style, result, as_json=quiet, drive=lambda tid: drive_command(tid, scenario))
        else:
            self.stdout.write(f"{ticks} ticks run; nothing more is due")
