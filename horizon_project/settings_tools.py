"""Observability and the tools' settings: log format, metrics directory, fetch_url and run_python's sandbox."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from horizon_project.settings_env import PRODUCTION, env, env_bool, env_float, env_int

# --- observability (tasks_app/observability) ------------------------------------------------------
# Every process (web, workers, beat) must share this directory for /metrics to add up what Celery's
# pool children record; prometheus-client itself reads the variable when it is imported. Empty: each
# process keeps its own metrics (one process: the embedded default, `drive`, tests).
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
# json: one JSON object a line, with the tick's task id, step, lease epoch and worker (for log shippers).
HORIZON_LOG_FORMAT = env("HORIZON_LOG_FORMAT", "json" if PRODUCTION else "text")
if HORIZON_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"HORIZON_LOG_FORMAT must be 'json' or 'text', got {HORIZON_LOG_FORMAT!r}")

# --- tools --------------------------------------------------------------------------------------
# fetch_url reaches only these hosts (comma-separated names, addresses, or .suffixes); empty: none.
HORIZON_FETCH_ALLOWED_HOSTS = [h.strip() for h in os.environ.get("HORIZON_FETCH_ALLOWED_HOSTS", "").split(",") if h.strip()]
HORIZON_FETCH_MAX_BYTES = env_int("HORIZON_FETCH_MAX_BYTES", 1024 * 1024)
HORIZON_FETCH_TIMEOUT = env_float("HORIZON_FETCH_TIMEOUT", 10.0)
# run_python's sandbox (docs/security.md): bubblewrap namespaces, seccomp, rlimits. Where it cannot be
# built the tool is not offered (manage.py check and the worker's boot say why).
HORIZON_SANDBOX_PYTHON = os.environ.get("HORIZON_SANDBOX_PYTHON", "") or sys.executable
HORIZON_SANDBOX_CPU_SECONDS = env_int("HORIZON_SANDBOX_CPU_SECONDS", 5)
HORIZON_SANDBOX_MEMORY_MB = env_int("HORIZON_SANDBOX_MEMORY_MB", 256)
HORIZON_SANDBOX_WALL_SECONDS = env_float("HORIZON_SANDBOX_WALL_SECONDS", 10.0)
HORIZON_SANDBOX_MAX_OUTPUT_BYTES = env_int("HORIZON_SANDBOX_MAX_OUTPUT_BYTES", 64 * 1024)
HORIZON_SANDBOX_BWRAP = env("HORIZON_SANDBOX_BWRAP", "")  # bubblewrap's path; empty: bwrap on PATH
# The interpreter's site-packages in the sandbox too (its standard library only, by default).
HORIZON_SANDBOX_SITE_PACKAGES = env_bool("HORIZON_SANDBOX_SITE_PACKAGES", False)
# No kernel isolation at all, for local experiments on a machine without user namespaces.
HORIZON_SANDBOX_UNSAFE = env_bool("HORIZON_SANDBOX_UNSAFE", False)
if HORIZON_SANDBOX_UNSAFE and PRODUCTION:
    raise ImproperlyConfigured("HORIZON_SANDBOX_UNSAFE cannot be on when HORIZON_ENV=production")
if HORIZON_SANDBOX_UNSAFE:
    print("WARNING: HORIZON_SANDBOX_UNSAFE is on: run_python runs code WITHOUT kernel isolation", file=sys.stderr)
for _gone in ("HORIZON_SANDBOX_NETWORK", "HORIZON_SANDBOX_FILESYSTEM"):
    if os.environ.get(_gone):
        raise ImproperlyConfigured(f"{_gone} is gone: run_python always runs in bubblewrap namespaces (docs/security.md)")
# Keep HORIZON_SANDBOX_WALL_SECONDS well below CELERY_TASK_SOFT_TIME_LIMIT: a run happens inside a tick.
