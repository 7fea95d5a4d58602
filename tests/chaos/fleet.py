"""The processes of a chaos run: workers, beats, management commands and a broker client.

Everything runs against the private servers of tests/chaos/servers.py. The pytest process talks to
them only through subprocesses (manage.py), a Celery client bound to the private broker, and
psycopg; it never points its own Django connections at them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from celery import Celery

from tests.support.processes import DEFAULT_CONCURRENCY, DEFAULT_POOL, FAULT_TIMEOUTS, REPO, CeleryWorker

TOOL_MODULE = "tests.chaos.chaos_tools"
QUEUE = "horizon"  # settings.CELERY_TASK_DEFAULT_QUEUE: the ticks (the sweep has horizon.control)
# The duplicate ticks are published to a queue of their own, then moved together to the head of
# the workers' queue (see BrokerClient.deliver_at_once).
DUPLICATE_QUEUE = "horizon-chaos-duplicates"

TIMEOUTS = FAULT_TIMEOUTS


def process_env(*, database_url: str, broker_url: str, scenario: Path, var_dir: Path, redeliver_after: float) -> dict[str, str]:
    """What every process of the run gets: the private servers, the scenario, the tool, the timeouts."""
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "HORIZON_DISPATCH": "celery",
        "HORIZON_SCENARIO": str(scenario),
        "HORIZON_TOOL_MODULES": TOOL_MODULE,
        "HORIZON_TEST_SQLITE_ALIAS": "",
        "HORIZON_VAR_DIR": str(var_dir),
        "HORIZON_SWEEP_REDELIVER_AFTER": str(redeliver_after),
        "OPENAI_BASE_URL": "",
        "OPENAI_API_KEY": "",
        "PYTHONUNBUFFERED": "1",
        **{name: str(value) for name, value in TIMEOUTS.items()},
        # A kill interrupts every tick the killed worker holds (with the threads pool, half the goals),
        # and each of them counts the claim as an attempt at its step; this run kills a worker every
        # few seconds, far more often than the attempt cap (5) is meant to absorb.
        "HORIZON_MAX_ATTEMPTS": "25",
    }


def group_pids(pgid: int) -> set[int]:
    """The live processes of a process group (a worker's parent and its pool children)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.add(int(entry))
            except ProcessLookupError:
                continue
    return pids


class WorkerSlot:
    """One of the two workers: a fresh CeleryWorker (own log, own node name) after every kill."""

    def __init__(self, name: str, *, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_dir = log_dir
        self.incarnations: list[CeleryWorker] = []
        self.lock = threading.Lock()
        self.ready_at = 0.0  # when the current worker said it was ready (time.monotonic())

    @property
    def current(self) -> CeleryWorker:
        return self.incarnations[-1]

    def start(self) -> CeleryWorker:
        # The documented default worker (threads): what production runs is what the faults hit.
        worker = CeleryWorker(
            env=self.env,
            name=f"{self.name}-{len(self.incarnations) + 1}",
            concurrency=DEFAULT_CONCURRENCY,
            pool=DEFAULT_POOL,
            log_dir=self.log_dir,
        )
        self.incarnations.append(worker)
        worker.start(ready_timeout=60)
        self.ready_at = time.monotonic()
        return worker

    def pids(self) -> set[int]:
        return group_pids(self.current.pid)

    def stop_all(self) -> None:
        for worker in self.incarnations:
            try:
                if worker.proc is not None and worker.proc.poll() is None:
                    os.killpg(worker.proc.pid, signal.SIGCONT)  # a stopped worker cannot act on SIGTERM
            except ProcessLookupError:
                pass
            worker.stop()


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `manage.py ARGS` against the private servers; returns stdout, raises on failure."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.MULTILINE)
CREATE_GOALS = """
from tasks_app.services.tasks import agent_task_create
for i in range({count}):
    print(agent_task_create(goal=f"Chaos goal {{i}}").id)
"""


def create_goals(env: dict[str, str], count: int) -> list[str]:
    """Create goals in a subprocess: each commits its task and, on commit, publishes its first tick."""
    out = manage(env, "shell", "-c", CREATE_GOALS.format(count=count))
    # The shell also prints its own notices ("N objects imported automatically"): keep the ids.
    ids = UUID.findall(out)
    assert len(ids) == count, out
    return ids


class BrokerClient:
    """A Celery client bound to the private broker, to publish ticks the way a duplicate delivery would."""

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.app = Celery("horizon-chaos-client", broker=broker_url, set_as_current=False)
        self.app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)

    def deliver_at_once(self, task_id: str, copies: int) -> list[str]:
        """Deliver `copies` identical horizon.tick messages for one task at the same instant.

        Published from `copies` threads at once, to a side queue nobody consumes, then moved in one
        Redis transaction to the head of the workers' queue (kombu's Redis transport pushes on the
        left and pops on the right). Published straight to the workers' queue they would wait
        behind ~100 goals' ticks, and reach the workers one by one, or be wiped by a Redis restart.
        """
        barrier = threading.Barrier(copies)
        ids: list[str] = []
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                # An explicit connection: Celery's conf.broker_url lets the CELERY_BROKER_URL environment
                # variable (the shared Redis, in the pytest process) win over the broker the app was given.
                with self.app.connection_for_write(self.broker_url) as conn:
                    conn.ensure_connection(max_retries=3)
                    barrier.wait(timeout=10)
                    ids.append(self.app.send_task("horizon.tick", args=[task_id], queue=DUPLICATE_QUEUE, connection=conn).id)
            except BaseException as exc:  # noqa: BLE001 - reported by the caller
                errors.append(exc)

        threads = [threading.Thread(target=publish) for _ in range(copies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        if errors:
            raise RuntimeError(f"publishing the duplicate ticks failed: {errors}")
        client = redis.Redis.from_url(self.broker_url)
        try:
            messages = client.lrange(DUPLICATE_QUEUE, 0, -1)
            assert len(messages) == copies, f"{len(messages)} of {copies} duplicate ticks reached the broker"
            with client.pipeline(transaction=True) as pipe:
                pipe.rpush(QUEUE, *reversed(messages))
                pipe.delete(DUPLICATE_QUEUE)
                pipe.execute()
        finally:
            client.close()
        return ids

    def close(self) -> None:
        self.app.close()
