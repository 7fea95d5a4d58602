"""Settings come from the environment in one place; production values have no defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from horizon_project.checks import check_timeout_order

REPO = Path(__file__).resolve().parents[1]


def run_with_env(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run a process of the repo with only the given Horizon, Django and Celery variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HORIZON_", "DATABASE_URL", "CELERY_"))}
    return subprocess.run(
        args,
        cwd=REPO,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "horizon_project.settings",
            "HORIZON_VAR_DIR": str(REPO / "var" / "settings-test"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    return run_with_env([sys.executable, "-c", code], **env)


def test_the_embedded_default_needs_nothing_set() -> None:
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_production_requires_a_secret_key_and_a_database() -> None:
    result = load_settings(HORIZON_ENV="production", DATABASE_URL="postgres://x@localhost/x")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is required" in result.stderr
    result = load_settings(HORIZON_ENV="production", DJANGO_SECRET_KEY="s" * 50)
    assert result.returncode != 0 and "DATABASE_URL is required" in result.stderr


def test_bad_values_are_refused_with_the_variable_name() -> None:
    result = load_settings(HORIZON_DISPATCH="carrier-pigeon")
    assert result.returncode != 0 and "HORIZON_DISPATCH must be" in result.stderr
    result = load_settings(HORIZON_LEASE_SECONDS="soon")
    assert result.returncode != 0 and "HORIZON_LEASE_SECONDS must be a number" in result.stderr


# --- The timeout order, checked at start-up ------------------------------------------------------

DEFAULT_TIMEOUTS = {
    "HORIZON_LLM_TIMEOUT": 60.0,
    "HORIZON_LLM_MAX_RETRIES": 1,
    "CELERY_TASK_SOFT_TIME_LIMIT": 240,
    "CELERY_TASK_TIME_LIMIT": 270,
    "HORIZON_LEASE_SECONDS": 20.0,
    "CELERY_VISIBILITY_TIMEOUT": 3600,
}


def timeouts(**changes: float) -> dict[str, float]:
    return {**DEFAULT_TIMEOUTS, **changes}


def test_the_default_timeouts_are_in_order() -> None:
    assert check_timeout_order(DEFAULT_TIMEOUTS) == []


def test_each_violated_pair_is_named_with_its_values() -> None:
    assert check_timeout_order(timeouts(CELERY_TASK_SOFT_TIME_LIMIT=270)) == [
        "CELERY_TASK_SOFT_TIME_LIMIT (270 s) must be less than CELERY_TASK_TIME_LIMIT (270 s)"
    ]
    # Every violation at once, not only the first: one restart fixes them all.
    problems = check_timeout_order(timeouts(CELERY_TASK_SOFT_TIME_LIMIT=280, HORIZON_HEARTBEAT_SECONDS=10))
    assert problems == [
        "CELERY_TASK_SOFT_TIME_LIMIT (280 s) must be less than CELERY_TASK_TIME_LIMIT (270 s)",
        "HORIZON_HEARTBEAT_SECONDS (10 s) must be less than half of HORIZON_LEASE_SECONDS (20 s):"
        " a lease must survive one late renewal",
    ]


def test_the_lease_no_longer_has_to_outlast_the_tick_it_is_renewed() -> None:
    """The heartbeat renews the lease while the tick runs: a lease far shorter than the hard limit
    is in order, and the heartbeat defaults to a quarter of the lease."""
    assert check_timeout_order(timeouts(HORIZON_LEASE_SECONDS=3)) == []
    assert check_timeout_order(timeouts(HORIZON_LEASE_SECONDS=3, HORIZON_HEARTBEAT_SECONDS=1.5)) != []


def test_the_model_call_counts_every_sdk_attempt() -> None:
    # 100 s is less than the soft limit, but two attempts of 100 s and a backoff are not.
    (problem,) = check_timeout_order(timeouts(HORIZON_LLM_TIMEOUT=100, CELERY_TASK_SOFT_TIME_LIMIT=200))
    assert problem.startswith("HORIZON_LLM_TIMEOUT (100 s) x (HORIZON_LLM_MAX_RETRIES (1) + 1)")
    assert "= 208 s" in problem and problem.endswith("must be less than CELERY_TASK_SOFT_TIME_LIMIT (200 s)")
    assert (
        check_timeout_order(timeouts(HORIZON_LLM_TIMEOUT=100, HORIZON_LLM_MAX_RETRIES=0, CELERY_TASK_SOFT_TIME_LIMIT=200)) == []
    )
    assert check_timeout_order(timeouts(HORIZON_LLM_TIMEOUT=60, HORIZON_LLM_MAX_RETRIES=3)) != []  # 4 x 60 s + 24 s


def test_redelivery_waits_for_the_lease_and_a_late_claim() -> None:
    assert check_timeout_order(timeouts(CELERY_VISIBILITY_TIMEOUT=20)) == [
        "HORIZON_LEASE_SECONDS (20 s) must be less than CELERY_VISIBILITY_TIMEOUT (20 s)"
    ]
    # A reserved tick can wait behind the running one for up to the hard limit before it claims the lease.
    assert check_timeout_order(timeouts(CELERY_VISIBILITY_TIMEOUT=290)) == [
        "HORIZON_LEASE_SECONDS + CELERY_TASK_TIME_LIMIT (20 s + 270 s = 290 s)"
        " must be less than CELERY_VISIBILITY_TIMEOUT (290 s)"
    ]
    assert check_timeout_order(timeouts(CELERY_VISIBILITY_TIMEOUT=291)) == []


def test_non_positive_timeouts_are_refused_alone() -> None:
    assert check_timeout_order(timeouts(HORIZON_LEASE_SECONDS=0, HORIZON_LLM_MAX_RETRIES=-1)) == [
        "HORIZON_LEASE_SECONDS must be positive, got 0 s",
        "HORIZON_LLM_MAX_RETRIES must be 0 or more, got -1",
    ]


def test_a_wrong_order_stops_manage_py_with_the_variable_names() -> None:
    result = run_with_env([sys.executable, "manage.py", "check"], HORIZON_LEASE_SECONDS="20", HORIZON_HEARTBEAT_SECONDS="12")
    assert result.returncode != 0
    assert "ImproperlyConfigured: the timeouts are out of order" in result.stderr
    assert "HORIZON_HEARTBEAT_SECONDS (12 s) must be less than half of HORIZON_LEASE_SECONDS (20 s)" in result.stderr
    result = run_with_env(
        [sys.executable, "manage.py", "check"],
        HORIZON_LLM_TIMEOUT="100",
        HORIZON_LLM_MAX_RETRIES="2",
        CELERY_TASK_SOFT_TIME_LIMIT="200",
    )
    assert result.returncode != 0 and "must be less than CELERY_TASK_SOFT_TIME_LIMIT (200 s)" in result.stderr


def test_timeouts_in_order_start_manage_py() -> None:
    result = run_with_env(
        [sys.executable, "manage.py", "check"],
        HORIZON_LLM_TIMEOUT="5",
        HORIZON_LLM_MAX_RETRIES="0",
        CELERY_TASK_SOFT_TIME_LIMIT="10",
        CELERY_TASK_TIME_LIMIT="12",
        HORIZON_LEASE_SECONDS="15",
        CELERY_VISIBILITY_TIMEOUT="30",
    )
    assert result.returncode == 0, result.stderr


def test_a_wrong_order_stops_the_celery_worker_before_it_connects() -> None:
    # The worker never runs Django's system checks, so the check must live in the settings import.
    # An unreachable broker: were the check missing, the worker would retry connecting until the timeout.
    celery = str(Path(sys.executable).with_name("celery"))
    result = run_with_env(
        [celery, "-A", "horizon_project", "worker", "--pool", "solo"],
        CELERY_BROKER_URL="redis://127.0.0.1:9/0",
        CELERY_VISIBILITY_TIMEOUT="250",
    )
    assert result.returncode != 0
    assert "HORIZON_LEASE_SECONDS + CELERY_TASK_TIME_LIMIT (20 s + 270 s = 290 s)" in result.stderr
