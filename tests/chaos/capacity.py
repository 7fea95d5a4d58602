"""What the capacity tests share: private servers (PostgreSQL with a chosen max_connections), the
fixed-latency endpoint of benchmarks/latency_endpoint.py, the default worker, and reads of the
private database through psycopg (the pytest process never points Django at these servers)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.chaos.fleet import manage, process_env
from tests.chaos.servers import PrivatePostgres, PrivateRedis
from tests.support.processes import DEFAULT_CONCURRENCY, DEFAULT_POOL, REPO, CeleryBeat, CeleryWorker

DATABASE = "horizon_capacity"
WORKER_APP = "horizon-capacity-worker"  # application_name of the workers' connections


class Endpoint:
    """benchmarks/latency_endpoint.py in a subprocess: every call answered after `latency` seconds."""

    def __init__(self, log: Path, *, latency: float, steps: int = 2, plan_latency: float | None = None) -> None:
        args = [sys.executable, "-m", "benchmarks.latency_endpoint", "--latency", str(latency), "--steps", str(steps)]
        if plan_latency is not None:
            args += ["--plan-latency", str(plan_latency)]
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while "listening on " not in log.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the latency endpoint did not start: {log.read_text()}")
            time.sleep(0.1)
        self.url = log.read_text().split("listening on ")[1].split()[0]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url.rsplit("/v1", 1)[0] + "/_stats", timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Stack:
    def __init__(self, postgres: PrivatePostgres, redis: PrivateRedis, env: dict[str, str], tmp: Path) -> None:
        self.postgres = postgres
        self.redis = redis
        self.env = env
        self.tmp = tmp
        self.processes: list[CeleryWorker | CeleryBeat] = []

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.postgres.connect(DATABASE, autocommit=True) as conn:
            return conn.execute(query, params or []).fetchall()  # type: ignore[arg-type]

    def worker(self, name: str, *, pool: str = DEFAULT_POOL, concurrency: int = DEFAULT_CONCURRENCY, **env: str) -> CeleryWorker:
        worker = CeleryWorker(env={**self.env, **env}, name=name, concurrency=concurrency, log_dir=self.tmp / "logs", pool=pool)
        self.processes.append(worker)
        return worker.start(ready_timeout=60)

    def beat(self) -> CeleryBeat:
        # Not counted with the workers' connections: its own application_name (none).
        beat = CeleryBeat(env={**self.env, "DATABASE_URL": self.postgres.url(DATABASE)}, name="beat", run_dir=self.tmp / "beat")
        (self.tmp / "beat").mkdir(exist_ok=True)
        self.processes.append(beat)
        return beat.start(ready_timeout=60)

    def task(self, task_id: str) -> dict[str, Any]:
        cols = ("status", "lease_owner", "lease_epoch", "resume_count", "status_reason", "result")
        (row,) = self.sql(f"SELECT {', '.join(cols)} FROM tasks_app_agenttask WHERE id = %s", [task_id])
        return dict(zip(cols, row, strict=True))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@contextmanager
def stack(tmp: Path, *, max_connections: int = 100, scenario: dict[str, Any] | None = None, **env: str) -> Iterator[Stack]:
    """Private PostgreSQL (max_connections as given) and Redis, migrated, the sweep every second."""
    postgres = PrivatePostgres(max_connections=max_connections)
    redis_server = PrivateRedis(tmp / "redis")
    running: Stack | None = None
    try:
        postgres.start()
        redis_server.start()
        postgres.create_database(DATABASE)
        scenario_file = tmp / "scenario.json"
        scenario_file.write_text(json.dumps(scenario or {"plan": [{"title": "only"}], "name": "capacity"}))
        base = process_env(
            database_url=f"{postgres.url(DATABASE)}?application_name={WORKER_APP}",
            broker_url=redis_server.url,
            scenario=scenario_file,
            var_dir=tmp / "var",
            redeliver_after=30.0,
        )
        base["HORIZON_TOOL_MODULES"] = ""
        full = {**base, **env}
        manage({**full, "DATABASE_URL": postgres.url(DATABASE)}, "migrate", "--noinput", "-v", "0")
        with postgres.connect(DATABASE, autocommit=True) as conn:
            conn.execute(
                "UPDATE django_celery_beat_intervalschedule SET every = 1 WHERE id = "
                "(SELECT interval_id FROM django_celery_beat_periodictask WHERE name = 'horizon.sweep')"
            )
        running = Stack(postgres, redis_server, full, tmp)
        yield running
    finally:
        if running is not None:
            running.stop()
        redis_server.stop()
        postgres.stop()


CREATE = """
from tasks_app.services.tasks import agent_task_create
for goal in {goals!r}:
    print(agent_task_create(goal=goal, profile={profile!r}).id)
"""


def create_goals(stack: Stack, goals: list[str], profile: str = "default") -> list[str]:
    out = manage(
        {**stack.env, "DATABASE_URL": stack.postgres.url(DATABASE)}, "shell", "-c", CREATE.format(goals=goals, profile=profile)
    )
    ids = [line for line in out.splitlines() if len(line) == 36 and line.count("-") == 4]
    assert len(ids) == len(goals), out
    return ids


class ConnectionPeak(threading.Thread):
    """Samples the workers' connections (by application_name) and every connection of the server."""

    def __init__(self, postgres: PrivatePostgres) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres", autocommit=True)
        self.workers = 0
        self.total = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            mine, total = self.conn.execute(
                "SELECT count(*) FILTER (WHERE application_name = %s), count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend'",
                [WORKER_APP],
            ).fetchone()  # type: ignore[misc]
            self.workers, self.total = max(self.workers, mine), max(self.total, total)
            self.done.wait(0.1)

    def stop(self) -> None:
        self.done.set()
        self.join(5)
        self.conn.close()


def wait_for(what: str, check, timeout: float, interval: float = 0.1) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - started
