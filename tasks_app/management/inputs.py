"""Command input, parsed and checked in one place: counts, JSON options, text arguments, goal files.

Every refusal is one line: an argparse type raises ArgumentTypeError, and `one_line_errors` makes
argparse print `manage.py <command>: error: <line>` without its usage block (exit 2; --help still
shows the usage); everything read in `handle` raises CommandError or BoundaryError, which the commands'
boundary (tasks_app/management/base.py) prints as `CommandError: <line>`, exit 1.
The values are checked with agents/boundary.py, the same rules as model output and the API: no NUL,
no lone surrogate (what argv holds for bytes that are not UTF-8), no nesting past 64, no integer
beyond 64 bits, no NaN; files must be UTF-8.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, NoReturn

import yaml
from django.core.management.base import CommandError, CommandParser

from agents import boundary

FILE_MAX_BYTES = 1024 * 1024  # a goal or scenario file is small; anything bigger is a mistake


def one_line_errors(parser: CommandParser) -> None:
    """A usage error is one line: the option and what is wrong, not argparse's usage block first."""

    def error(message: str) -> NoReturn:
        if parser.called_from_command_line:
            parser.exit(2, f"{parser.prog}: error: {boundary.clean_text(message)}\n")
        raise CommandError(f"Error: {message}")

    parser.error = error  # type: ignore[method-assign]


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    return _int(text, minimum=0)


def positive(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    return _int(text, minimum=1)


def _int(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{boundary.shown(text)} is not a whole number") from None
    if value < minimum or value > boundary.MAX_INT:
        raise argparse.ArgumentTypeError(f"must be {minimum} or more (and fit in 64 bits), got {value}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds or hours, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{boundary.shown(text)} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {boundary.shown(text)}")
    return value


def text(value: str) -> str:
    """An argparse type: text that can be stored (argv turns bytes that are not UTF-8 into lone surrogates)."""
    bad = boundary.unstorable_char(value)
    if bad:
        raise argparse.ArgumentTypeError(f"contains {bad}")
    return value


def json_option(raw: str, option: str) -> Any:
    """The value of a JSON option (--context, --payload, --arguments); BoundaryError says why it is refused."""
    return boundary.loads(raw, option)


def json_object_option(raw: str, option: str) -> dict[str, Any]:
    value = json_option(raw, option)
    if not isinstance(value, dict):
        raise CommandError(f"{option} must be a JSON object, got {type(value).__name__}")
    return value


def read_text_file(path: str | Path, what: str = "the file") -> str:
    """A small UTF-8 text file's content; CommandError (one line) if it cannot be read or is not text."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"cannot read {what} {boundary.shown(str(path))}: {exc.strerror or exc}") from None
    if len(data) > FILE_MAX_BYTES:
        raise CommandError(f"{what} {boundary.shown(str(path))} is larger than {FILE_MAX_BYTES} bytes")
    return boundary.decode(data, f"{what} {boundary.shown(str(path))}")  # BoundaryError if it is not text


def read_json_or_yaml_file(path: str | Path, what: str = "the file") -> Any:
    """A JSON or YAML file's value (YAML is a superset of JSON), checked like any JSON input."""
    source = f"{what} {boundary.shown(str(path))}"
    content = read_text_file(path, what)
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise CommandError(f"{source} is not valid JSON or YAML: {problem}{where}") from None
    except RecursionError:
        raise CommandError(f"{source} is nested more than {boundary.MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise CommandError(f"{source} is refused: {str(exc).splitlines()[0]}") from None
    problem = boundary.refusal(data, source)
    if problem:
        raise CommandError(problem)
    return data
