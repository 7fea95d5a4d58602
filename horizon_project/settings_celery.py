"""Celery's settings (read by horizon_project/celery.py through the CELERY_ namespace)."""

from __future__ import annotations

from horizon_project.settings_env import env, env_int
from horizon_project.settings_harness import CELERY_VISIBILITY_TIMEOUT

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # kombu's Redis transport gives a dead worker's unacked messages back in a sweep that by
    # default scans only about every 100 s (a 10 s timer times a throttle of 10), whatever the
    # visibility timeout (kombu PR #2558). Scan at a tenth of the timeout (1..60 s) instead, so a
    # killed worker's tick returns soon after the timeout; and a worker killed while it held the
    # sweep's mutex must not block every sweep for longer than the timeout itself.
    "unacked_restore_interval": max(1, min(60, CELERY_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": min(300, CELERY_VISIBILITY_TIMEOUT),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Read by Celery's Django fixup: keep database connections for this many tasks (see close_old_connections
# in horizon_project/celery.py for what still closes a broken or expired one).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_RESULT_BACKEND = None  # our tables are the record; nothing reads AsyncResult
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a message is acked only after the tick ran...
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...and requeued when the worker process dies mid-tick
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # do not hold ticks hostage behind a long step
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "horizon"
# The sweep has its own queue, which every worker also consumes (-Q horizon,horizon.control): behind
# a long queue of ticks it would wait past its expiry, and the doorbells it re-rings with it.
# Webhook deliveries go beside the sweep: every worker consumes it, and each attempt is short (a timeout).
CELERY_TASK_ROUTES = {"horizon.sweep": {"queue": "horizon.control"}, "horizon.deliver_webhook": {"queue": "horizon.control"}}
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
