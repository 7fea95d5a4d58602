"""A management command run as a person runs it: what it printed and the exit status it ended with."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


def run_command(*args: str) -> tuple[str, int]:
    """A command's stdout and exit status (SystemExit's code, 0 when it returned)."""
    out = StringIO()
    try:
        call_command(*args, stdout=out, stderr=StringIO())
    except SystemExit as exc:
        return out.getvalue(), int(exc.code or 0)
    return out.getvalue(), 0
