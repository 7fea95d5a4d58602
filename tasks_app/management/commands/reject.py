from typing import Any

from django.core.management.base import CommandError, CommandParser

from tasks_app.management import inputs
from tasks_app.management.commands._decide import DecisionCommand


class Command(DecisionCommand):
    help = "Reject an action an agent waits for. The comment tells the agent why; it plans around it."
    approve = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--comment", required=True, type=inputs.text, help="why: the agent reads it")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["comment"].strip():
            raise CommandError("a rejection needs a --comment saying why")
        self.decide(options, comment=options["comment"])
