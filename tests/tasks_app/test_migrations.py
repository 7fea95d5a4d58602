"""The migrations: one per number, and they match the models (nothing left for makemigrations to write)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

import tasks_app.migrations

MIGRATIONS = Path(tasks_app.migrations.__file__).parent


def test_one_migration_per_number() -> None:
    numbers = Counter(m.group(1) for p in MIGRATIONS.glob("*.py") if (m := re.match(r"(\d{4})_", p.name)))
    assert numbers and {n: c for n, c in numbers.items() if c > 1} == {}
    assert sorted(numbers) == [f"{i:04d}" for i in range(1, len(numbers) + 1)]  # no gap either


@pytest.mark.django_db
def test_the_models_need_no_new_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits non-zero when one is needed
