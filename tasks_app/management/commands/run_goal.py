import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandParser

from agents.model import Model
from agents.runner import TickOutcome
from agents.scripted import ScriptedModel
from agents.types import LLMRequest, LLMResponse
from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.management.reporting import EXIT_COMPLETED, drive_command, exit_status, print_result, print_tick
from tasks_app.runtime import build_runner, default_model, model_description
from tasks_app.services.tasks import agent_task_create, agent_task_drive


class CrashMidStep:
    """Demo only: wraps the model and SIGKILLs the process once step N has a tool result.

    By then the step's first model answer and its tool result are journaled but the step is not
    committed, which is the crash the journal exists for: the resumed step reuses both.
    """

    def __init__(self, inner: Model, *, step_number: int, announce: Callable[[str], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self.offline = getattr(inner, "offline", False)
        self.step_index = step_number - 1
        self.announce = announce

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.step_index == self.step_index and any(m.get("role") == "tool" for m in request.messages):
            self.announce(f"--crash-in-step {self.step_index + 1}")
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.complete(request)


class Command(HorizonCommand):
    help = (
        "Create a goal and drive it to its end in this process (no broker needed), printing each step. "
        "Exits 0 when the task completed, 1 when it failed or was cancelled, 3 when it waits (for a person, "
        "a timer, a signal or a retry): the last lines then print the command that continues it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("goal", type=inputs.text, help="what the agent should achieve")
        parser.add_argument("--context", default="{}", help="initial context as a JSON object")
        parser.add_argument("--scenario", help="a scenario file for the offline scripted model")
        parser.add_argument("--profile", default="default", type=inputs.text)
        parser.add_argument(
            "--crash-after",
            type=inputs.positive,
            metavar="N",
            help="demo: SIGKILL this process after N ticks, to show that `drive --task ID` resumes the task",
        )
        parser.add_argument(
            "--crash-in-step",
            type=inputs.positive,
            metavar="N",
            help="demo: SIGKILL this process in the middle of step N, after its first tool call was journaled",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def _announce_crash(self, task_id: str) -> Callable[[str], None]:
        def announce(why: str) -> None:
            self.stdout.write(
                self.style.WARNING(
                    f"{why}: killing this process now (SIGKILL). Resume with: python manage.py drive --task {task_id}"
                )
            )
            self.stdout.flush()

        return announce

    def handle(self, *args: Any, **options: Any) -> None:
        context = inputs.json_object_option(options["context"], "--context")
        model = ScriptedModel.from_file(options["scenario"]) if options["scenario"] else default_model()
        task = agent_task_create(goal=options["goal"], context=context, profile=options["profile"])
        task_id = str(task.id)
        quiet = options["json"]
        if options["crash_in_step"] is not None:
            model = CrashMidStep(model, step_number=options["crash_in_step"], announce=self._announce_crash(task_id))
        if not quiet:
            self.stdout.write(f"model: {model_description(model)}")
            self.stdout.write(f"task {task_id} created: {task.goal}")
        started = time.monotonic()
        runner = build_runner(model=model)
        ticks = 0

        def on_tick(outcome: TickOutcome) -> None:
            nonlocal ticks
            ticks += 1
            if not quiet:
                if outcome.task_id != task_id:
                    self.stdout.write(f"sub-agent {outcome.task_id}:")
                print_tick(self.stdout, self.style, outcome)
            if options["crash_after"] is not None and ticks >= options["crash_after"]:
                self._announce_crash(task_id)(f"--crash-after {options['crash_after']}")
                os.kill(os.getpid(), signal.SIGKILL)

        agent_task_drive(task_id=task_id, model=model, on_tick=on_tick)
        result = runner.result(task_id, duration_s=time.monotonic() - started, ticks=ticks)
        scenario = options["scenario"]
        print_result(self.stdout, self.style, result, as_json=quiet, drive=lambda tid: drive_command(tid, scenario))
        # Not 0 unless the task completed: a script must not take a waiting or failed task for done.
        if (code := exit_status(result.status)) != EXIT_COMPLETED:
            self.stdout.flush()
            sys.exit(code)
