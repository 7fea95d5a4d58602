from typing import Any

from django.core.management.base import CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.services.control import agent_task_cancel, agent_task_pause, agent_task_resume


class Command(HorizonCommand):
    help = "Cancel, pause or resume a task. Cancelling a task cancels its children too."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("action", choices=["cancel", "pause", "resume"])
        parser.add_argument("task_id")
        parser.add_argument("--reason", default="", type=inputs.text, help="why (cancel, pause); kept on the task and its event")
        parser.add_argument(
            "--compensate", action="store_true", help="cancel: then undo the recorded side effects of tools that declare an undo"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        task_id, action = options["task_id"], options["action"]
        if action == "cancel":
            ids = agent_task_cancel(task_id=task_id, reason=options["reason"], compensate=options["compensate"])
            self.stdout.write(f"cancelled {len(ids)} task(s): {', '.join(ids)}")
        elif action == "pause":
            agent_task_pause(task_id=task_id, reason=options["reason"])
            self.stdout.write(f"paused {task_id}")
        else:
            agent_task_resume(task_id=task_id)
            self.stdout.write(f"resumed {task_id}")
