import json
from typing import Any

from django.core.management.base import CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.selectors.branches import task_branches


class Command(HorizonCommand):
    help = "Compare a task and all its forks (and theirs): outcome, steps, tokens and cost per branch."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        branches = task_branches(task_id=options["task_id"])
        if options["json"]:
            self.stdout.write(json.dumps([b.as_json() for b in branches], indent=2))
            return
        header = f"{'branch':<40} {'from':>6} {'profile':<12} {'status':<15} {'steps':>5} {'tokens':>9} {'cost $':>10}  result"
        self.stdout.write(header)
        for b in branches:
            name = "  " * b.depth + b.task_id
            where = f"#{b.checkpoint_seq}" if b.checkpoint_seq is not None else "-"
            profile = b.profile + (f"/{b.model}" if b.model else "")
            outcome = b.summary or b.reason
            figures = f"{b.steps_completed:>5} {b.tokens:>9} {b.cost_usd:>10.4f}"
            self.stdout.write(f"{name:<40} {where:>6} {profile:<12} {b.status:<15} {figures}  {outcome}")
