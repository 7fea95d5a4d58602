"""What `approve` and `reject` share (a leading underscore: Django does not list it as a command)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandError, CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.readable import how_it_continues
from tasks_app.services.approvals import approval_decide


class DecisionCommand(HorizonCommand):
    approve = True

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("approval_id", type=inputs.positive, help="the id `manage.py approvals` lists")
        parser.add_argument(
            "--user",
            required=True,
            type=inputs.text,
            help="the username deciding; needs the tasks_app.decide_approval permission",
        )

    def user(self, username: str) -> User:
        model = get_user_model()
        try:
            return model.objects.get_by_natural_key(username)
        except model.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None

    def decide(self, options: dict[str, Any], *, comment: str, edited_arguments: dict[str, Any] | None = None) -> None:
        user = self.user(options["user"])
        record = approval_decide(
            approval_id=options["approval_id"],
            user=user,
            approve=self.approve,
            comment=comment,
            edited_arguments=edited_arguments,
        )
        self.stdout.write(f"approval #{record.id} {record.status} by {record.decided_by}; {how_it_continues(record.task_id)}")
