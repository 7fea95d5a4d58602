"""Fixtures for the integration tests: real `celery worker` processes on the PostgreSQL test database and Redis.

The worker processes share nothing with pytest but the database and the broker, so everything
they need travels through their environment: the test database's URL, the scenario file, the
tool module and the timeouts.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.support.processes import database_url

SIDE_EFFECT_TOOLS = "tests.integration.side_effect_tools"
SIDE_EFFECT_TABLE = "it_side_effect"  # side_effect_tools.TABLE; not imported here, see that module's docstring
STEPS = 10

# The keys kombu's Redis transport keeps for the default queue and for delivered-but-unacked
# messages (ack emulation). Leftovers of an earlier run, such as a killed worker's unacked ticks,
# would be restored into this run's queue and ring for tasks of a database that no longer exists.
QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
UNACKED_KEYS = ("unacked", "unacked_index", "unacked_mutex")


class Broker:
    """A look into the Redis broker the workers use (db 15 under scripts/test.sh)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def purge(self) -> None:
        # A queue with priorities lives in several lists named QUEUE + separator + priority.
        keys = [QUEUE, *UNACKED_KEYS, *self.client.scan_iter(match=f"{QUEUE}\x06\x16*")]
        self.client.delete(*keys)

    def queued(self) -> list[bytes]:
        return list(self.client.lrange(QUEUE, 0, -1))

    def unacked(self) -> list[bytes]:
        return list(self.client.hvals("unacked"))

    def task_ids_with_messages(self, task_ids: list[str]) -> set[str]:
        """The tasks for which a tick waits in the queue or is delivered and not yet acked."""
        # One snapshot of both places. Message headers carry the arguments in plain text
        # (argsrepr), so a substring test finds a task id in the raw messages.
        messages = self.queued() + self.unacked()
        return {task_id for task_id in task_ids if any(task_id.encode() in raw for raw in messages)}


@pytest.fixture
def broker() -> Iterator[Broker]:
    probe = Broker(settings.CELERY_BROKER_URL)
    probe.purge()
    yield probe
    probe.purge()
    probe.client.close()


@pytest.fixture
def side_effect_table(transactional_db: None) -> Iterator[str]:
    """The table the test tool writes; raw SQL because it is not a Django model."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SIDE_EFFECT_TABLE}")
        cursor.execute(
            f"CREATE TABLE {SIDE_EFFECT_TABLE} "
            "(key text PRIMARY KEY, task_id text NOT NULL, step int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
    yield SIDE_EFFECT_TABLE
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SIDE_EFFECT_TABLE}")


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
