"""The benchmark suite: every benchmark, one after the other, then docs/performance.md from the results.

    .venv/bin/python -m benchmarks.run_all [--quick] [--only NAME ...] [--database-prefix horizon_bench] [--broker-url redis://127.0.0.1:6379/14]

Each benchmark runs in its own process on its own database (`<prefix>_<name>`, created, migrated,
and dropped at the end unless --keep-databases) and prints its table; results go to
benchmarks/results/<name>.json, worker logs to benchmarks/results/logs/. The full suite takes about
30 minutes (about 15 of them: the I/O concurrency runs at L = 1 s and 10 s); --quick runs small
sizes in a few minutes, to check that everything works. Nothing is asserted: targets are reported.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks.common import DEFAULT_BROKER_URL, REPO, RESULTS, drop_database

# name -> (module, full arguments, quick arguments)
SUITE: dict[str, tuple[str, list[str], list[str]]] = {
    "step_overhead": (
        "benchmarks.step_overhead",
        ["--n", "10", "100", "1000"],
        ["--n", "10", "100", "--repeat", "1", "--skip-chain"],
    ),
    "driver_overhead": ("benchmarks.driver_overhead", ["--n", "10", "100", "1000"], ["--n", "10", "100", "--repeat", "1"]),
    "throughput": ("benchmarks.throughput", ["--goals", "200", "--steps", "5"], ["--goals", "50", "--steps", "3"]),
    "idle_scale": ("benchmarks.idle_scale", ["--tasks", "100000"], ["--tasks", "20000", "--real", "50", "--sweeps", "10"]),
    "resume_latency": ("benchmarks.resume_latency", ["--configs", "tuned", "default"], ["--configs", "tuned", "--repeat", "1"]),
    "growth": ("benchmarks.growth", ["--steps", "1000"], ["--steps", "200"]),
    "io_concurrency": (
        "benchmarks.io_concurrency",
        ["--latencies", "1", "10", "--goals", "100", "1000", "--pools", "threads:500", "prefork:2", "gevent:500"],
        ["--quick"],
    ),
}
USES_BROKER = {"step_overhead", "throughput", "resume_latency", "io_concurrency"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check that every benchmark works")
    parser.add_argument("--only", nargs="+", choices=sorted(SUITE), help="run these benchmarks only")
    parser.add_argument("--database-prefix", default="horizon_bench", help="databases <prefix>_<name> on 127.0.0.1:5432")
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL, help="a Redis db of the benchmarks' own (it is flushed)")
    parser.add_argument("--keep-databases", action="store_true")
    parser.add_argument("--no-report", action="store_true", help="do not regenerate docs/performance.md")
    parser.add_argument("--note", default="", help="a sentence for the page about the conditions (a shared machine...)")
    args = parser.parse_args(argv)

    names = args.only or list(SUITE)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    failed, databases = [], []
    for name in names:
        module, full, quick = SUITE[name]
        database = f"postgres://postgres@127.0.0.1:5432/{args.database_prefix}_{name}"
        databases.append(database)
        cmd = [sys.executable, "-m", module, *(quick if args.quick else full), "--database-url", database]
        cmd += ["--json-out", str(RESULTS / f"{name}.json")]
        if name in USES_BROKER:
            cmd += ["--broker-url", args.broker_url]
        print(f"\n=== {name} {'(quick)' if args.quick else ''} ===", flush=True)
        t0 = time.monotonic()
        result = subprocess.run(cmd, cwd=REPO, check=False)
        print(f"=== {name}: {'done' if result.returncode == 0 else 'FAILED'} in {time.monotonic() - t0:.0f} s", flush=True)
        if result.returncode != 0:
            failed.append(name)
    if not args.keep_databases:
        for database in databases:
            drop_database(database)
    if not args.no_report:
        from benchmarks import report

        report.main([*(["--quick"] if args.quick else []), "--note", args.note])
    print(f"\nsuite finished in {time.monotonic() - started:.0f} s; results in {RESULTS}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
