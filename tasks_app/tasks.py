"""Celery tasks: thin, named, taking ids. Our tables are the record; results are ignored."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from agents.errors import BuildSuperseded, TaskNotFound, TransientError
from tasks_app.services.tasks import MAX_COUNTDOWN_SECONDS, agent_task_tick

logger = logging.getLogger("horizon.tasks")

# Retried with backoff: our transient errors and a database that is restarting. Anything else
# is a bug or a permanent failure, which the runner turns into an escalation instead.
RETRY_ON = (TransientError, OperationalError, InterfaceError)


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
def tick(self: Task, task_id: str) -> None:
    try:
        agent_task_tick(task_id=task_id)
    except TaskNotFound:
        # A doorbell for a row that no longer exists (the task was deleted): nothing to ring.
        logger.warning("tick for unknown task %s dropped", task_id)
    except BuildSuperseded as exc:
        # A newer build ticked this task (a rolling deploy): ring again for later, for a newer
        # worker to take. Nothing was claimed, no attempt spent; no retry limit (the old workers go away).
        raise self.retry(exc=exc, countdown=exc.retry_after or 5.0, max_retries=None) from exc
    except TransientError as exc:
        if exc.retry_after:
            # The endpoint said when to come back (Retry-After): wait that long, not the backoff.
            raise self.retry(exc=exc, countdown=min(exc.retry_after, MAX_COUNTDOWN_SECONDS)) from exc
        raise


class _NoEvents:
    """An event dispatcher that publishes nothing (the sender's `task-sent` event of a RoutineTask)."""

    def publish(self, *args: object, **kwargs: object) -> None:
        return None


class RoutineTask(Task):
    """A task celery-beat sends every few seconds whatever happens: it sends no task events at all, so
    Flower's task list is not one sweep per 5 s (its sender's `task-sent` and the worker's
    received/started/succeeded), and the worker log drops its routine lines (horizon_project/celery.py).
    What such a task changes it logs itself; its failures are still logged and sent."""

    send_events = False

    def apply_async(self, args=None, kwargs=None, **options):  # type: ignore[no-untyped-def]
        # CELERY_TASK_SEND_SENT_EVENT is global; beat publishes through this method (the task is registered there).
        options.setdefault("event_dispatcher", _NoEvents())
        return super().apply_async(args, kwargs, **options)


@shared_task(base=RoutineTask, name="horizon.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """celery-beat's periodic sweep (schedule: migration 0005). Safe to run twice at once."""
    from tasks_app.services.webhooks import webhook_ring_due
    from tasks_app.sweep import sweep as run_sweep

    counts = run_sweep().counts()
    counts["webhooks_rung"] = webhook_ring_due()
    return counts


@shared_task(name="horizon.start_goal", ignore_result=True)
def start_goal(template: str) -> str | None:
    """celery-beat's run of a scheduled goal (tasks_app/services/schedules.py); returns the new task's id.

    Not retried: a refused template (its profile was removed since it was saved) would be refused again,
    and a lost run is visible as a missing task; the log says why.
    """
    from agents.errors import InvalidInput
    from tasks_app.services.schedules import goal_template_start

    try:
        task = goal_template_start(name=template)
    except InvalidInput as exc:
        logger.error("scheduled goal %r not started: %s", template, exc)
        return None
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
def deliver_webhook(self: Task, delivery_id: int) -> None:
    """One attempt (tasks_app/services/webhooks.py), then a ring for the next one if it is due soon.

    A short backoff is a Celery countdown; a longer one is left to the beat sweep, which re-rings due
    deliveries (timers are rows, never long ETAs on the broker). A message that arrives a little early
    (or while another deliverer holds the attempt) rings again for when the row says it is due.
    """
    from tasks_app.services.webhooks import webhook_deliver, webhook_due_in

    webhook_deliver(delivery_id=delivery_id)
    wait = webhook_due_in(delivery_id=delivery_id)
    if wait is not None and wait <= MAX_COUNTDOWN_SECONDS:
        raise self.retry(countdown=wait, max_retries=None)
