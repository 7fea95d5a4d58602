import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from tasks_app.conf import settings
from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.readable import manage_py
from tasks_app.services.tasks import agent_task_create


class Command(HorizonCommand):
    help = (
        "Create a goal without running it. With HORIZON_DISPATCH=celery its first tick is enqueued for the "
        "workers; otherwise `manage.py drive` runs it. The goal comes from the arguments or a JSON/YAML file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("goal", nargs="?", type=inputs.text, help="what the agent should achieve")
        parser.add_argument("--file", help="a JSON or YAML file with goal, context, profile, max_steps")
        parser.add_argument("--context", default=None, help="initial context as a JSON object")
        parser.add_argument("--profile", default=None, type=inputs.text)
        parser.add_argument("--max-steps", type=inputs.positive, default=None)
        parser.add_argument(
            "--deadline-hours", type=inputs.seconds, default=None, help="fail the task if it has not ended by then"
        )
        parser.add_argument("--json", action="store_true", help='print {"id", "status", "next"} as JSON')

    def handle(self, *args: Any, **options: Any) -> None:
        spec: dict[str, Any] = {}
        if options["file"]:
            spec = self._read_file(options["file"])
        if options["goal"] is not None:
            spec["goal"] = options["goal"]
        if options["context"] is not None:
            spec["context"] = inputs.json_object_option(options["context"], "--context")
        if options["profile"] is not None:
            spec["profile"] = options["profile"]
        if options["max_steps"] is not None:
            spec["max_steps"] = options["max_steps"]
        if options["deadline_hours"] is not None:
            spec["deadline_hours"] = options["deadline_hours"]
        unknown = set(spec) - {"goal", "context", "profile", "max_steps", "deadline_hours"}
        if unknown:
            raise CommandError(f"unknown fields in the goal file: {', '.join(sorted(unknown))}")
        if "goal" not in spec:
            raise CommandError("give a goal as an argument or in --file")
        if not isinstance(spec["goal"], str):
            raise CommandError("the goal must be a string")
        task = agent_task_create(
            goal=spec["goal"],
            context=spec.get("context"),
            profile=spec.get("profile") or "default",
            max_steps=spec.get("max_steps"),
            deadline_hours=spec.get("deadline_hours"),
        )
        task_id = str(task.id)
        if settings.HORIZON_DISPATCH == "celery":
            follow = f"{manage_py()} follow_events {task_id}"
            next_line = f"the workers run it; follow it with: {follow}"
        else:
            follow = f"{manage_py()} drive --task {task_id}"
            next_line = f"run it with: {follow}"
        if options["json"]:
            self.stdout.write(json.dumps({"id": task_id, "status": task.status, "next": follow}))
            return
        self.stdout.write(task_id)  # alone on the first line: `head -1` gives a script the id
        self.stdout.write(f"  {next_line}; {manage_py()} task_status {task_id} shows where it is")

    def _read_file(self, path: str) -> dict[str, Any]:
        data = inputs.read_json_or_yaml_file(path, "the goal file")
        if not isinstance(data, dict):
            raise CommandError(f"{path} must hold an object with at least a 'goal'")
        return data
