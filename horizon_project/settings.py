"""Horizon's settings: the Django core here, Horizon's own in the settings_*.py modules imported below.

Together they are the one place that reads the environment. The embedded default needs nothing set:
SQLite in var/, the in-process driver and the offline scripted model. Production sets
HORIZON_ENV=production, which makes the secret key and the database required (no defaults), and
points CELERY_BROKER_URL at Redis.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from horizon_project.checks import parse_old_keys, secret_problem
from horizon_project.settings_env import BASE_DIR as BASE_DIR
from horizon_project.settings_env import ENV as ENV
from horizon_project.settings_env import PRODUCTION, env, env_bool, env_float, env_int

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


def database_config(url: str) -> dj_database_url.DBConfig:
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
        # back, and a claim that fails on one reconnects once (tasks_app/store/prepared.py).
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
# The statements of every tick are prepared once per connection on PostgreSQL (tasks_app/store/prepared.py).
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

# --- Horizon, by concept ------------------------------------------------------------------------
# Imported here, after the Django core, so that their checks run (and name a misconfiguration) in
# the same order as when they were one file; the star imports give Django every setting they define.
from horizon_project.settings_harness import *  # noqa: E402, F403
from horizon_project.settings_harness import HORIZON_LEASE_SECONDS, HORIZON_WEBHOOK_SECRET, OPENAI_API_KEY  # noqa: E402

# isort: split
from horizon_project.settings_celery import *  # noqa: E402, F403
from horizon_project.settings_celery import CELERY_BROKER_URL  # noqa: E402

# isort: split
from horizon_project.settings_tools import *  # noqa: E402, F403
from horizon_project.settings_tools import HORIZON_LOG_FORMAT  # noqa: E402

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
