"""Celery tasks: thin, named, taking ids. Our tables are the record; results are ignored.

Services send these by name (tasks_app/dispatch.py); what a harness error means for a message (retry
it later, or log it and drop it) is decided in one place, `harness_errors`, for every task.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from agents.errors import BuildSuperseded, HorizonError, InvalidInput, TaskNotFound, TransientError
from tasks_app.services.schedules import goal_template_start
from tasks_app.services.sweep import sweep as run_sweep
from tasks_app.services.tasks import MAX_COUNTDOWN_SECONDS, agent_task_tick
from tasks_app.services.webhooks import webhook_deliver, webhook_due_in, webhook_ring_due

logger = logging.getLogger("horizon.tasks")

# Retried with backoff: our transient errors and a database that is restarting. Anything else
# is a bug or a permanent failure, which the runner turns into an escalation instead.
RETRY_ON = (TransientError, OperationalError, InterfaceError)

_Run = TypeVar("_Run", bound=Callable[..., Any])


@dataclass(frozen=True)
class Drop:
    """Harness errors after which this message can never succeed: logged (`message` formatted with
    the task's first argument and `error`), then acknowledged. Retrying would only repeat them."""

    errors: tuple[type[HorizonError], ...]
    level: int
    message: str


def harness_errors(*, drop: Drop | None = None, retry_when_told: bool = False) -> Callable[[_Run], _Run]:
    """The one boundary between the harness's errors (agents/errors.py) and a bound Celery task.

    `drop`: log and acknowledge. `retry_when_told`: a BuildSuperseded rings again for a newer worker
    (no retry limit: the old workers go away) and a TransientError with `retry_after` (the endpoint's
    Retry-After) waits that long instead of the backoff. Anything else propagates: the task's
    autoretry_for retries what it lists, and the rest fails the message.
    """

    def decorate(run: _Run) -> _Run:
        signature = inspect.signature(run)

        @functools.wraps(run)
        def guarded(task: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
            try:
                return run(task, *args, **kwargs)
            except HorizonError as exc:
                if drop is not None and isinstance(exc, drop.errors):
                    logger.log(drop.level, drop.message.format(_subject(signature, task, args, kwargs), error=exc))
                    return None
                if retry_when_told and isinstance(exc, TransientError):
                    _retry_when_told(task, exc)
                raise

        guarded.__signature__ = signature  # type: ignore[attr-defined]  # Celery checks call arguments
        return guarded  # type: ignore[return-value]

    return decorate


def _subject(signature: inspect.Signature, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The task's first argument after `self`, however it was sent: beat sends keywords (a schedule's kwargs)."""
    bound = signature.bind(task, *args, **kwargs)
    return list(bound.arguments.values())[1]


def _retry_when_told(task: Task[Any, Any], exc: TransientError) -> None:
    if isinstance(exc, BuildSuperseded):
        # A newer build ticked this task (a rolling deploy): nothing was claimed, no attempt spent.
        raise task.retry(exc=exc, countdown=exc.retry_after or 5.0, max_retries=None) from exc
    if exc.retry_after:
        raise task.retry(exc=exc, countdown=min(exc.retry_after, MAX_COUNTDOWN_SECONDS)) from exc


@shared_task(
    bind=True,
    name="horizon.tick",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=RETRY_ON,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
@harness_errors(
    # A doorbell for a row that no longer exists (the task was deleted): nothing to ring.
    drop=Drop((TaskNotFound,), logging.WARNING, "tick for unknown task {0} dropped"),
    retry_when_told=True,
)
def tick(self: Task[Any, Any], task_id: str) -> None:
    agent_task_tick(task_id=task_id)


class _NoEvents:
    """An event dispatcher that publishes nothing (the sender's `task-sent` event of a RoutineTask)."""

    def publish(self, *args: object, **kwargs: object) -> None:
        return None


class RoutineTask(Task[Any, Any]):
    """A task celery-beat sends every few seconds whatever happens: it sends no task events at all, so
    Flower's task list is not one sweep per 5 s (its sender's `task-sent` and the worker's
    received/started/succeeded), and the worker log drops its routine lines (horizon_project/celery.py).
    What such a task changes it logs itself; its failures are still logged and sent."""

    send_events = False

    def apply_async(self, args=None, kwargs=None, **options):  # type: ignore[no-untyped-def, override]
        # CELERY_TASK_SEND_SENT_EVENT is global; beat publishes through this method (the task is registered there).
        options.setdefault("event_dispatcher", _NoEvents())
        return super().apply_async(args, kwargs, **options)


@shared_task(base=RoutineTask, name="horizon.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """celery-beat's periodic sweep (schedule: migration 0005). Safe to run twice at once."""
    counts = run_sweep().counts()
    counts["webhooks_rung"] = webhook_ring_due()
    return counts


@shared_task(bind=True, name="horizon.start_goal", ignore_result=True)
@harness_errors(
    # Not retried: a refused template (its profile was removed since it was saved) would be refused
    # again, and a lost run is visible as a missing task; the log says why.
    drop=Drop((InvalidInput,), logging.ERROR, "scheduled goal {0!r} not started: {error}"),
)
def start_goal(self: Task[Any, Any], template: str) -> str | None:
    """celery-beat's run of a scheduled goal (tasks_app/services/schedules.py); returns the new task's id."""
    task = goal_template_start(name=template)
    return str(task.pk) if task is not None else None


@shared_task(
    bind=True,
    name="horizon.deliver_webhook",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),  # a restarting database; the attempts themselves ring below
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def deliver_webhook(self: Task[Any, Any], delivery_id: int) -> None:
    """One attempt (tasks_app/services/webhooks.py), then a ring for the next one if it is due soon.

    A short backoff is a Celery countdown; a longer one is left to the beat sweep, which re-rings due
    deliveries (timers are rows, never long ETAs on the broker). A message that arrives a little early
    (or while another deliverer holds the attempt) rings again for when the row says it is due.
    """
    webhook_deliver(delivery_id=delivery_id)
    wait = webhook_due_in(delivery_id=delivery_id)
    if wait is not None and wait <= MAX_COUNTDOWN_SECONDS:
        raise self.retry(countdown=wait, max_retries=None)
