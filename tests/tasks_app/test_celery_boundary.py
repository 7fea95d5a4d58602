"""The Celery tasks' one boundary for harness errors (`harness_errors` in tasks_app/tasks.py): what it
drops, what it retries and when, and what it leaves to the task's autoretry or to a failed message."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from agents.errors import BuildSuperseded, HorizonError, InvalidInput, PermanentError, TaskNotFound, TransientError
from tasks_app.tasks import MAX_COUNTDOWN_SECONDS, Drop, harness_errors, tick


class Retried(Exception):
    """What the fake task's `retry` returns for the boundary to raise, as Celery's Retry is raised."""


class FakeTask:
    def __init__(self) -> None:
        self.retries: list[dict[str, Any]] = []

    def retry(self, **options: Any) -> Retried:
        self.retries.append(options)
        return Retried()


@harness_errors(drop=Drop((TaskNotFound,), logging.WARNING, "tick for unknown task {0} dropped"), retry_when_told=True)
def tick_like(self: Any, task_id: str, error: HorizonError | None) -> str:
    if error is not None:
        raise error
    return f"ticked {task_id}"


@harness_errors(drop=Drop((InvalidInput,), logging.ERROR, "scheduled goal {0!r} not started: {error}"))
def start_goal_like(self: Any, template: str, error: HorizonError) -> None:
    raise error


def test_no_error_passes_the_result_through() -> None:
    assert tick_like(FakeTask(), "t1", None) == "ticked t1"


def test_a_dropped_error_is_logged_and_the_message_acknowledged(caplog: pytest.LogCaptureFixture) -> None:
    task = FakeTask()
    with caplog.at_level(logging.WARNING, logger="horizon.tasks"):
        assert tick_like(task, "t1", TaskNotFound("t1")) is None
    assert "tick for unknown task t1 dropped" in caplog.text and task.retries == []
    with caplog.at_level(logging.ERROR, logger="horizon.tasks"):
        assert start_goal_like(task, "daily", InvalidInput("unknown profile 'gone'")) is None
    assert "scheduled goal 'daily' not started: unknown profile 'gone'" in caplog.text


def test_a_superseded_build_rings_again_for_a_newer_worker_without_a_retry_limit() -> None:
    task = FakeTask()
    with pytest.raises(Retried):
        tick_like(task, "t1", BuildSuperseded("newer build"))
    with pytest.raises(Retried):
        tick_like(task, "t1", BuildSuperseded("newer build", retry_after=30))
    assert [(r["countdown"], r["max_retries"]) for r in task.retries] == [(5.0, None), (30, None)]


def test_a_transient_error_waits_what_the_endpoint_said_capped_else_goes_to_autoretry() -> None:
    task = FakeTask()
    with pytest.raises(Retried):
        tick_like(task, "t1", TransientError("429", retry_after=600))
    assert task.retries[0]["countdown"] == MAX_COUNTDOWN_SECONDS and "max_retries" not in task.retries[0]
    with pytest.raises(TransientError):
        tick_like(task, "t1", TransientError("timeout"))  # tick's autoretry_for backs off
    assert len(task.retries) == 1


def test_other_errors_propagate_and_tasks_without_retry_when_told_never_retry() -> None:
    task = FakeTask()
    with pytest.raises(PermanentError):
        tick_like(task, "t1", PermanentError("bug"))
    with pytest.raises(TransientError):
        start_goal_like(task, "daily", TransientError("later", retry_after=5))
    assert task.retries == []


def test_the_wrapped_task_keeps_its_signature_for_celery_s_argument_check() -> None:
    with pytest.raises(TypeError):
        tick.__header__()  # type: ignore[attr-defined]
