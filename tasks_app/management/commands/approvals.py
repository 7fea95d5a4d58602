import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.models import AgentTask
from tasks_app.readable import cut, step_number
from tasks_app.services.approvals import pending_approvals


class Command(HorizonCommand):
    help = "List the approvals waiting for a decision (approve or reject them with `approve` and `reject`)."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("--task", dest="task_id", help="only this task's")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        task_id = options["task_id"]
        records = pending_approvals(task_id)
        if options["json"]:
            self.stdout.write(json.dumps([asdict(r) for r in records], indent=2, default=str))
            return
        if not records:
            self.stdout.write("no approvals pending")
            return
        goals = {
            str(pk): goal for pk, goal in AgentTask.objects.filter(pk__in={r.task_id for r in records}).values_list("pk", "goal")
        }
        for r in records:
            what = (
                f"{step_number(r.step_index)}: tool {r.action.get('tool')} {json.dumps(r.action.get('arguments'), default=str)}"
                if r.kind == "tool"
                else f"{step_number(r.step_index)}: {r.action.get('step')}"
            )
            when = r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else ""
            self.stdout.write(f"#{r.id}  task {r.task_id}  {when}  {what}")
            self.stdout.write(f"      goal: {cut(goals.get(r.task_id, ''), 100)}")
