"""Start-up checks on settings that no single variable can validate on its own.

Pure functions of the values, so that tests call them directly. The settings modules raise
ImproperlyConfigured with what they return; every process (manage.py, gunicorn, the Celery worker
and beat) imports the settings before doing any work, so a misconfiguration stops all of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.llm.config import SDK_MAX_BACKOFF_SECONDS, llm_call_worst_case  # tasks_app uses it too
from agents.secret_strength import PLACEHOLDERS, parse_old_keys, secret_problem

__all__ = ["PLACEHOLDERS", "check_timeout_order", "parse_old_keys", "secret_problem", "timeout_order_message"]

TIMEOUT_NAMES = (
    "HORIZON_LLM_TIMEOUT",
    "CELERY_TASK_SOFT_TIME_LIMIT",
    "CELERY_TASK_TIME_LIMIT",
    "HORIZON_LEASE_SECONDS",
    "CELERY_VISIBILITY_TIMEOUT",
)


def check_timeout_order(values: Mapping[str, float]) -> list[str]:
    """What is wrong with the timeouts, one message per violated pair; empty when they are in order.

    `values` maps each name of TIMEOUT_NAMES, HORIZON_HEARTBEAT_SECONDS (optional; a quarter of the
    lease by default) and HORIZON_LLM_MAX_RETRIES to its value in seconds (a count, for the retries).
    Each layer must give up before the next one would duplicate its work:

    - one model call, SDK retries included, ends before the Celery soft limit, so a slow endpoint
      surfaces as the client's TransientError (journaled, retried by policy) instead of
      SoftTimeLimitExceeded raised at an arbitrary point of the tick. The check uses
      (retries + 1) x timeout, not the timeout alone, because the SDK's retries happen inside the call;
    - the soft limit comes before the hard limit, so the tick gets a chance to clean up before the
      pool kills its process;
    - the lease is renewed by the tick's heartbeat, at least twice within one lease, so that one
      late renewal (a busy machine) does not lose it; the lease no longer has to outlast the tick:
      it only has to outlast the gap between renewals, and a dead worker's task moves on after it;
    - the hard limit plus one lease end before Redis redelivers an unacked tick: a reserved message
      can wait behind the running tick for up to the hard limit before its own tick claims, and a
      redelivered tick that finds the lease still held is acked as a no-op; with the lease renewed
      for as long as the tick lives, the redelivery must also come after a tick that hit its hard
      limit had its lease run out (tests/integration/test_celery_workers.py).
    """
    llm, soft, hard, lease, visibility = (values[name] for name in TIMEOUT_NAMES)
    heartbeat = values.get("HORIZON_HEARTBEAT_SECONDS", lease / 4)
    retries = values["HORIZON_LLM_MAX_RETRIES"]

    problems = [f"{name} must be positive, got {values[name]:g} s" for name in TIMEOUT_NAMES if values[name] <= 0]
    if heartbeat <= 0 and lease > 0:  # a non-positive lease is reported already
        problems.append(f"HORIZON_HEARTBEAT_SECONDS must be positive, got {heartbeat:g} s")
    if retries < 0:
        problems.append(f"HORIZON_LLM_MAX_RETRIES must be 0 or more, got {retries:g}")
    if problems:
        return problems  # an order among nonsensical values would only add noise

    call = llm_call_worst_case(llm, retries)
    if call >= soft:
        problems.append(
            f"HORIZON_LLM_TIMEOUT ({llm:g} s) x (HORIZON_LLM_MAX_RETRIES ({retries:g}) + 1)"
            f" + {SDK_MAX_BACKOFF_SECONDS:g} s SDK backoff per retry = {call:g} s, the longest one model call can take,"
            f" must be less than CELERY_TASK_SOFT_TIME_LIMIT ({soft:g} s)"
        )
    if soft >= hard:
        problems.append(f"CELERY_TASK_SOFT_TIME_LIMIT ({soft:g} s) must be less than CELERY_TASK_TIME_LIMIT ({hard:g} s)")
    if 2 * heartbeat >= lease:
        problems.append(
            f"HORIZON_HEARTBEAT_SECONDS ({heartbeat:g} s) must be less than half of HORIZON_LEASE_SECONDS ({lease:g} s):"
            " a lease must survive one late renewal"
        )
    if lease >= visibility:
        problems.append(f"HORIZON_LEASE_SECONDS ({lease:g} s) must be less than CELERY_VISIBILITY_TIMEOUT ({visibility:g} s)")
    elif visibility <= lease + hard:
        problems.append(
            f"HORIZON_LEASE_SECONDS + CELERY_TASK_TIME_LIMIT ({lease:g} s + {hard:g} s = {lease + hard:g} s)"
            f" must be less than CELERY_VISIBILITY_TIMEOUT ({visibility:g} s)"
        )
    return problems


def timeout_order_message(problems: list[str]) -> str:
    return (
        "the timeouts are out of order; each layer must give up before the next one would duplicate its work"
        " (horizon_project/checks.py says why):\n  " + "\n  ".join(problems)
    )
