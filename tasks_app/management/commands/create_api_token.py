from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.services.api_tokens import api_token_create


class Command(HorizonCommand):
    help = "Create an API token for /api/ and print it once: only its hash is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("--user", required=True, help="the username the token acts as")
        parser.add_argument("--name", default="", type=inputs.text, help="a label to recognise the token by")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: options["user"]}).first()
        if user is None:
            raise CommandError(f"no user {options['user']!r}")
        token, raw = api_token_create(user=user, name=options["name"])
        self.stderr.write(f"token #{token.pk} ({token.name or 'unnamed'}) for {user.get_username()}; it is shown only now:")
        self.stdout.write(raw)
