"""The management commands' one error boundary (tasks_app/management/base.py): every command goes through
it, and what the harness refuses ends the command in one CommandError line; a bug keeps its traceback."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError

from agents.errors import BoundaryError, InvalidInput, LeaseLost, ScenarioError, TaskNotFound, TransitionError
from tasks_app.management.base import HorizonCommand


def test_every_tasks_app_command_subclasses_the_boundary() -> None:
    names = sorted(name for name, app in get_commands().items() if app == "tasks_app")
    assert len(names) >= 20
    outside = [name for name in names if not isinstance(load_command_class("tasks_app", name), HorizonCommand)]
    assert outside == []


class Raising(HorizonCommand):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def handle(self, *args: Any, **options: Any) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (TaskNotFound("t-1"), "no task with id 't-1'"),
        (InvalidInput("the goal is empty"), "the goal is empty"),
        (ScenarioError("no such scenario"), "no such scenario"),
        (LeaseLost("lease moved on"), "lease moved on"),
        (TransitionError("completed -> running is not allowed"), "completed -> running is not allowed"),
        (BoundaryError("--context holds a NUL"), "--context holds a NUL"),
        (ObjectDoesNotExist("no such row"), "no such row"),
        (ValidationError(["first", "second"]), "first; second"),
    ],
)
def test_refusals_become_one_command_error_line(error: Exception, line: str) -> None:
    with pytest.raises(CommandError) as caught:
        call_command(Raising(error))
    assert str(caught.value) == line
    assert caught.value.returncode == 1
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_bug_is_not_dressed_as_a_refusal() -> None:
    with pytest.raises(ZeroDivisionError):
        call_command(Raising(ZeroDivisionError("a bug")))
