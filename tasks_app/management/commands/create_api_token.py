from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from agents.errors import InvalidInput
from tasks_app.management import inputs
from tasks_app.services.api_tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for /api/ and print it once: only its hash is stored."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        inputs.one_line_errors(parser)
        parser.add_argument("--user", required=True, help="the username the token acts as")
        parser.add_argument("--name", default="", type=inputs.text, help="a label to recognise the token by")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: options["user"]}).first()
        if user is None:
            raise CommandError(f"no user {options['user']!r}")
        try:
            token, raw = api_token_create(user=user, name=options["name"])
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"token #{token.pk} ({token.name or 'unnamed'}) for {user.get_username()}; it is shown only now:")
        self.stdout.write(raw)
