from typing import Any

from django.core.management.base import CommandParser

from tasks_app.management import inputs
from tasks_app.management.commands._decide import DecisionCommand


class Command(DecisionCommand):
    help = "Approve an action an agent waits for; with --arguments, approve an edited tool call instead."
    approve = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--comment", default="", type=inputs.text, help="kept on the approval and its event")
        parser.add_argument("--arguments", default=None, help="edit-then-approve: the tool call's arguments as a JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        edited = None
        if options["arguments"] is not None:
            edited = inputs.json_object_option(options["arguments"], "--arguments")
        self.decide(options, comment=options["comment"], edited_arguments=edited)
