"""Fixtures for the chaos suite: private PostgreSQL and Redis servers, migrated, with the tool's tables.

The suite's servers are its own (tests/chaos/servers.py), because the test restarts them. If
either cannot be started the fixture raises: the test fails, it never skips.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.fleet import manage, process_env
from tests.chaos.servers import PrivatePostgres, PrivateRedis

DATABASE = "horizon_chaos"
STEPS = 10
SLEEP_SECONDS = 8  # each step's timer: 100 goals stay in flight for about two minutes
SWEEP_EVERY_SECONDS = 1  # the migration's 5 s, shortened so that recovery is quick
# A runnable goal whose tick was not claimed for this long gets another one from the sweeper: the
# recovery after a wiped Redis. It must stay above the queue's normal wait, or healthy goals get
# extra (harmless) ticks: with 100 goals runnable at once, a message waits for ~100 ticks, about
# 10-15 s at this load on two workers of two processes.
REDELIVER_AFTER = 20.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: the chaos suite (private servers, faults); runs with the rest of tests/")


def chaos_scenario(steps: int = STEPS) -> dict:
    """A plan of `steps` steps; every step sleeps on a timer (the task waits, holding nothing; the sweep
    rings it when due), calls the side-effect tool once, then answers. The timers set the pace: with
    the default worker every goal runs at once, so they keep the goals in flight long enough for every
    fault of the timeline and ten kills to land while ticks are short."""
    return {
        "name": "chaos",
        "plan": [{"title": f"Step {i}", "instructions": f"Record side effect {i}."} for i in range(steps)],
        "steps": {},
        "default_step": [
            {"tool": "sleep_for", "arguments": {"seconds": SLEEP_SECONDS}},
            {"tool": "chaos_side_effect", "arguments": {}},
            {"final": "done: {title}"},
        ],
    }


@dataclass
class ChaosServers:
    postgres: PrivatePostgres
    redis: PrivateRedis
    env: dict[str, str]
    log_dir: Path


TOOL_TABLES = """
CREATE TABLE chaos_effect (
    key text PRIMARY KEY, task_id uuid NOT NULL, step int NOT NULL, pid int NOT NULL, created_at timestamptz NOT NULL
);
CREATE TABLE chaos_attempt (
    key text PRIMARY KEY, task_id uuid NOT NULL, step int NOT NULL, attempts int NOT NULL, last_at timestamptz NOT NULL
);
CREATE TABLE chaos_duplicate (
    id bigserial PRIMARY KEY, key text NOT NULL, task_id uuid NOT NULL, step int NOT NULL, pid int NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


@pytest.fixture
def chaos_servers(tmp_path: Path) -> Iterator[ChaosServers]:
    postgres = PrivatePostgres()
    redis_server = PrivateRedis(tmp_path / "redis")
    try:
        postgres.start()
        redis_server.start()
        postgres.create_database(DATABASE)
        scenario = tmp_path / "scenario.json"
        scenario.write_text(json.dumps(chaos_scenario()))
        log_dir = Path(os.environ.get("HORIZON_CHAOS_LOG_DIR", tmp_path / "logs"))
        log_dir.mkdir(parents=True, exist_ok=True)
        env = process_env(
            database_url=postgres.url(DATABASE),
            broker_url=redis_server.url,
            scenario=scenario,
            var_dir=tmp_path / "var",
            redeliver_after=REDELIVER_AFTER,
        )
        manage(env, "migrate", "--noinput", "-v", "0")
        with postgres.connect(DATABASE, autocommit=True) as conn:
            conn.execute(TOOL_TABLES)
            # The sweep schedule (migration 0005) every second; beat reads it when it starts.
            conn.execute(
                "UPDATE django_celery_beat_intervalschedule SET every = %s WHERE id = "
                "(SELECT interval_id FROM django_celery_beat_periodictask WHERE name = 'horizon.sweep')",
                [SWEEP_EVERY_SECONDS],
            )
        yield ChaosServers(postgres=postgres, redis=redis_server, env=env, log_dir=log_dir)
    finally:
        redis_server.stop()
        postgres.stop()
