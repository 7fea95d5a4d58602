"""Throughput: ticks per second with two worker processes over many concurrent goals, beside raw Celery.

    .venv/bin/python -m benchmarks.throughput [--goals 200] [--steps 5] [--database-url ...] [--broker-url ...]

Two real `celery worker` processes (prefork, concurrency 1 each, the project's settings) consume:

- Horizon: G goals of S no-op steps each, all created first, then one tick enqueued for each; every
  committed tick enqueues the next: G x (S+1) ticks (a plan tick and S step ticks per goal);
- raw Celery, the same work: G chains of S+1 `bench.insert_then_next` tasks (one INSERT + COMMIT
  each, acks_late, each enqueuing the next after its commit, benchmarks/baseline_tasks.py).

Rate = messages / wall time from the first enqueue until the poller saw the last row. The issue's
target (Horizon at least 60% of raw Celery) is reported, not asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.common import (
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    RESULTS,
    configure_django,
    noop_scenario,
    table,
    write_result,
)

TARGET = 0.6


def wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goals", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL + "_throughput")
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    from benchmarks import bench_db

    bench_db.prepare(args.database_url)
    tmp = tempfile.TemporaryDirectory(prefix="horizon-throughput-")
    scenario = noop_scenario(Path(tmp.name) / "noop.json", args.steps)
    configure_django(args.database_url, broker_url=args.broker_url, dispatch="celery", HORIZON_SCENARIO=str(scenario))
    import redis
    from django.test import override_settings

    from benchmarks.baseline_tasks import insert_then_next
    from tasks_app.models import AgentTask
    from tasks_app.services.tasks import agent_task_create
    from tasks_app.tasks import tick
    from tests.support.processes import CeleryWorker

    redis.Redis.from_url(args.broker_url).flushdb()
    workers = [
        CeleryWorker(
            env={"HORIZON_SCENARIO": str(scenario)},
            name=f"tp{i}",
            concurrency=1,
            log_dir=RESULTS / "logs",
            extra_args=("--include", "benchmarks.baseline_tasks"),
        )
        for i in range(args.workers)
    ]
    g, s = args.goals, args.steps
    messages = g * (s + 1)
    try:
        for w in workers:
            w.start(ready_timeout=60)
        with bench_db.connect(args.database_url) as conn:
            bench_db.truncate_all(conn)
            # Warm-up: every pool child imports, connects and runs a few of each.
            run = uuid.uuid4().hex[:8]
            for i in range(4):
                insert_then_next.delay(f"{run}-{i}", 1, 3)
            wait(lambda: conn.execute("SELECT count(*) FROM bench_baseline").fetchone()[0] >= 12, 60, "the warm-up")
            with override_settings(HORIZON_DISPATCH="inprocess"):
                warm = [str(agent_task_create(goal="warm-up", max_steps=s).pk) for _ in range(4)]
            for t in warm:
                tick.delay(t)
            wait(lambda: AgentTask.objects.filter(pk__in=warm, status="completed").count() == 4, 60, "the warm-up goals")
            bench_db.truncate_all(conn)

            # Horizon: create every goal (nothing enqueued), then ring each one.
            with override_settings(HORIZON_DISPATCH="inprocess"):
                ids = [str(agent_task_create(goal=f"throughput {i}", max_steps=s).pk) for i in range(g)]
            print(f"Horizon: {g} goals x {s} steps on {args.workers} workers ...", flush=True)
            started = time.perf_counter()
            for t in ids:
                tick.delay(t)
            wait(lambda: AgentTask.objects.filter(status="completed").count() == g, 60 + messages * 0.5, "the goals")
            horizon_s = time.perf_counter() - started
            ticks = sum(AgentTask.objects.values_list("checkpoint_seq", flat=True))

            print(f"raw Celery: {g} chains of {s + 1} INSERT + COMMIT tasks ...", flush=True)
            run = uuid.uuid4().hex[:8]
            started = time.perf_counter()
            for i in range(g):
                insert_then_next.delay(f"{run}-{i}", 1, s + 1)

            def done() -> bool:
                return bool(
                    conn.execute("SELECT count(*) FROM bench_baseline WHERE run LIKE %s", [f"{run}-%"]).fetchone()[0] >= messages
                )

            wait(done, 60 + messages * 0.5, "the baseline")
            celery_s = time.perf_counter() - started
    finally:
        for w in workers:
            w.stop()
        redis.Redis.from_url(args.broker_url).flushdb()
        tmp.cleanup()

    horizon_rate, celery_rate = ticks / horizon_s, messages / celery_s
    print()
    table(
        ["", "messages", "seconds", "messages/s", "steps/s"],
        [
            ["Horizon", ticks, f"{horizon_s:.2f}", f"{horizon_rate:.1f}", f"{g * s / horizon_s:.1f}"],
            ["raw Celery", messages, f"{celery_s:.2f}", f"{celery_rate:.1f}", f"{g * s / celery_s:.1f}"],
        ],
    )
    share = horizon_rate / celery_rate
    verdict = "met" if share >= TARGET else "not met"
    print(f"Horizon runs at {share:.0%} of raw Celery's rate (target at least {TARGET:.0%}, reported not asserted: {verdict})")
    write_result(
        "throughput",
        {
            "parameters": {"goals": g, "steps": s, "workers": args.workers, "concurrency_per_worker": 1},
            "horizon": {"ticks": ticks, "seconds": horizon_s, "ticks_per_s": horizon_rate, "steps_per_s": g * s / horizon_s},
            "celery": {"tasks": messages, "seconds": celery_s, "tasks_per_s": celery_rate, "steps_per_s": g * s / celery_s},
            "share_of_celery": share,
            "target": {"share_at_least": TARGET, "met": share >= TARGET, "asserted": False},
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
