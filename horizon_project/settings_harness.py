"""Horizon's own settings: the harness, the model endpoint, the timeout order, the API and webhooks.

Imported by horizon_project/settings.py after the Django core; it reads the environment only through
horizon_project/settings_env.py, so a bad value names its variable.
"""

from __future__ import annotations

import os
import subprocess

from django.core.exceptions import ImproperlyConfigured

from horizon_project.checks import check_timeout_order, timeout_order_message
from horizon_project.settings_env import BASE_DIR, PRODUCTION, env, env_bool, env_float, env_int

# --- the harness --------------------------------------------------------------------------------
# "inprocess": nothing is enqueued; `manage.py drive` (or run_goal) claims and ticks due tasks.
# "celery": creating a task and every committed tick enqueue the next tick on the broker.
HORIZON_DISPATCH = env("HORIZON_DISPATCH", "inprocess")
if HORIZON_DISPATCH not in ("inprocess", "celery"):
    raise ImproperlyConfigured(f"HORIZON_DISPATCH must be 'inprocess' or 'celery', got {HORIZON_DISPATCH!r}")
HORIZON_SCENARIO = os.environ.get("HORIZON_SCENARIO", "")  # scripted-model scenario; empty: the bundled demo
HORIZON_TOOL_MODULES = [m for m in os.environ.get("HORIZON_TOOL_MODULES", "").split(",") if m]
HORIZON_MAX_STEPS = env_int("HORIZON_MAX_STEPS", 50)


def _git(*args: str) -> str:
    """The repository's answer, or "" where there is no git or no repository (an image)."""
    try:
        done = subprocess.run(["git", *args], cwd=BASE_DIR, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


# The build a worker runs (docs/deploys.md): every claim records it on the task, and a task that a
# newer build has ticked is never claimed by an older one. "Newer" is a higher HORIZON_BUILD_SEQUENCE;
# by default the build is the git commit and its sequence the commit's time. An image without git
# sets both (e.g. the commit and its time, or the CI pipeline number); with no build id the worker
# is unranked: it records nothing and is refused nothing.
HORIZON_BUILD_ID = os.environ.get("HORIZON_BUILD_ID") or _git("rev-parse", "--short=12", "HEAD")
_sequence = os.environ.get("HORIZON_BUILD_SEQUENCE") or (_git("log", "-1", "--format=%ct") if HORIZON_BUILD_ID else "")
try:
    HORIZON_BUILD_SEQUENCE: int | None = int(_sequence) if _sequence else None
except ValueError:
    raise ImproperlyConfigured(f"HORIZON_BUILD_SEQUENCE must be a whole number, got {_sequence!r}") from None
HORIZON_MAX_ATTEMPTS = env_int("HORIZON_MAX_ATTEMPTS", 5)
HORIZON_MAX_MODEL_CALLS_PER_STEP = env_int("HORIZON_MAX_MODEL_CALLS_PER_STEP", 12)
# Agent profiles beyond the built-in ones (agents/profiles.py): a JSON or YAML file of
# {name: {setting: value}}. Validated at start-up; an unknown setting or tool stops the process.
HORIZON_PROFILES_FILE = os.environ.get("HORIZON_PROFILES_FILE", "")
# The sweeper (tasks_app/services/sweep.py), run by celery-beat every 5 s (the schedule is a migration).
HORIZON_SWEEP_LIMIT = env_int("HORIZON_SWEEP_LIMIT", 500)  # rows per question per sweep
# A runnable task whose tick message has not been claimed for this long gets another one (a wiped
# or restarted Redis loses messages; the row does not). Longer than a busy queue's usual wait.
HORIZON_SWEEP_REDELIVER_AFTER = env_float("HORIZON_SWEEP_REDELIVER_AFTER", 30.0)
HORIZON_STUCK_AFTER = env_float("HORIZON_STUCK_AFTER", 3600.0)  # no committed tick for this long: task.stuck
# A parent waiting for its sub-agents re-checks them after this long (then after half the time
# waited, at most an hour), in case a child's doorbell was lost (agents/subtasks.py).
HORIZON_CHILDREN_RECHECK_SECONDS = env_float("HORIZON_CHILDREN_RECHECK_SECONDS", 60.0)
if HORIZON_CHILDREN_RECHECK_SECONDS <= 0:
    raise ImproperlyConfigured("HORIZON_CHILDREN_RECHECK_SECONDS must be a positive number of seconds")

# The LLM endpoint (any OpenAI-compatible server). Unset: the offline scripted model is used.
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
HORIZON_LLM_MODEL = os.environ.get("HORIZON_LLM_MODEL", "gpt-4o-mini")
HORIZON_LLM_FALLBACK_MODEL = os.environ.get("HORIZON_LLM_FALLBACK_MODEL", "")  # asked while the breaker is open
# The SDK's own retries stay low: Celery retries the tick too, and the two would multiply.
HORIZON_LLM_MAX_RETRIES = env_int("HORIZON_LLM_MAX_RETRIES", 1)
HORIZON_LLM_MAX_OUTPUT_BYTES = env_int("HORIZON_LLM_MAX_OUTPUT_BYTES", 1024 * 1024)  # a response body is never read past this
HORIZON_LLM_MAX_TOKENS = env_int("HORIZON_LLM_MAX_TOKENS", 0) or None  # output tokens per call; unset: the server's default
HORIZON_LLM_PRICE_INPUT_PER_MTOK = env_float("HORIZON_LLM_PRICE_INPUT_PER_MTOK", 0.0)  # USD, for cost budgets
HORIZON_LLM_PRICE_OUTPUT_PER_MTOK = env_float("HORIZON_LLM_PRICE_OUTPUT_PER_MTOK", 0.0)
# Long-term memory's embedder (agents/recall/embedders.py): auto | openai | local | hash. auto: the
# endpoint's embeddings when HORIZON_EMBEDDING_MODEL is set, else the local model when the memory
# extra is installed, else the hashing embedder.
HORIZON_EMBEDDER = os.environ.get("HORIZON_EMBEDDER", "auto")
if HORIZON_EMBEDDER not in ("auto", "openai", "local", "hash"):
    raise ImproperlyConfigured(f"HORIZON_EMBEDDER must be auto, openai, local or hash, got {HORIZON_EMBEDDER!r}")
HORIZON_EMBEDDING_MODEL = os.environ.get("HORIZON_EMBEDDING_MODEL", "")  # e.g. text-embedding-3-small
# Per endpoint and model: open after this many consecutive transient failures, for this long.
HORIZON_BREAKER_FAILURES = env_int("HORIZON_BREAKER_FAILURES", 5)
HORIZON_BREAKER_COOL_DOWN = env_float("HORIZON_BREAKER_COOL_DOWN", 30.0)

# Timeouts are ordered so that each layer gives up before the one that would duplicate it:
# LLM client (all its SDK attempts) < Celery soft limit < hard limit < lease < Redis visibility timeout
# (with a margin of the hard limit). horizon_project/checks.py says why; a wrong order stops start-up.
HORIZON_LLM_TIMEOUT = env_float("HORIZON_LLM_TIMEOUT", 60.0)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 270)
# A lease is short and kept alive by the tick's heartbeat (agents/heartbeat.py), which renews it every
# HORIZON_HEARTBEAT_SECONDS (default: a quarter of the lease): a dead worker's task moves on within
# about one lease, however long its model call was going to take.
HORIZON_LEASE_SECONDS = env_float("HORIZON_LEASE_SECONDS", 20.0)
HORIZON_HEARTBEAT_SECONDS = env_float("HORIZON_HEARTBEAT_SECONDS", HORIZON_LEASE_SECONDS / 4)
# The longest model call a profile may allow (its llm_timeout; reasoning models think for minutes);
# such a profile's ticks get time limits of their own (agents/llm/config.py tick_limits).
HORIZON_LLM_MAX_TIMEOUT = env_float("HORIZON_LLM_MAX_TIMEOUT", 1800.0)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
# Checked here, not in a Django system check: `check` runs for manage.py commands and runserver, but
# never in gunicorn, the Celery worker or beat, and those are where a wrong order duplicates work.

_timeout_problems = check_timeout_order(
    {
        "HORIZON_LLM_TIMEOUT": HORIZON_LLM_TIMEOUT,
        "HORIZON_LLM_MAX_RETRIES": HORIZON_LLM_MAX_RETRIES,
        "CELERY_TASK_SOFT_TIME_LIMIT": CELERY_TASK_SOFT_TIME_LIMIT,
        "CELERY_TASK_TIME_LIMIT": CELERY_TASK_TIME_LIMIT,
        "HORIZON_LEASE_SECONDS": HORIZON_LEASE_SECONDS,
        "HORIZON_HEARTBEAT_SECONDS": HORIZON_HEARTBEAT_SECONDS,
        "CELERY_VISIBILITY_TIMEOUT": CELERY_VISIBILITY_TIMEOUT,
    }
)
if _timeout_problems:
    raise ImproperlyConfigured(timeout_order_message(_timeout_problems))

# --- the JSON API (tasks_app/api) and its webhooks (tasks_app/services/webhooks.py) ------------------------
HORIZON_API_MAX_BODY_BYTES = env_int("HORIZON_API_MAX_BODY_BYTES", 256 * 1024)  # larger requests: 413
HORIZON_API_MAX_PAGE_SIZE = env_int("HORIZON_API_MAX_PAGE_SIZE", 200)  # list endpoints' `limit` cap
# Task creations per token (or session user) per fixed window, counted in the database so that every
# web process shares the count; over it, 429 with Retry-After.
HORIZON_API_CREATE_LIMIT = env_int("HORIZON_API_CREATE_LIMIT", 60)
HORIZON_API_CREATE_WINDOW_SECONDS = env_int("HORIZON_API_CREATE_WINDOW_SECONDS", 60)
# The HMAC key of X-Horizon-Signature. Unset: derived from DJANGO_SECRET_KEY (receivers then need that
# derived value: set it explicitly in production so that it can be shared and rotated on its own).
HORIZON_WEBHOOK_SECRET = os.environ.get("HORIZON_WEBHOOK_SECRET", "")
# Callback URLs that resolve to loopback, private or link-local addresses (SSRF): allowed in development
# (a receiver on this machine), refused in production unless set.
HORIZON_WEBHOOK_ALLOW_PRIVATE = env_bool("HORIZON_WEBHOOK_ALLOW_PRIVATE", not PRODUCTION)
HORIZON_WEBHOOK_TIMEOUT = env_float("HORIZON_WEBHOOK_TIMEOUT", 5.0)  # seconds per attempt
HORIZON_WEBHOOK_MAX_ATTEMPTS = env_int("HORIZON_WEBHOOK_MAX_ATTEMPTS", 8)
HORIZON_WEBHOOK_BACKOFF = env_float("HORIZON_WEBHOOK_BACKOFF", 10.0)  # seconds before the 2nd attempt; doubles, max 1 h
