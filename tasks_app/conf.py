"""The settings tasks_app reads, each with a default: a host project sets only the ones it changes.

`from tasks_app.conf import settings` reads a name from django.conf.settings when the project
defines it, and otherwise from DEFAULTS; every other name goes to Django's settings as it is.
This repository's horizon_project/settings.py sets all of them from the environment, with the same
defaults (tests/test_packaging.py holds the two equal), so that tasks_app added to the
INSTALLED_APPS of another project behaves as Horizon does out of the box: the in-process dispatch,
the offline scripted model until an endpoint is configured, the same limits and timeouts.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Running tasks
    "HORIZON_DISPATCH": "inprocess",  # or "celery": the first tick of a task is enqueued for the workers
    "HORIZON_SCENARIO": "",  # the scripted model's scenario file; empty: the bundled demo
    "HORIZON_TOOL_MODULES": [],
    "HORIZON_MAX_STEPS": 50,
    "HORIZON_MAX_ATTEMPTS": 5,
    "HORIZON_MAX_MODEL_CALLS_PER_STEP": 12,
    "HORIZON_PROFILES_FILE": "",
    "HORIZON_CHILDREN_RECHECK_SECONDS": 60.0,
    "HORIZON_LEASE_SECONDS": 20.0,  # short: the tick's heartbeat renews it (agents/heartbeat.py)
    "HORIZON_HEARTBEAT_SECONDS": 5.0,
    "HORIZON_PG_PREPARED_STATEMENTS": True,
    # The sweeper
    "HORIZON_SWEEP_LIMIT": 500,
    "HORIZON_SWEEP_REDELIVER_AFTER": 30.0,
    "HORIZON_STUCK_AFTER": 3600.0,
    # The model endpoint: none configured means the offline scripted model
    "OPENAI_BASE_URL": "",
    "OPENAI_API_KEY": "",
    "HORIZON_LLM_MODEL": "gpt-4o-mini",
    "HORIZON_LLM_FALLBACK_MODEL": "",
    "HORIZON_LLM_TIMEOUT": 60.0,
    "HORIZON_LLM_MAX_TIMEOUT": 1800.0,  # the longest call a profile may allow (a reasoning model)
    "HORIZON_LLM_MAX_RETRIES": 1,
    "HORIZON_LLM_MAX_OUTPUT_BYTES": 1024 * 1024,
    "HORIZON_LLM_MAX_TOKENS": None,
    "HORIZON_LLM_PRICE_INPUT_PER_MTOK": 0.0,
    "HORIZON_LLM_PRICE_OUTPUT_PER_MTOK": 0.0,
    "HORIZON_BREAKER_FAILURES": 5,
    "HORIZON_BREAKER_COOL_DOWN": 30.0,
    "CELERY_TASK_SOFT_TIME_LIMIT": 240,
    "CELERY_TASK_TIME_LIMIT": 270,
    "CELERY_VISIBILITY_TIMEOUT": 3600,
    "CELERY_TIMEZONE": "UTC",
    # Long-term memory
    "HORIZON_EMBEDDER": "auto",
    "HORIZON_EMBEDDING_MODEL": "",
    # The JSON API and webhooks
    "HORIZON_API_MAX_BODY_BYTES": 256 * 1024,
    "HORIZON_API_MAX_PAGE_SIZE": 200,
    "HORIZON_API_CREATE_LIMIT": 60,
    "HORIZON_API_CREATE_WINDOW_SECONDS": 60,
    "HORIZON_WEBHOOK_SECRET": "",
    "HORIZON_WEBHOOK_ALLOW_PRIVATE": False,  # horizon_project allows private addresses outside production only
    "HORIZON_WEBHOOK_TIMEOUT": 5.0,
    "HORIZON_WEBHOOK_MAX_ATTEMPTS": 8,
    "HORIZON_WEBHOOK_BACKOFF": 10.0,
    "PROMETHEUS_MULTIPROC_DIR": "",
    # The built-in tools
    "HORIZON_FETCH_ALLOWED_HOSTS": [],
    "HORIZON_FETCH_MAX_BYTES": 1024 * 1024,
    "HORIZON_FETCH_TIMEOUT": 10.0,
    "HORIZON_SANDBOX_PYTHON": sys.executable,
    "HORIZON_SANDBOX_CPU_SECONDS": 5,
    "HORIZON_SANDBOX_MEMORY_MB": 256,
    "HORIZON_SANDBOX_WALL_SECONDS": 10.0,
    "HORIZON_SANDBOX_MAX_OUTPUT_BYTES": 64 * 1024,
    "HORIZON_SANDBOX_BWRAP": "",  # bubblewrap's path; empty: bwrap on PATH
    "HORIZON_SANDBOX_SITE_PACKAGES": False,
    "HORIZON_SANDBOX_UNSAFE": False,  # no kernel isolation: local experiments only (docs/security.md)
    "HORIZON_SECRET_VALUES": [],
    # The keyed event chain: no key means plain SHA-256 (consistency only)
    "HORIZON_AUDIT_KEY": "",
    "HORIZON_AUDIT_KEY_VERSION": 1,
    "HORIZON_AUDIT_OLD_KEYS": {},
    "PRODUCTION": False,  # horizon_project: HORIZON_ENV == "production"
    # Builds: none named means unranked (records nothing, refused nothing); see docs/deploys.md
    "HORIZON_BUILD_ID": "",
    "HORIZON_BUILD_SEQUENCE": None,
}


class _Settings:
    def __getattr__(self, name: str) -> Any:
        if name in DEFAULTS:
            return getattr(django_settings, name, DEFAULTS[name])
        return getattr(django_settings, name)


settings: Any = _Settings()
