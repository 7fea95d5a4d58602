"""Settings come from the environment in one place; production values have no defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HORIZON_", "DATABASE_URL", "CELERY_"))}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    return subprocess.run(
        [sys.executable, "-c", code],
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
