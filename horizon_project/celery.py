"""The Celery app. Every setting comes from Django settings under the CELERY_ namespace."""

import os

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "horizon_project.settings")

app = Celery("horizon_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(**kwargs: object) -> None:
    """Keep database connections across ticks, but never a broken or expired one.

    Celery's Django fixup closes every connection around every task unless CELERY_DB_REUSE_MAX is
    set, which costs a connect and cold server caches per tick. With reuse on, do what Django does
    around each request instead: close connections that errored or outlived CONN_MAX_AGE, and let
    CONN_HEALTH_CHECKS test a kept one before its first use (a restarted database costs a reconnect).
    """
    from django.db import close_old_connections as close

    close()


@worker_process_init.connect
def own_connection_pools(**kwargs: object) -> None:
    """A prefork pool child must not share its parent's connection pool (its sockets and its
    worker threads do not survive the fork): forget it, and the child's first query opens its own."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    DatabaseWrapper._connection_pools = {}  # type: ignore[attr-defined]  # Django's private pool registry, not in the stubs


@after_setup_logger.connect
def quiet_routine_tasks_in_logs(**kwargs: object) -> None:
    """The sweep runs every 5 s: the worker logs it only when it changed something (tasks_app/services/sweep.py)."""
    from tasks_app.observability.logs import quiet_routine_tasks

    quiet_routine_tasks()


@after_setup_logger.connect
def tick_context_in_logs(logger: object, **kwargs: object) -> None:
    """Celery replaces the root logger's handlers with its own: give them the tick context and,
    with HORIZON_LOG_FORMAT=json, the JSON formatter (tasks_app/observability/logs.py)."""
    from django.conf import settings

    from tasks_app.observability.logs import ContextFilter, celery_formatter

    formatter = celery_formatter(settings.HORIZON_LOG_FORMAT)
    for handler in getattr(logger, "handlers", []):
        handler.addFilter(ContextFilter())
        if formatter is not None:
            handler.setFormatter(formatter)


@worker_process_shutdown.connect
def mark_metrics_process_dead(pid: int | None = None, **kwargs: object) -> None:
    """A pool child that exits leaves its metric files for /metrics to add up; live gauges of a dead
    process must go (prometheus-client multiprocess mode). Counters and histograms are kept."""
    import os

    from django.conf import settings

    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid(), settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]  # unannotated upstream


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_worker_logs(logger: object = None, **kwargs: object) -> None:
    """The worker replaces the root logger's handlers with its own (worker_hijack_root_logger):
    give them the same secret-redacting filter as the LOGGING setting's."""
    import logging

    from agents.redaction import install_filter

    if isinstance(logger, logging.Logger):
        install_filter(logger)


@worker_init.connect
def say_whether_run_python_is_offered(**kwargs: object) -> None:
    """Once per worker boot: is the code sandbox there, and if not, why (tasks_app/sandbox_check.py).
    Before the pool forks, so that its children inherit the probe's answer instead of each probing."""
    from tasks_app.sandbox_check import log_sandbox_status

    log_sandbox_status()
