"""Every message Horizon puts on the broker is sent from here, by its registered Celery task name.

Services ring workers through these functions and never import tasks_app/tasks.py (which imports
the services): a name breaks no import cycle, and tests/tasks_app/test_dispatch.py checks that each
name below is a registered task, so a rename cannot silently stop dispatch. Queues come from
CELERY_TASK_ROUTES by name (horizon_project/settings_celery.py), as they did for `task.apply_async`.
With HORIZON_DISPATCH="inprocess" the callers send nothing: `manage.py drive` runs the rows instead.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import current_app
from django.db import transaction

TICK = "horizon.tick"
DELIVER_WEBHOOK = "horizon.deliver_webhook"
DISPATCHED_TASK_NAMES = (TICK, DELIVER_WEBHOOK)


def _send(name: str, *args: Any, **options: Any) -> None:
    # The project's Celery app (horizon_project/celery.py here, the host project's when tasks_app is
    # installed elsewhere), as for the shared tasks; ignore_result as they declare it.
    current_app.send_task(name, args=args, ignore_result=True, **options)


def tick_on_commit(task_id: str, *, countdown: float = 0.0, time_limits: tuple[float, float] | None = None) -> None:
    """Ring a tick of `task_id` after the current transaction commits (at once outside one).

    A countdown of 0 sets no ETA: the message is for now. `time_limits` (soft, hard) replaces the
    configured Celery limits for this message (a profile with long model calls)."""
    options: dict[str, Any] = {"countdown": countdown}
    if time_limits is not None:
        options["soft_time_limit"], options["time_limit"] = time_limits
    transaction.on_commit(partial(_send, TICK, task_id, **options))


def webhook_delivery_on_commit(delivery_id: int) -> None:
    """Ring one delivery attempt after the transaction that queued the delivery row commits."""
    transaction.on_commit(partial(_send, DELIVER_WEBHOOK, delivery_id))


def webhook_delivery_now(delivery_id: int) -> None:
    """Ring one delivery attempt now (the sweep's re-ring of a due delivery)."""
    _send(DELIVER_WEBHOOK, delivery_id)
