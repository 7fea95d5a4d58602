"""I/O concurrency: how many model calls one worker machine keeps in flight, at what cost.

    .venv/bin/python -m benchmarks.io_concurrency [--latencies 1 10] [--goals 100 1000]
        [--pools threads:500 prefork:2 gevent:500] [--max-seconds 240] [--quick]

An OpenAI-compatible endpoint answers every call after a fixed latency L (benchmarks/latency_endpoint.py,
which counts the calls in flight from its side). G goals of 3 steps (a step: a `list_files` tool call
and the answer that follows it, two model calls; plus one planning call per goal) are created at once
with HORIZON_DISPATCH=celery; one `celery worker` (the README's command, with the pool and
concurrency under test) works them off. Per run:

- calls in flight at the endpoint, peak and time-weighted mean;
- steps/s: steps completed / time from the first goal's creation to the last step (or to the end of
  the window); and the model calls answered in that time, in steps (7 calls make 3 steps), beside the
  ideal min(G, in-flight capacity) / (calls per step x L);
- CPU ms per tick of the whole worker process tree (user + system, /proc), ticks = checkpoints written;
- peak PostgreSQL connections of the worker (pg_stat_activity, by application_name);
- peak RSS of the worker process tree.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import DEFAULT_BROKER_URL, DEFAULT_DATABASE_URL, REPO, RESULTS, configure_django, table, write_result

APP_NAME = "horizon-io-bench-worker"
TICK = os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except ProcessLookupError:
                continue
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            continue
    return total / TICK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class Monitor(threading.Thread):
    """Samples the worker's PostgreSQL connections and RSS twice a second; keeps the peaks, and the
    CPU time of processes that exit (a prefork child replaced) so that it is not lost."""

    def __init__(self, pgid: int, database_url: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.pgid = pgid
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.peak_connections = 0
        self.peak_rss = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            (n,) = self.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]).fetchone()
            self.peak_connections = max(self.peak_connections, n)
            self.peak_rss = max(self.peak_rss, rss_bytes(group_pids(self.pgid)))
            self.stopped.wait(0.5)

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)
        self.conn.close()


def endpoint_stats(base: str, path: str = "/_stats") -> dict[str, Any]:
    root = base.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(root + path, data=b"" if path == "/_reset" else None, timeout=10) as response:
        return json.loads(response.read())


def start_endpoint(latency: float, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    out = open(log, "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.latency_endpoint", "--latency", str(latency)], cwd=REPO, stdout=out
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text()
        if "listening on " in text:
            return proc, text.split("listening on ")[1].split()[0]
        time.sleep(0.1)
    raise RuntimeError("the latency endpoint did not start")


def worker_command(pool: str, concurrency: int) -> list[str]:
    """The README's worker command, with the pool and concurrency under test."""
    return [
        sys.executable, "-m", "celery", "-A", "horizon_project", "worker", "-l", "INFO", "-Q", "horizon,horizon.control",
        "-P", pool, "--concurrency", str(concurrency), "-E",
    ]  # fmt: skip


def run_one(args: argparse.Namespace, url: str, latency: float, pool: str, concurrency: int, goals: int) -> dict[str, Any]:
    import redis
    from django.db import connections

    from benchmarks import bench_db
    from tasks_app.models import AgentTask, Checkpoint, Step
    from tasks_app.services.tasks import agent_task_create

    redis.Redis.from_url(args.broker_url).flushdb()
    with bench_db.connect(args.database_url) as conn:
        bench_db.truncate_all(conn)
    endpoint_stats(url, "/_reset")
    env = {
        **os.environ,
        "OPENAI_BASE_URL": url,
        "OPENAI_API_KEY": "bench",
        "HORIZON_LLM_MODEL": "bench-model",
        "HORIZON_LLM_MAX_RETRIES": "0",
        "DATABASE_URL": f"{args.database_url}?application_name={APP_NAME}",
        "PYTHONUNBUFFERED": "1",
    }
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"io-{pool}-{concurrency}-L{latency:g}-G{goals}.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        worker_command(pool, concurrency), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in Path(log.name).read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {log.name}")
            time.sleep(0.2)
        monitor = Monitor(worker.pid, args.database_url)
        monitor.start()
        cpu_before = cpu_seconds(group_pids(worker.pid))
        started = time.monotonic()
        for i in range(goals):
            agent_task_create(goal=f"I/O goal {i}")
        connections.close_all()
        created = time.monotonic() - started
        limit = args.prefork_seconds if pool == "prefork" else args.max_seconds
        ticks_before = 0
        if pool == "prefork":
            # A window of steady state: two calls in flight from the first goal on. Creating the goals
            # took most of a short window at G = 1000, so the window starts when they exist.
            endpoint_stats(url, "/_reset")
            started, cpu_before, ticks_before = time.monotonic(), cpu_seconds(group_pids(worker.pid)), Checkpoint.objects.count()
        stop_at = started + limit
        while time.monotonic() < stop_at:
            if AgentTask.objects.exclude(status="completed").count() == 0:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        steps = Step.objects.filter(status="completed").count()
        ticks = Checkpoint.objects.count() - ticks_before
        cpu = cpu_seconds(group_pids(worker.pid)) - cpu_before
        monitor.stop()
        stats = endpoint_stats(url)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        log.close()
    rate = steps / elapsed
    return {
        "pool": pool,
        "concurrency": concurrency,
        "latency_s": latency,
        "goals": goals,
        "completed_goals": AgentTask.objects.filter(status="completed").count(),
        "create_s": created,
        "elapsed_s": elapsed,
        "steps": steps,  # completed (in a prefork window: since the goals were created)
        "ticks": ticks,
        "calls": stats["calls"],
        "in_flight_peak": stats["peak"],
        "in_flight_mean": stats["mean"],
        "steps_per_s": rate,
        **against_ideal(stats["calls"], elapsed, goals=goals, capacity=concurrency, latency=latency),
        "cpu_ms_per_tick": 1000 * cpu / ticks if ticks else float("nan"),
        "peak_pg_connections": monitor.peak_connections,
        "peak_rss_mib": monitor.peak_rss / 2**20,
        "timed_out": elapsed >= limit,
    }


# A goal makes 1 planning call and 2 calls per step: 7 calls for 3 steps.
CALLS_PER_STEP = (1 + 2 * 3) / 3


def against_ideal(calls: int, elapsed: float, *, goals: int, capacity: int, latency: float) -> dict[str, float]:
    """Throughput in steps' worth of model calls against the ideal min(G, capacity) / (calls per step x L).

    Counted in calls, not in completed steps: a worker that cannot keep up (prefork) spends a window of
    the run planning goals, whose steps come later; every call it answered is work done all the same."""
    ideal = min(goals, capacity) / (CALLS_PER_STEP * latency)
    rate = calls / elapsed / CALLS_PER_STEP
    return {"calls_per_step": CALLS_PER_STEP, "work_steps_per_s": rate, "ideal_steps_per_s": ideal, "of_ideal": rate / ideal}


def rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    for r in results:
        r.update(against_ideal(r["calls"], r["elapsed_s"], goals=r["goals"], capacity=r["concurrency"], latency=r["latency_s"]))
    return [
        [
            f"{r['pool']} {r['concurrency']}",
            f"{r['latency_s']:g}",
            r["goals"],
            f"{r['in_flight_peak']} / {r['in_flight_mean']:.0f}",
            f"{r['steps_per_s']:.2f}",
            f"{r['work_steps_per_s']:.2f}",
            f"{r['ideal_steps_per_s']:.2f}",
            f"{100 * r['of_ideal']:.0f}%",
            f"{r['cpu_ms_per_tick']:.1f}",
            r["peak_pg_connections"],
            f"{r['peak_rss_mib']:.0f}",
            f"{r['completed_goals']}/{r['goals']}" + (" (stopped)" if r["timed_out"] else ""),
        ]
        for r in results
    ]


HEADERS = [
    "worker",
    "L s",
    "G",
    "in flight peak / mean",
    "steps/s done",
    "steps/s in calls",
    "ideal",
    "of ideal",
    "CPU ms/tick",
    "PG conns",
    "RSS MiB",
    "goals done",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latencies", nargs="+", type=float, default=[1.0, 10.0])
    parser.add_argument("--goals", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--pools", nargs="+", default=["threads:500", "prefork:2"], help="pool:concurrency (gevent:500 too)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop a run after this long")
    parser.add_argument(
        "--prefork-seconds",
        type=float,
        default=60.0,
        help="prefork runs are measured over this window (its 2 calls in flight are steady)",
    )
    parser.add_argument("--quick", action="store_true", help="L=1 s, G=20, 30 s at most: check that it works")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL + "_io")
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--note", default="", help="conditions (a loaded machine...)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.latencies, args.goals, args.max_seconds, args.prefork_seconds = [1.0], [20], 30.0, 15.0

    from benchmarks import bench_db

    bench_db.prepare(args.database_url)
    configure_django(args.database_url, broker_url=args.broker_url, dispatch="celery")
    tmp = Path(tempfile.mkdtemp(prefix="horizon-io-"))
    results = []
    for latency in args.latencies:
        endpoint, url = start_endpoint(latency, tmp / f"endpoint-{latency:g}.log")
        try:
            for spec in args.pools:
                pool, _, concurrency = spec.partition(":")
                for goals in args.goals:
                    load = os.getloadavg()[0]
                    print(f"  {pool} {concurrency}, L={latency:g} s, G={goals} (load {load:.1f}) ...", flush=True)
                    result = run_one(args, url, latency, pool, int(concurrency or 1), goals)
                    result["load_before"] = load
                    results.append(result)
                    table(HEADERS, rows([result]))
        finally:
            endpoint.terminate()
            endpoint.wait(10)
    print()
    table(HEADERS, rows(results))
    write_result(
        "io_concurrency",
        {
            "parameters": {
                "latencies": args.latencies,
                "goals": args.goals,
                "pools": args.pools,
                "max_seconds": args.max_seconds,
            },
            "note": args.note,
            "results": results,
            "targets": {"in_flight_at_10s": 500, "of_ideal": 0.8, "pg_connections": 20, "rss_mib": 1024},
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
