"""Fixtures for the integration tests: real `celery worker` processes on the PostgreSQL test database and Redis.

The worker processes share nothing with pytest but the database and the broker, so everything
they need travels through their environment: the test database's URL, the scenario file, the
tool module and the timeouts.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.support.processes import database_url

SIDE_EFFECT_TOOLS = "tests.integration.side_effect_tools"
SIDE_EFFECT_TABLE = "it_side_effect"  # side_effect_tools.TABLE; not imported here, see that module's docstring
STEPS = 10


@contextmanager
def scratch_table(name: str, columns: str) -> Iterator[str]:
    """A table a test tool writes, created fresh for the test and dropped after it; raw SQL because it
    is not a Django model."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TABLE {name} {columns}")
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def side_effect_table(transactional_db: None) -> Iterator[str]:
    with scratch_table(
        SIDE_EFFECT_TABLE,
        "(key text PRIMARY KEY, task_id text NOT NULL, step int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    ) as table:
        yield table


def tool_scenario(steps: int = STEPS) -> dict:
    """A plan of `steps` steps; every step calls the side-effect tool once, then answers."""
    return {
        "name": "integration-side-effects",
        "plan": [{"title": f"Step {i}", "instructions": f"Record side effect {i}."} for i in range(steps)],
        "steps": {},
        "default_step": [{"tool": "record_side_effect", "arguments": {}}, {"final": "done: {title}"}],
    }


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(tool_scenario()))
    return path


@pytest.fixture
def worker_env(transactional_db: None, scenario_file: Path, tmp_path: Path) -> dict[str, str]:
    """The environment every worker of a test gets; tests add their timeouts on top."""
    return {
        # The pytest test database (test_postgres), not the DATABASE_URL pytest itself was given.
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "HORIZON_SCENARIO": str(scenario_file),
        "HORIZON_TOOL_MODULES": SIDE_EFFECT_TOOLS,
        "HORIZON_TEST_SQLITE_ALIAS": "",  # the workers need only the PostgreSQL database
        "HORIZON_VAR_DIR": str(tmp_path / "var"),
        "OPENAI_BASE_URL": "",  # the offline scripted model answers
        "OPENAI_API_KEY": "",
    }


def worker_hostname(name: str, starts: int) -> str:
    """The node name tests.support.processes.CeleryWorker gives its n-th start."""
    return f"{name}-{starts}@{socket.gethostname()}"
