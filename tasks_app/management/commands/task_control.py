from django.core.management.base import BaseCommand, CommandError

from agents.errors import InvalidInput, TaskNotFound
from agents.status import TransitionError
from tasks_app.management import inputs
from tasks_app.services.control import agent_task_cancel, agent_task_pause, agent_task_resume


class Command(BaseCommand):
    help = "Cancel, pause or resume a task. Cancelling a task cancels its children too."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        inputs.one_line_errors(parser)
        parser.add_argument("action", choices=["cancel", "pause", "resume"])
        parser.add_argument("task_id")
        parser.add_argument("--reason", default="", type=inputs.text, help="why (cancel, pause); kept on the task and its event")
        parser.add_argument(
            "--compensate", action="store_true", help="cancel: then undo the recorded side effects of tools that declare an undo"
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        task_id, action = options["task_id"], options["action"]
        try:
            if action == "cancel":
                ids = agent_task_cancel(task_id=task_id, reason=options["reason"], compensate=options["compensate"])
                self.stdout.write(f"cancelled {len(ids)} task(s): {', '.join(ids)}")
            elif action == "pause":
                agent_task_pause(task_id=task_id, reason=options["reason"])
                self.stdout.write(f"paused {task_id}")
            else:
                agent_task_resume(task_id=task_id)
                self.stdout.write(f"resumed {task_id}")
        except (TaskNotFound, InvalidInput, TransitionError) as exc:
            raise CommandError(str(exc)) from None
