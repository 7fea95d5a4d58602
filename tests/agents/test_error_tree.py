"""One error tree: every exception class of agents/ and tasks_app/ is defined in agents/errors.py, drawn in its docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import agents
import tasks_app
from agents import errors


def _modules() -> list[str]:
    names = []
    for package in (agents, tasks_app):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations" not in info.name and info.name != errors.__name__:
                names.append(info.name)
    return names


@pytest.mark.django_db
def test_every_exception_class_is_defined_in_agents_errors() -> None:
    elsewhere = []
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name:
                elsewhere.append(f"{name}.{attr}")
    assert elsewhere == []


def test_the_docstring_draws_every_class_of_the_tree() -> None:
    defined = [
        n
        for n, v in vars(errors).items()
        if inspect.isclass(v) and issubclass(v, BaseException) and v.__module__ == errors.__name__
    ]
    assert len(defined) > 30
    missing = [n for n in defined if n not in (errors.__doc__ or "")]
    assert missing == []


def test_suspensions_are_not_errors_and_the_outsiders_stay_outside() -> None:
    for suspension in (errors.WaitRequested, errors.ApprovalRequired):
        assert issubclass(suspension, errors.Suspension) and not issubclass(suspension, errors.HorizonError)
    for outsider in (errors.ToolError, errors.TransitionError, errors.Diverged, errors.AppendOnlyError):
        assert not issubclass(outsider, errors.HorizonError)
    # The old homes re-export the classes for their importers.
    from agents.approvals import ApprovalRequired
    from agents.status import TransitionError
    from agents.tools.registry import ToolError

    assert (ApprovalRequired, TransitionError, ToolError) == (errors.ApprovalRequired, errors.TransitionError, errors.ToolError)
