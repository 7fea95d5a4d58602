"""Production settings pass Django's deployment checks with nothing silenced; DEBUG stays off there."""

from __future__ import annotations

import secrets
import sys

from tests.test_settings import run_with_env

PRODUCTION = {
    "HORIZON_ENV": "production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "HORIZON_AUDIT_KEY": secrets.token_urlsafe(64),
    "DATABASE_URL": "postgres://horizon@127.0.0.1:5432/horizon",
    "DJANGO_ALLOWED_HOSTS": "horizon.example.com",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
}


def test_check_deploy_is_clean_in_production() -> None:
    result = run_with_env([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_names_what_an_insecure_production_override_gives_up() -> None:
    result = run_with_env(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        **PRODUCTION,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SESSION_COOKIE_SECURE="false",
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr and "security.W012" in result.stderr


def test_debug_cannot_be_switched_on_in_production() -> None:
    result = run_with_env([sys.executable, "manage.py", "check"], **PRODUCTION, DJANGO_DEBUG="1")
    assert result.returncode != 0 and "DJANGO_DEBUG cannot be on when HORIZON_ENV=production" in result.stderr
