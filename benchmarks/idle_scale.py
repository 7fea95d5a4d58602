"""Idle scale: many tasks waiting on timers in the future cost the sweep nothing and little storage.

    .venv/bin/python -m benchmarks.idle_scale [--tasks 100000] [--real 200] [--sweeps 20] [--database-url ...]

1. `--real` tasks run through the in-process driver until their first step sleeps for a day (the
   scripted model calls sleep_for): real waiting tasks with their events, steps, checkpoints and
   journal. Their growth of every table (heap, TOAST and indexes) per task is the storage of one
   idle task.
2. `--tasks` more waiting rows are bulk-inserted in one INSERT ... SELECT from generate_series,
   copying a real waiting row with a new id and a timer between 1 hour and 30 days ahead (only the
   task row: the sweep reads nothing else), then ANALYZE.
3. `sweep()` runs `--sweeps` times with nothing due: the median and p95 time of one sweep, and
   EXPLAIN ANALYZE of each of its questions, which must read an index, never the whole table.

The issue's target (a sweep with nothing due under 50 ms at 100,000 tasks) is reported, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bench_db
from benchmarks.common import DEFAULT_DATABASE_URL, configure_django, noop_scenario, percentile, table, write_result

TARGET_MS = 50.0
# The harness's tables plus those an idle (waiting) task may also hold rows in.
TABLES = (*bench_db.HORIZON_TABLES, "tasks_app_signal", "tasks_app_approval")


def sweep_questions():  # type: ignore[no-untyped-def]
    """The sweep's five questions (tasks_app.services.sweep.questions), each limited as a sweep limits it, for EXPLAIN."""
    from django.conf import settings
    from django.utils import timezone

    from tasks_app.services.sweep import questions

    limit = settings.HORIZON_SWEEP_LIMIT
    return {name: queryset[:limit] for name, queryset in questions("default", timezone.now()).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=200)
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL + "_idle")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    bench_db.prepare(args.database_url)
    with tempfile.TemporaryDirectory(prefix="horizon-idle-") as tmp:
        sleep = [{"tool": "sleep_for", "arguments": {"seconds": 86400}}, {"final": "slept"}]
        scenario = noop_scenario(Path(tmp) / "sleep.json", 3, step=sleep)
        configure_django(args.database_url, HORIZON_SCENARIO=str(scenario))
        from django.db import connection

        from tasks_app.models import AgentTask
        from tasks_app.services.sweep import sweep
        from tasks_app.services.tasks import agent_task_create, agent_task_drive

        with bench_db.connect(args.database_url) as conn:
            bench_db.truncate_all(conn)
            conn.execute("TRUNCATE tasks_app_signal, tasks_app_approval CASCADE")
            conn.execute("VACUUM ANALYZE")
            before = bench_db.relation_sizes(conn, TABLES)

            print(f"{args.real} real tasks, each driven until its first step sleeps for a day ...", flush=True)
            for i in range(args.real):
                task = agent_task_create(goal=f"idle {i}", max_steps=3)
                agent_task_drive(task_id=str(task.pk))
            waiting = AgentTask.objects.filter(status="waiting").count()
            if waiting != args.real:
                raise SystemExit(f"expected {args.real} waiting tasks, found {waiting}")
            conn.execute("VACUUM ANALYZE")
            after_real = bench_db.relation_sizes(conn, TABLES)
            per_task = {t: (after_real[t] - before[t]) / args.real for t in TABLES}
            rows_per_task = {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] / args.real for t in TABLES if after_real[t]
            }

            print(f"bulk-inserting {args.tasks:,} waiting task rows ...", flush=True)
            template = str(AgentTask.objects.filter(status="waiting").values_list("id", flat=True).first())
            columns = [f.column for f in AgentTask._meta.concrete_fields if f.column not in ("id", "next_run_at", "goal")]
            cols = ", ".join(columns)
            started = time.perf_counter()
            conn.execute(
                f"INSERT INTO tasks_app_agenttask (id, goal, next_run_at, {cols}) "
                f"SELECT gen_random_uuid(), 'idle ' || g, now() + interval '1 hour' + random() * interval '30 days', {cols} "
                "FROM tasks_app_agenttask, generate_series(1, %s) AS g WHERE id = %s",
                [args.tasks, template],
            )
            insert_s = time.perf_counter() - started
            conn.execute("VACUUM ANALYZE tasks_app_agenttask")
            after_bulk = bench_db.relation_sizes(conn, ("tasks_app_agenttask",))["tasks_app_agenttask"]
            row_bytes = (after_bulk - after_real["tasks_app_agenttask"]) / args.tasks
            total = AgentTask.objects.count()

            print(f"{args.sweeps} sweeps over {total:,} tasks with nothing due ...", flush=True)
            sweep()  # warm: connection, imports, caches
            times, counts = [], []
            for _ in range(args.sweeps):
                started = time.perf_counter()
                report = sweep()
                times.append((time.perf_counter() - started) * 1000)
                counts.append(sum(report.counts().values()))
            plans = {}
            for name, queryset in sweep_questions().items():
                plans[name] = queryset.explain(analyze=True)
            index_used = {
                name: ("Index" in plan and "Seq Scan on tasks_app_agenttask" not in plan) for name, plan in plans.items()
            }
            connection.close()
            # Leave the database small for whoever runs next (run_all drops it anyway).
            bench_db.truncate_all(conn)

    median = statistics.median(times)
    p95 = percentile(times, 0.95)
    print()
    table(
        ["tasks", "sweep median ms", "p95 ms", "changes made", "bulk insert s"],
        [[f"{total:,}", f"{median:.2f}", f"{p95:.2f}", sum(counts), f"{insert_s:.1f}"]],
    )
    print()
    table(["sweep question", "reads an index"], [[n, "yes" if ok else "NO"] for n, ok in index_used.items()])
    for name, plan in plans.items():
        print(f"\n  EXPLAIN ANALYZE ({name}):\n    " + plan.replace("\n", "\n    "))
    print()
    idle_total = sum(per_task.values())
    table(
        ["table", "bytes per idle task", "rows per idle task"],
        [[t, f"{per_task[t]:,.0f}", f"{rows_per_task.get(t, 0):.1f}"] for t in TABLES if per_task[t]],
    )
    print(f"  storage per idle task (real tasks, every table and index): {idle_total:,.0f} bytes")
    print(f"  task row + its indexes (bulk rows): {row_bytes:,.0f} bytes")
    verdict = "met" if median < TARGET_MS else "not met"
    print(f"sweep with nothing due: median {median:.2f} ms over {total:,} tasks (target under {TARGET_MS:.0f} ms: {verdict})")
    write_result(
        "idle_scale",
        {
            "parameters": {"bulk_tasks": args.tasks, "real_tasks": args.real, "sweeps": args.sweeps},
            "tasks_total": total,
            "sweep_ms": {"median": median, "p95": p95, "all": times},
            "changes_made": sum(counts),
            "explain": plans,
            "index_used": index_used,
            "storage": {
                "bytes_per_idle_task": idle_total,
                "bytes_per_idle_task_by_table": per_task,
                "rows_per_idle_task": rows_per_task,
                "task_row_and_indexes_bytes": row_bytes,
            },
            "bulk_insert_s": insert_s,
            "target": {"sweep_ms_under": TARGET_MS, "met": median < TARGET_MS, "asserted": False},
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
