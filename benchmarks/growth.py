"""Growth: does a step cost more when the task is old? Time and bytes at step 10 and at step 1000 of one task.

    .venv/bin/python -m benchmarks.growth [--steps 1000] [--window 20] [--database-url ...]

One task of N no-op steps is ticked in this process on PostgreSQL (the runner a worker builds, no
Celery, so nothing but the tick is timed). For a window of ticks around step 10 and around step N it
records the median tick time, the WAL this database wrote (pg_walinspect, held by a temporary slot;
the cluster-wide LSN difference is kept beside it) and the size of the rows those steps wrote
(events, checkpoints, step rows, journal entries: pg_column_size). The issue's target (step N at
most 1.1x step 10) is reported, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import DEFAULT_DATABASE_URL, configure_django, noop_scenario, table, write_result

TARGET = 1.1

ROW_BYTES = """
SELECT
  (SELECT coalesce(sum(pg_column_size(e.*)), 0) FROM tasks_app_event e WHERE task_id = %(t)s AND seq > %(e0)s AND seq <= %(e1)s)
+ (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM tasks_app_checkpoint c WHERE task_id = %(t)s
    AND seq > %(c0)s AND seq <= %(c1)s)
+ (SELECT coalesce(sum(pg_column_size(s.*)), 0) FROM tasks_app_step s WHERE task_id = %(t)s
    AND index >= %(s0)s AND index < %(s1)s)
+ (SELECT coalesce(sum(pg_column_size(j.*)), 0) FROM tasks_app_journalentry j WHERE task_id = %(t)s AND created_at > %(at)s)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    # 20: with a tick at about 4 ms, the median of 10 moved by 15% between runs of the same code.
    parser.add_argument("--window", type=int, default=20, help="ticks measured around each point")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL + "_growth")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    n, w = args.steps, args.window
    early = 10

    from benchmarks import bench_db

    bench_db.prepare(args.database_url)
    with tempfile.TemporaryDirectory(prefix="horizon-growth-") as tmp:
        configure_django(args.database_url, HORIZON_SCENARIO=str(noop_scenario(Path(tmp) / "noop.json", n)))
        from django.utils import timezone

        from tasks_app.models import AgentTask
        from tasks_app.runtime import build_runner
        from tasks_app.services.tasks import agent_task_create

        with bench_db.connect(args.database_url) as conn:
            bench_db.truncate_all(conn)
            walinspect = bench_db.enable_walinspect(conn)
            runner = build_runner()
            warm = str(agent_task_create(goal="warm-up", max_steps=min(n, 30)).pk)
            while runner.tick(warm).runnable:
                pass
            task_id = str(agent_task_create(goal=f"growth over {n} steps", max_steps=n).pk)
            runner.tick(task_id)  # the plan
            points = {}
            step = 0  # steps completed
            print(f"one task of {n} steps; measuring {w} ticks around step {early} and step {n} ...", flush=True)
            for label, first in (("early", max(0, early - w // 2)), ("late", n - w)):
                while step < first:
                    runner.tick(task_id)
                    step += 1
                task = AgentTask.objects.get(pk=task_id)
                e0, c0, at = task.last_event_seq, task.checkpoint_seq, timezone.now()
                if walinspect:
                    bench_db.hold_wal(conn)
                lsn0 = bench_db.wal_insert_lsn(conn)
                times = []
                for _ in range(w):
                    started = time.perf_counter()
                    runner.tick(task_id)
                    times.append((time.perf_counter() - started) * 1000)
                    step += 1
                lsn1 = bench_db.wal_insert_lsn(conn)
                by_rel = bench_db.wal_of_database(conn, lsn0, bench_db.wal_flush_lsn(conn)) if walinspect else None
                if walinspect:
                    bench_db.release_wal(conn)
                task = AgentTask.objects.get(pk=task_id)
                rows = conn.execute(
                    ROW_BYTES,
                    {
                        "t": task_id,
                        "e0": e0,
                        "e1": task.last_event_seq,
                        "c0": c0,
                        "c1": task.checkpoint_seq,
                        "s0": first,
                        "s1": step,
                        "at": at,
                    },
                ).fetchone()[0]
                points[label] = {
                    "steps": [first + 1, step],
                    "ms_per_step_median": statistics.median(times),
                    "ms_all": times,
                    "wal_db_bytes_per_step": None if by_rel is None else sum(v["bytes"] for v in by_rel.values()) / w,
                    "wal_cluster_bytes_per_step": bench_db.wal_bytes_between(conn, lsn0, lsn1) / w,
                    "row_bytes_per_step": int(rows) / w,
                }
            status = AgentTask.objects.get(pk=task_id).status
            bench_db.truncate_all(conn)
    if status != "completed":
        raise SystemExit(f"the task ended {status}, not completed")

    e, late = points["early"], points["late"]

    def ratio(key: str) -> float | None:
        return late[key] / e[key] if e[key] and late[key] is not None else None

    ratios = {k: ratio(k) for k in ("ms_per_step_median", "wal_db_bytes_per_step", "row_bytes_per_step")}
    print()
    table(
        ["", "steps", "ms/step (median)", "WAL db B/step", "WAL cluster B/step", "row B/step"],
        [
            [
                label,
                f"{p['steps'][0]}-{p['steps'][1]}",
                f"{p['ms_per_step_median']:.2f}",
                "n/a" if p["wal_db_bytes_per_step"] is None else f"{p['wal_db_bytes_per_step']:,.0f}",
                f"{p['wal_cluster_bytes_per_step']:,.0f}",
                f"{p['row_bytes_per_step']:,.0f}",
            ]
            for label, p in points.items()
        ]
        + [
            [
                "late/early",
                "",
                *("n/a" if ratios[k] is None else f"{ratios[k]:.2f}x" for k in ("ms_per_step_median", "wal_db_bytes_per_step")),
                "",
                "n/a" if ratios["row_bytes_per_step"] is None else f"{ratios['row_bytes_per_step']:.2f}x",
            ]
        ],
    )
    met = all(r is not None and r <= TARGET for r in ratios.values())
    print(
        f"target: step {n} at most {TARGET}x step {early} in time and bytes (reported, not asserted):",
        "met" if met else "not met",
    )
    write_result(
        "growth",
        {
            "parameters": {"steps": n, "window": w, "early_step": early},
            "points": points,
            "ratios_late_over_early": ratios,
            "target": {"at_most": TARGET, "met": met, "asserted": False},
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
