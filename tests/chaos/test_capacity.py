"""Capacity (docs/performance.md): the default worker (threads) keeps hundreds of ticks waiting on a
model with a bounded number of connections, short leases kept alive by the heartbeat move a dead
worker's task on within about one lease, and a worker's threads never mix up their tasks' scripts.

Each test runs its own PostgreSQL and Redis (tests/chaos/servers.py) and real `celery worker`
processes; the model is benchmarks/latency_endpoint.py (an OpenAI-compatible endpoint that answers
after a fixed latency) or the offline scripted model.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.chaos.capacity import ConnectionPeak, Endpoint, create_goals, stack, wait_for
from tests.chaos.fleet import BrokerClient

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

# A tick may wait up to 30 s for the endpoint.
ENDPOINT_TIMEOUTS = {
    "HORIZON_LLM_TIMEOUT": "30",
    "HORIZON_LLM_MAX_RETRIES": "0",
    "CELERY_TASK_SOFT_TIME_LIMIT": "40",
    "CELERY_TASK_TIME_LIMIT": "50",
    "CELERY_VISIBILITY_TIMEOUT": "120",
}
POOL_MAX = 16  # settings.HORIZON_DB_POOL_MAX's default: a worker machine's connections


def endpoint_env(endpoint: Endpoint, lease: float) -> dict[str, str]:
    return {
        **ENDPOINT_TIMEOUTS,
        "HORIZON_LEASE_SECONDS": str(lease),
        "OPENAI_BASE_URL": endpoint.url,
        "OPENAI_API_KEY": "capacity-test",
        "HORIZON_LLM_MODEL": "latency-model",
    }


def test_300_concurrent_goals_complete_within_the_pool_bound_on_a_server_with_few_connections(tmp_path: Path) -> None:
    """max_connections 25 (22 for clients): a worker of 500 threads, 300 goals waiting on a model at
    once. Every goal completes, the worker never holds more than its pool's 16 connections, and no
    `too many clients` reaches anyone (a thread per connection needed 300)."""
    endpoint = Endpoint(tmp_path / "endpoint.log", latency=3.0, steps=2)
    try:
        with stack(tmp_path, max_connections=25, **endpoint_env(endpoint, lease=20)) as s:
            peak = ConnectionPeak(s.postgres)
            peak.start()
            worker = s.worker("capacity")
            s.beat()
            ids = create_goals(s, [f"Capacity goal {i}" for i in range(300)])
            wait_for(
                "300 goals to complete",
                lambda: s.sql("SELECT count(*) FROM tasks_app_agenttask WHERE status = 'completed'")[0][0] == 300,
                timeout=300,
                interval=1.0,
            )
            peak.stop()
            stats = endpoint.stats()
            statuses = dict(s.sql("SELECT status, count(*) FROM tasks_app_agenttask GROUP BY status"))
            assert statuses == {"completed": 300} and len(ids) == 300
            assert peak.workers <= POOL_MAX, f"the worker held {peak.workers} connections"
            assert peak.total < 25
            # Hundreds of calls were in flight at once: the bound is on connections, not on waiting ticks.
            assert stats["peak"] >= 200, stats
            log = worker.log() + "".join(p.log() for p in s.processes)
            assert "too many clients" not in log
            assert not re.search(r"OperationalError|PoolTimeout", log), log[-3000:]
    finally:
        endpoint.stop()


def test_a_long_call_keeps_a_short_lease_a_killed_worker_loses_it_and_a_zombie_writes_nothing(tmp_path: Path) -> None:
    """A 20 s model call under a 3 s lease: another worker cannot take the task while the caller lives;
    once the caller is SIGKILLed, the other takes over within about one lease (plus the 1 s sweep);
    a caller frozen past its lease, whose task was taken over, writes nothing when it wakes."""
    lease = 3.0
    endpoint = Endpoint(tmp_path / "endpoint.log", latency=0.2, steps=1, plan_latency=20.0)
    broker = None
    try:
        with stack(tmp_path, **endpoint_env(endpoint, lease=lease)) as s:
            first = s.worker("first")
            s.beat()
            (task,) = create_goals(s, ["A goal with a long plan"])
            wait_for("the plan call", lambda: endpoint.stats()["in_flight"] == 1, timeout=30)
            held = s.task(task)
            assert held["lease_epoch"] == 1 and held["lease_owner"]
            second = s.worker("second")
            broker = BrokerClient(s.redis.url)
            # 12 s: four leases. Duplicate doorbells make the second worker try to claim meanwhile.
            until = time.monotonic() + 4 * lease
            while time.monotonic() < until:
                broker.deliver_at_once(task, 1)
                now = s.task(task)
                assert (now["lease_epoch"], now["lease_owner"], now["resume_count"]) == (1, held["lease_owner"], 0)
                time.sleep(1.0)

            first.kill(signal.SIGKILL)
            took = wait_for("a takeover", lambda: s.task(task)["lease_epoch"] > 1, timeout=30, interval=0.05)
            assert took <= lease + 1.0 + 1.5, f"taken over {took:.1f} s after the kill"  # lease + sweep + slack for load
            assert s.task(task)["lease_owner"] != held["lease_owner"]
            wait_for("the task to complete", lambda: s.task(task)["status"] == "completed", timeout=60)

            # A zombie: the caller is frozen in its call past its lease; the other worker takes over.
            third = s.worker("third")
            (zombie_task,) = create_goals(s, ["A second goal with a long plan"])
            wait_for("the plan call", lambda: s.task(zombie_task)["lease_owner"] is not None, timeout=30)
            frozen_owner = s.task(zombie_task)["lease_owner"]
            # The threads pool runs ticks in the worker's own process: the owner's pid is the worker's.
            assert _pid_of(frozen_owner) in (second.pid, third.pid)
            frozen, other = (second, third) if _pid_of(frozen_owner) == second.pid else (third, second)
            os.killpg(frozen.pid, signal.SIGSTOP)
            try:
                wait_for("the other worker's takeover", lambda: s.task(zombie_task)["lease_epoch"] > 1, timeout=30, interval=0.05)
            finally:
                os.killpg(frozen.pid, signal.SIGCONT)
            wait_for("the task to complete", lambda: s.task(zombie_task)["status"] == "completed", timeout=90)
            # The other worker planned it. Read from the plan event, not the lease: under load the new
            # owner may have committed and released its lease before this test looks at the row.
            plan_sql = "SELECT worker FROM tasks_app_event WHERE task_id = %s AND type = 'plan.created'"
            ((planner,),) = s.sql(plan_sql, [zombie_task])
            assert _pid_of(planner) == other.pid
            # The frozen tick's answer came back after the takeover (the endpoint held it 20 s): it wrote
            # nothing, not an event, not its journal entry (one plan, written by the new owner).
            assert s.sql(
                "SELECT count(*) FROM tasks_app_event WHERE task_id = %s AND worker = %s", [zombie_task, frozen_owner]
            ) == [(0,)]
            assert s.sql("SELECT count(*) FROM tasks_app_event WHERE task_id = %s AND type = 'plan.created'", [zombie_task]) == [
                (1,)
            ]
            time.sleep(2.0)  # the frozen worker's call returns ~20 s after it started; give it time to try
            assert s.sql(
                "SELECT count(*) FROM tasks_app_event WHERE task_id = %s AND worker = %s", [zombie_task, frozen_owner]
            ) == [(0,)]
    finally:
        if broker is not None:
            broker.close()
        endpoint.stop()


def _pid_of(owner: str) -> int:
    return int(owner.split(":")[1])


def _group_pids(pgid: int) -> str:
    from tests.chaos.fleet import group_pids

    return ":".join(str(p) for p in sorted(group_pids(pgid)))


def test_a_pool_child_killed_mid_tick_resumes_at_once_on_the_same_worker(tmp_path: Path) -> None:
    """prefork: the child holding a task dies in its model call; its message comes back at once
    (reject_on_worker_lost) and the lease of a provably dead owner (this host, pid gone) is freed
    for the claim, instead of waiting the 20 s lease out."""
    endpoint = Endpoint(tmp_path / "endpoint.log", latency=0.2, steps=1, plan_latency=5.0)
    try:
        with stack(tmp_path, **endpoint_env(endpoint, lease=20)) as s:
            worker = s.worker("prefork", pool="prefork", concurrency=2)
            (task,) = create_goals(s, ["A goal whose pool child dies"])
            wait_for("the plan call", lambda: endpoint.stats()["in_flight"] == 1, timeout=30)
            child = _pid_of(s.task(task)["lease_owner"])
            assert child != worker.pid and str(child) in _group_pids(worker.pid).split(":")
            os.kill(child, signal.SIGKILL)
            took = wait_for(
                "the claim of the redelivered tick", lambda: s.task(task)["lease_epoch"] > 1, timeout=30, interval=0.05
            )
            assert took < 20 / 2, f"resumed {took:.1f} s after the kill: it waited for the lease"
            owner = s.task(task)["lease_owner"]
            assert str(_pid_of(owner)) in _group_pids(worker.pid).split(":")  # the same worker's new child
            wait_for("the task to complete", lambda: s.task(task)["status"] == "completed", timeout=60)
    finally:
        endpoint.stop()


def test_200_concurrent_ticks_of_distinct_scripts_each_get_their_own_results_and_verdicts(tmp_path: Path) -> None:
    """One worker process, 500 threads, 200 tasks at once under a self-reviewing profile: each goal
    has a script of its own, whose reviewer rejects the first answer once with the goal's own
    critique. Every task must end with its own result, having been told its own critique once."""
    n = 200
    goals = {
        f"Goal {i}:": {
            "plan": [{"title": f"Work {i}", "instructions": "do it"}],
            "steps": {"0": [{"final": f"result {i}"}]},
            "verdicts": [{"approved": False, "critique": f"critique for goal {i}"}],
        }
        for i in range(n)
    }
    scenario = {"name": "threads", "plan": [{"title": "unused"}], "goals": goals}
    with stack(tmp_path, scenario=scenario) as s:
        s.worker("threads")
        ids = create_goals(s, [f"Goal {i}: the {i}th" for i in range(n)], profile="careful")
        wait_for(
            f"{n} tasks to end",
            lambda: (
                s.sql("SELECT count(*) FROM tasks_app_agenttask WHERE status IN ('completed', 'failed', 'requires_human')")[0][0]
                == n
            ),
            timeout=240,
            interval=1.0,
        )
        for i, task in enumerate(ids):
            row = s.task(task)
            assert row["status"] == "completed", (i, row)
            assert row["result"]["output"] == f"result {i}", (i, row["result"])
            critiques = [
                c
                for (c,) in s.sql(
                    "SELECT payload->>'critique' FROM tasks_app_event WHERE task_id = %s AND type = 'step.reviewed' ORDER BY seq",
                    [task],
                )
            ]
            assert critiques[0] == f"critique for goal {i}" and f"critique for goal {i}" not in critiques[1:], (i, critiques)
            assert all(c in ("", f"critique for goal {i}") for c in critiques), (i, critiques)
