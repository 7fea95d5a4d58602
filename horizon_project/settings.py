"""Horizon's settings: the one place that reads the environment.

The embedded default needs nothing set: SQLite in var/, the in-process driver and the offline
scripted model. Production sets HORIZON_ENV=production, which makes the secret key and the
database required (no defaults), and points CELERY_BROKER_URL at Redis.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from horizon_project.checks import check_timeout_order, parse_old_keys, secret_problem, timeout_order_message

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ.get("HORIZON_ENV", "development")
PRODUCTION = ENV == "production"


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"the environment variable {name} is required when HORIZON_ENV={ENV}")
    return value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw in (None, "") else raw.lower() in ("1", "true", "yes", "on")


SECRET_KEY = env("DJANGO_SECRET_KEY", None if PRODUCTION else "dev-only-insecure-key-do-not-use-in-production")
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
ALLOWED_HOSTS = [h for h in env("DJANGO_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1").split(",") if h]
# DEBUG shows settings and tracebacks to anyone who can cause an error: the embedded demo only.
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG cannot be on when HORIZON_ENV=production")

# HTTPS and cookies: on by default in production (`manage.py check --deploy` is clean with them).
# A local stack without TLS turns the redirect and HSTS off (.env.example says how). Behind a proxy
# that terminates TLS, DJANGO_BEHIND_TLS_PROXY=1 trusts its X-Forwarded-Proto header.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container health check speaks plain HTTP from inside
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", PRODUCTION)
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "tasks_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS) from gunicorn itself: no separate web server is documented.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tasks_app.api.limits.ApiMiddleware",  # /api/ only: 413 before the body is read; JSON 404/405
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "horizon_project.urls"
WSGI_APPLICATION = "horizon_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
VAR_DIR = Path(os.environ.get("HORIZON_VAR_DIR", BASE_DIR / "var"))
DATABASE_URL = env("DATABASE_URL", None if PRODUCTION else f"sqlite:///{VAR_DIR / 'horizon.sqlite3'}")
# PostgreSQL connections per process (web, worker, beat), from Django's native pool; 0: no pool.
# The documented worker is one process of threads per machine, so this is a worker machine's bound.
HORIZON_DB_POOL_MAX = env_int("HORIZON_DB_POOL_MAX", 16)
HORIZON_DB_POOL_TIMEOUT = env_float("HORIZON_DB_POOL_TIMEOUT", 20.0)  # seconds a statement waits for a connection


def database_config(url: str) -> dict:
    config = dj_database_url.parse(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes SQLite's write lock when a transaction starts, so two writers queue
        # instead of failing when a read upgrades to a write; the timeout is how long they queue.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    elif HORIZON_DB_POOL_MAX > 0:
        # Django's native psycopg pool, one per process, shared by its threads: a tick borrows a
        # connection for each statement (the claim, a journal write, the commit) and gives it back
        # before it waits for a model or a tool (tasks_app/db_pool.py), so a worker's connections
        # stay at HORIZON_DB_POOL_MAX whatever its concurrency. A pooled connection is never
        # "persistent" in Django's sense (CONN_MAX_AGE 0); the pool drops broken ones when they come
        # back, and a claim that fails on one reconnects once (tasks_app/pg_prepared.py).
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = False
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(1, HORIZON_DB_POOL_MAX),
            "max_size": HORIZON_DB_POOL_MAX,
            "timeout": HORIZON_DB_POOL_TIMEOUT,  # waiting longer for a connection: OperationalError, retried
        }
    else:
        # No pool (HORIZON_DB_POOL_MAX=0): one connection per thread, reused, checked before use so
        # that a restarted database costs one reconnect rather than a failed tick.
        config["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": database_config(DATABASE_URL)}
# The statements of every tick are prepared once per connection on PostgreSQL (tasks_app/pg_prepared.py).
# Turn off behind a pooler that moves a session's prepared statements to other clients (PgBouncer in
# transaction mode before 1.21).
HORIZON_PG_PREPARED_STATEMENTS = env_bool("HORIZON_PG_PREPARED_STATEMENTS", True)
# The test command sets this so the store conformance suite runs on SQLite beside PostgreSQL.
if env_bool("HORIZON_TEST_SQLITE_ALIAS", False):
    DATABASES["sqlite"] = database_config(f"sqlite:///{VAR_DIR / 'conformance.sqlite3'}")
    # A real file, not Django's shared-cache in-memory test database: shared cache uses table
    # locks that fail at once instead of waiting, which is not how the embedded default behaves.
    DATABASES["sqlite"]["TEST"] = {"NAME": str(VAR_DIR / "test_conformance.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# `collectstatic` fills it (the Dockerfile and scripts/stack.sh run it); WhiteNoise serves it. Not under
# HORIZON_VAR_DIR: the image collects at build time, before any volume is mounted there.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "var" / "static")
with contextlib.suppress(OSError):  # WhiteNoise warns at every start when the directory is missing
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Compressed copies, no manifest: a page renders even where collectstatic has not run (tests,
# the embedded default), and with DEBUG on WhiteNoise finds the files in the apps themselves.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

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
# A transaction left idle longer than a lease belongs to a frozen or dead process (a worker
# SIGSTOPped inside a transactional tool): the server ends it, so its row locks do not pin the task
# past its lease for claims and sweeps. Live ticks never idle that long inside a transaction.
for _database in DATABASES.values():
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _idle_ms = int(HORIZON_LEASE_SECONDS * 1000)
        _database.setdefault("OPTIONS", {})["options"] = f"-c idle_in_transaction_session_timeout={_idle_ms}"
        # Django turns psycopg's prepared statements off (None). A threshold no statement reaches
        # keeps them off for every query except the tick's own, which ask for it explicitly.
        if HORIZON_PG_PREPARED_STATEMENTS:
            _database["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
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

# --- secrets ------------------------------------------------------------------------------------
# Every configured secret, in one place: agents/redaction.py replaces these values (and shapes such
# as `sk-...` and `Bearer ...`) in goals, contexts, events, journals, model answers, tool results and
# log records. HORIZON_SECRET_ENV_VARS names further variables whose values are secrets (a tool's
# API key, say); HORIZON_SECRET_VALUES lists literal values (comma-separated).


def _url_password(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


HORIZON_SECRET_ENV_VARS = [n.strip() for n in os.environ.get("HORIZON_SECRET_ENV_VARS", "").split(",") if n.strip()]
HORIZON_SECRET_VALUES = [
    v
    for v in (
        SECRET_KEY,
        OPENAI_API_KEY,
        _url_password(DATABASE_URL),
        _url_password(CELERY_BROKER_URL),
        os.environ.get("FLOWER_BASIC_AUTH", "").partition(":")[2],
        *(os.environ.get(name, "") for name in HORIZON_SECRET_ENV_VARS),
        *os.environ.get("HORIZON_SECRET_VALUES", "").split(","),
    )
    if v
]

# --- Audit keys and the production secret checks ------------------------------------------------
# The event chain's HMAC key (agents/audit.py): it never enters the database, so whoever can rewrite
# the database cannot recompute the chain. Required in production; unset elsewhere, the chain is a
# plain SHA-256 (it then proves consistency only). Rotate by moving the key to HORIZON_AUDIT_OLD_KEYS
# ("1:oldkey") and raising HORIZON_AUDIT_KEY_VERSION: new events use the new key, old ones still verify.
HORIZON_AUDIT_KEY = os.environ.get("HORIZON_AUDIT_KEY", "")
HORIZON_AUDIT_KEY_VERSION = env_int("HORIZON_AUDIT_KEY_VERSION", 1)
try:
    HORIZON_AUDIT_OLD_KEYS = parse_old_keys(os.environ.get("HORIZON_AUDIT_OLD_KEYS", ""))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if HORIZON_AUDIT_KEY and HORIZON_AUDIT_KEY_VERSION < 1:
    raise ImproperlyConfigured(f"HORIZON_AUDIT_KEY_VERSION must be 1 or more, got {HORIZON_AUDIT_KEY_VERSION}")
if HORIZON_AUDIT_KEY_VERSION in HORIZON_AUDIT_OLD_KEYS:
    raise ImproperlyConfigured(f"HORIZON_AUDIT_OLD_KEYS repeats the current version {HORIZON_AUDIT_KEY_VERSION}")

if PRODUCTION:
    # Last, so that every other misconfiguration is named first. One line each (manage.py prints it).
    for _problem in (
        secret_problem("DJANGO_SECRET_KEY", SECRET_KEY),
        secret_problem("HORIZON_AUDIT_KEY", HORIZON_AUDIT_KEY, min_length=32),
        secret_problem("HORIZON_WEBHOOK_SECRET", HORIZON_WEBHOOK_SECRET, min_length=32) if HORIZON_WEBHOOK_SECRET else None,
        "HORIZON_AUDIT_KEY must differ from DJANGO_SECRET_KEY" if HORIZON_AUDIT_KEY == SECRET_KEY else None,
    ):
        if _problem:
            raise ImproperlyConfigured(_problem)

HORIZON_SECRET_VALUES += [v for v in (HORIZON_AUDIT_KEY, HORIZON_WEBHOOK_SECRET) if v]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "tasks_app.observability.logs.TextFormatter"},
        "json": {"()": "tasks_app.observability.logs.JsonFormatter"},
    },
    # Constructing the redacting filter registers the secrets with the process's redactor: logging is
    # configured first thing in django.setup(), before any task code runs.
    "filters": {
        "tick_context": {"()": "tasks_app.observability.logs.ContextFilter"},
        "redact_secrets": {"()": "agents.redaction.RedactingFilter", "secrets": HORIZON_SECRET_VALUES},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": HORIZON_LOG_FORMAT,
            "filters": ["tick_context", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("HORIZON_LOG_LEVEL", "WARNING")},
    "loggers": {"horizon": {"level": os.environ.get("HORIZON_LOG_LEVEL", "INFO"), "propagate": True}},
}
