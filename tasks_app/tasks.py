"""Celery tasks: thin, named, taking ids. Our tables are the record; results are ignored."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from agents.errors import TransientError
from tasks_app.services.tasks import agent_task_tick

# Retried with backoff: our transient errors and a database that is restarting. Anything else
# is a bug or a permanent failure, which the runner turns into an escalation instead.
RETRY_ON = (TransientError, OperationalError, InterfaceError)


@shared_task(
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
def tick(task_id: str) -> None:
    agent_task_tick(task_id=task_id)
