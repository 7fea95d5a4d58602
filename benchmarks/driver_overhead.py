"""The in-process driver's per-step overhead, on PostgreSQL and on SQLite (the embedded default).

    .venv/bin/python -m benchmarks.driver_overhead [--n 10 100 1000] [--database-url postgres://...]

No Celery: `agent_task_drive` (what `manage.py drive` and `run_goal` run) ticks one task of N no-op
steps (the scripted model answers each step at once) in this process. Beside it, in the same
process and database, the baseline: N transactions of one INSERT and COMMIT through Django's
connection. Each backend runs in its own child process (Django's settings are per process).
Prints a table and writes benchmarks/results/driver_overhead.json; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import DEFAULT_DATABASE_URL, REPO, configure_django, migrate, noop_scenario, table, write_result

BASELINE_DDL = "CREATE TABLE IF NOT EXISTS bench_driver_baseline (id integer PRIMARY KEY, run text NOT NULL, i integer NOT NULL)"


def measure(backend: str, database_url: str, ns: list[int], repeat: int) -> dict:
    """In the child: migrate, then time the driver and the baseline for each N."""
    with tempfile.TemporaryDirectory(prefix="horizon-driver-") as tmp:
        scenario = noop_scenario(Path(tmp) / "noop.json", max(ns))
        migrate(database_url)
        configure_django(database_url, HORIZON_SCENARIO=str(scenario))
        from django.db import connection, transaction

        from tasks_app.services.tasks import agent_task_create, agent_task_drive

        with connection.cursor() as cursor:
            cursor.execute(BASELINE_DDL)
            cursor.execute("DELETE FROM bench_driver_baseline")
        # Warm up: the first tick of a process imports and builds what later ticks reuse.
        agent_task_drive(task_id=str(agent_task_create(goal="warm-up", max_steps=min(ns)).pk))
        rows = []
        next_id = 0
        for n in ns:
            horizon, baseline = [], []
            for r in range(repeat):
                task_id = str(agent_task_create(goal=f"driver bench {n}", max_steps=n).pk)
                started = time.perf_counter()
                ticks = agent_task_drive(task_id=task_id)
                horizon.append((time.perf_counter() - started) * 1000 / ticks)
                started = time.perf_counter()
                for i in range(n):
                    next_id += 1
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(
                            "INSERT INTO bench_driver_baseline (id, run, i) VALUES (%s, %s, %s)", [next_id, f"{n}-{r}", i]
                        )
                baseline.append((time.perf_counter() - started) * 1000 / n)
            h, b = statistics.median(horizon), statistics.median(baseline)
            rows.append({"n": n, "ticks": n + 1, "ms_per_tick": h, "baseline_ms_per_insert": b, "ratio": h / b})
        return {"backend": backend, "database": connection.vendor, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL + "_driver", help="PostgreSQL database (created)")
    parser.add_argument("--child", choices=["postgres", "sqlite"], help=argparse.SUPPRESS)
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.child_url, args.n, args.repeat)))
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="horizon-driver-sqlite-") as tmp:
        for backend, url in (("postgres", args.database_url), ("sqlite", f"sqlite:///{tmp}/bench.sqlite3")):
            print(f"{backend}: N = {args.n}, {args.repeat} runs each ...", flush=True)
            cmd = [sys.executable, "-m", "benchmarks.driver_overhead", "--child", backend, "--child-url", url]
            cmd += ["--n", *map(str, args.n), "--repeat", str(args.repeat)]
            out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"the {backend} run failed")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("\nIN-PROCESS DRIVER: time per tick (median of runs) beside one INSERT + COMMIT in the same process")
    lines = []
    for result in results:
        for row in result["rows"]:
            lines.append(
                [
                    result["backend"],
                    row["n"],
                    f"{row['ms_per_tick']:.2f}",
                    f"{row['baseline_ms_per_insert']:.2f}",
                    f"{row['ratio']:.1f}x",
                ]
            )
    table(["backend", "N", "ms/tick", "baseline ms/insert", "ratio"], lines)
    write_result(
        "driver_overhead",
        {
            "parameters": {"n": args.n, "repeat": args.repeat},
            "definitions": {
                "ms_per_tick": "wall time of agent_task_drive / ticks (N steps + 1 plan tick), one task of N no-op steps",
                "baseline_ms_per_insert": "one transaction of one INSERT through Django's connection, same process and database",
            },
            "results": results,
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
