"""The management commands' one error boundary: whatever the harness refuses ends a command in one line.

Every command subclasses HorizonCommand. An error of the agents/errors.py tree (an unknown task, input
the harness refuses, a scenario that cannot be used, a decision that is not allowed), a status change
the state machine refuses, a value that cannot enter the harness, and Django's lookup and validation
errors become a CommandError: `CommandError: <the error's message>` on stderr and exit status 1 from
the command line, the CommandError itself for call_command. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents.errors import BoundaryError, HorizonError, TransitionError

REFUSALS: tuple[type[Exception], ...] = (HorizonError, TransitionError, BoundaryError, ObjectDoesNotExist, ValidationError)


class HorizonCommand(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except REFUSALS as exc:
            raise self.refusal(exc) from None

    def refusal(self, exc: Exception) -> CommandError:
        """The one line a refused command ends with; a command may word a particular error its own way."""
        if isinstance(exc, ValidationError):
            return CommandError("; ".join(exc.messages))
        return CommandError(str(exc))
