"""The Celery configuration actually in use, in this process and in a running worker.

Celery ignores a setting it does not know (a misspelt CELERY_ name raises nothing), so reading
settings.py proves little: these tests read the app's configuration, the registered task, and
what a live worker process reports over the broker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.app.defaults import DEFAULTS
from django.conf import settings

from agents.errors import TransientError
from horizon_project.celery import app
from tasks_app.tasks import tick
from tests.integration.conftest import worker_hostname
from tests.support.processes import CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.redis]

# Settings that share the CELERY_ prefix but are not in Celery's table: Horizon's own
# (settings.py uses it) and the one Celery's Django fixup reads by its full name.
HORIZON_CELERY_NAMES = {"CELERY_VISIBILITY_TIMEOUT", "CELERY_DB_REUSE_MAX"}


def test_every_celery_setting_is_one_celery_knows() -> None:
    names = [name for name in dir(settings) if name.startswith("CELERY_")]
    unknown = [n for n in names if n not in HORIZON_CELERY_NAMES and n.removeprefix("CELERY_").lower() not in DEFAULTS]
    assert not unknown, f"Celery silently ignores these settings: {unknown}"
    assert "CELERY_TASK_ACKS_LATE" in names  # the scan itself sees the settings


def test_the_app_runs_ticks_late_acked_one_at_a_time_in_json() -> None:
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.task_ignore_result is True
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.task_default_queue == "horizon"
    options = conf.broker_transport_options
    assert options["visibility_timeout"] == settings.CELERY_VISIBILITY_TIMEOUT
    # kombu restores a dead worker's unacked messages only when it sweeps; see settings_celery.py.
    assert options["unacked_restore_throttle"] == 1
    assert 1 <= options["unacked_restore_interval"] <= max(1, settings.CELERY_VISIBILITY_TIMEOUT // 10)
    # The ordering that keeps each layer from duplicating the next, and a redelivered message
    # finding the dead worker's lease expired, with a margin of the hard limit. The lease is short
    # and renewed by the tick's heartbeat at least twice per lease (horizon_project/checks.py).
    assert settings.HORIZON_LLM_TIMEOUT < conf.task_soft_time_limit < conf.task_time_limit < options["visibility_timeout"]
    assert conf.task_time_limit + settings.HORIZON_LEASE_SECONDS < options["visibility_timeout"]
    assert 2 * settings.HORIZON_HEARTBEAT_SECONDS < settings.HORIZON_LEASE_SECONDS <= 30


def test_the_tick_task_is_late_acked_and_retries_transient_errors_a_bounded_number_of_times() -> None:
    # The object the app's registry holds is what a worker runs (shared_task returns a proxy to it).
    task = app.tasks["horizon.tick"]
    assert tick.name == task.name == "horizon.tick"
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert task.ignore_result is True
    assert TransientError in task.autoretry_for
    assert task.retry_backoff and task.retry_jitter is True
    assert task.max_retries is not None and 1 <= task.max_retries <= 10


def worker_setting(conf: dict, name: str) -> object:
    # The conf table of an app configured from Django settings lists them under their Django
    # names (CELERY_TASK_ACKS_LATE); accept Celery's own name too.
    return conf[name] if name in conf else conf[f"CELERY_{name.upper()}"]


def test_a_running_worker_reports_the_same_configuration(tmp_path: Path) -> None:
    # Distinctive values through the environment: seeing them in the worker's replies proves that
    # the worker process, not only this one, reads its settings from the one door.
    env = {
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "HORIZON_LLM_MAX_RETRIES": "0",  # 60 s for one model call fits under the 101 s soft limit
        "CELERY_TASK_SOFT_TIME_LIMIT": "101",
        "CELERY_TASK_TIME_LIMIT": "102",
        "HORIZON_LEASE_SECONDS": "103",
        "CELERY_VISIBILITY_TIMEOUT": "1040",
    }
    with CeleryWorker(env=env, name="conf", concurrency=2, log_dir=tmp_path) as worker:
        node = worker_hostname(worker.name, worker.starts)
        inspect = app.control.inspect(destination=[node], timeout=10)
        conf = (inspect.conf(with_defaults=False) or {}).get(node)
        stats = (inspect.stats() or {}).get(node)
        registered = (inspect.registered("acks_late", "reject_on_worker_lost", "ignore_result", "max_retries") or {}).get(node)
        queues = (inspect.active_queues() or {}).get(node)
    assert conf and stats and registered and queues, f"worker {node} did not answer"

    # The settings the worker process loaded...
    for name in (
        "task_acks_late",
        "task_reject_on_worker_lost",
        "task_ignore_result",
        "worker_cancel_long_running_tasks_on_connection_loss",
    ):
        assert worker_setting(conf, name) is True, name
    assert worker_setting(conf, "worker_prefetch_multiplier") == 1
    assert worker_setting(conf, "task_serializer") == "json"
    assert worker_setting(conf, "accept_content") == ["json"]
    assert worker_setting(conf, "HORIZON_LEASE_SECONDS") == 103
    # ... and what its consumer, pool, broker connection and task registry made of them. The
    # consumer reserves one message per pool process, no more: the prefetch multiplier is 1.
    assert stats["prefetch_count"] == stats["pool"]["max-concurrency"] == 2
    assert stats["pool"]["timeouts"] == [101, 102]
    assert stats["broker"]["transport_options"] == {
        "visibility_timeout": 1040,
        "unacked_restore_interval": 60,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 300,
    }
    ours = {r.split(" ", 1)[0]: r for r in registered if r.startswith("horizon.")}
    assert set(ours) == {"horizon.tick", "horizon.sweep", "horizon.start_goal", "horizon.deliver_webhook"}
    assert "acks_late=True" in ours["horizon.deliver_webhook"] and "ignore_result=True" in ours["horizon.deliver_webhook"]
    assert ours["horizon.tick"] == "horizon.tick [acks_late=True reject_on_worker_lost=True ignore_result=True max_retries=5]"
    assert "ignore_result=True" in ours["horizon.sweep"]
    assert sorted(q["name"] for q in queues) == ["horizon", "horizon.control"]
