"""Resume latency: from SIGKILL of the worker holding a task to the next step committed by another worker.

    .venv/bin/python -m benchmarks.resume_latency [--configs tuned default] [--repeat 3] [--database-url ...] [--broker-url ...]

Two `celery worker` processes and one `celery beat` (the sweeper) run on PostgreSQL and Redis. A
goal's first step calls the `hold` tool (tests/support/blocking_tools.py), which parks the pool
child that runs it until a marker file goes away. The benchmark waits for the park, SIGKILLs that
worker's whole process group, removes the marker, and waits for the step's `step.completed`
event, which the other worker commits once the dead worker's lease has expired and a sweep (or
the broker's redelivery) rang the task again. Latency = that event's time - the time of the kill.

The workers are the default worker (threads, tests/support/processes.py DEFAULT_POOL). Configurations:
`default` (the settings' defaults: HORIZON_LEASE_SECONDS 20, renewed by the heartbeat every 5 s; sweep
every 5 s) and `tuned` (the fault tests' timeouts, tests/support/processes.py FAULT_TIMEOUTS: a 6 s lease;
sweep every 1 s). The targets (at most lease + sweep interval; at most 30 s with the defaults) are
reported, not asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    RESULTS,
    configure_django,
    noop_scenario,
    table,
    write_result,
)

CONFIGS = {
    "tuned": {"sweep_every": 1, "env": None},  # env: FAULT_TIMEOUTS, filled in main()
    "default": {"sweep_every": 5, "env": {}},
}


def result_rows(results: dict[str, dict[str, Any]], verdict: Callable[[bool], str]) -> list[list[Any]]:
    """A row per configuration: this script's table and report.py's page show the same columns
    (each words the verdict its own way)."""
    return [
        [
            n,
            r["lease_seconds"],
            r["sweep_every_seconds"],
            len(r["latencies_s"]),
            f"{r['median_s']:.2f}",
            f"{r['max_s']:.2f}",
            r["bound_s"],
            verdict(r["met"]),
        ]
        for n, r in results.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["tuned", "default"])
    parser.add_argument("--repeat", type=int, default=3, help="kills per configuration")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL + "_resume")
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    from benchmarks import bench_db

    bench_db.prepare(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="horizon-resume-"))
    hold = [{"tool": "hold", "arguments": {"note": "parked"}}, {"final": "held"}]
    scenario = noop_scenario(tmp / "hold.json", 2, step=None)
    import json

    data = json.loads(scenario.read_text())
    data["steps"] = {"0": hold}
    scenario.write_text(json.dumps(data))
    configure_django(args.database_url, broker_url=args.broker_url, dispatch="celery", HORIZON_SCENARIO=str(scenario))
    import redis
    from django.conf import settings
    from django_celery_beat.models import PeriodicTask

    from agents.events import STEP_COMPLETED
    from tasks_app.models import Event
    from tasks_app.services.tasks import agent_task_create
    from tests.support.blocking_tools import HOLD_FILE_ENV, HOLD_LOG_ENV
    from tests.support.processes import DEFAULT_CONCURRENCY, DEFAULT_POOL, FAULT_TIMEOUTS, CeleryBeat, CeleryWorker

    CONFIGS["tuned"]["env"] = {k: str(v) for k, v in FAULT_TIMEOUTS.items()}
    marker, hold_log = tmp / "hold-marker", tmp / "hold.log"
    results = {}
    for name in args.configs:
        config = CONFIGS[name]
        env = {
            **config["env"],
            "HORIZON_SCENARIO": str(scenario),
            "HORIZON_TOOL_MODULES": "tests.support.blocking_tools",
            HOLD_FILE_ENV: str(marker),
            HOLD_LOG_ENV: str(hold_log),
        }
        lease = float(env.get("HORIZON_LEASE_SECONDS", settings.HORIZON_LEASE_SECONDS))
        sweep = PeriodicTask.objects.get(task="horizon.sweep")
        sweep.interval.every = config["sweep_every"]
        sweep.interval.save()
        PeriodicTask.objects.filter(pk=sweep.pk).update(expire_seconds=config["sweep_every"])
        redis.Redis.from_url(args.broker_url).flushdb()
        with bench_db.connect(args.database_url) as conn:
            bench_db.truncate_all(conn)
        log_dir = RESULTS / "logs"
        workers = [
            CeleryWorker(env=env, name=f"resume-{name}-{i}", pool=DEFAULT_POOL, concurrency=DEFAULT_CONCURRENCY, log_dir=log_dir)
            for i in range(2)
        ]
        beat = CeleryBeat(env=env, name=f"beat-{name}", run_dir=tmp / name)
        (tmp / name).mkdir(exist_ok=True)
        repeat = args.repeat  # the default lease is 20 s now: a kill costs seconds, not five minutes
        latencies = []
        try:
            for w in workers:
                w.start(ready_timeout=60)
            beat.start(ready_timeout=60)
            for r in range(repeat):
                marker.touch()
                hold_log.write_text("")
                task_id = str(agent_task_create(goal=f"resume {name} {r}").pk)
                deadline = time.monotonic() + 60
                while not hold_log.read_text().strip():
                    if time.monotonic() > deadline:
                        raise RuntimeError("no worker parked in the hold tool; see " + str(log_dir))
                    time.sleep(0.02)
                pid = int(hold_log.read_text().split()[0])
                holder = next(w for w in workers if w.alive() and os.getpgid(pid) == w.pid)
                killed_at = time.time()
                holder.kill(signal.SIGKILL)
                marker.unlink()
                print(f"  {name} run {r + 1}/{repeat}: killed {holder.name}; waiting for the other worker ...", flush=True)
                deadline = time.monotonic() + lease + 120
                while True:
                    done = Event.objects.filter(task_id=task_id, type=STEP_COMPLETED, payload__index=0).first()
                    if done is not None:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"step 0 of {task_id} not resumed after {lease + 120:.0f}s")
                    time.sleep(0.05)
                latency = done.created_at.timestamp() - killed_at
                latencies.append(latency)
                print(f"    resumed by {done.worker} after {latency:.2f} s", flush=True)
                holder.start(ready_timeout=60)  # two workers again for the next run
        finally:
            beat.stop()
            for w in workers:
                w.stop()
            redis.Redis.from_url(args.broker_url).flushdb()  # the sweeps beat sent that nobody consumed
        # The lease runs out at most one lease after the kill and the next sweep rings the task; with
        # the default settings the target is the (issue 17: within 30 s), which also covers the step itself.
        bound = 30.0 if name == "default" else lease + config["sweep_every"]
        results[name] = {
            "lease_seconds": lease,
            "sweep_every_seconds": config["sweep_every"],
            "visibility_timeout": float(env.get("CELERY_VISIBILITY_TIMEOUT", 3600)),
            "latencies_s": latencies,
            "median_s": statistics.median(latencies),
            "max_s": max(latencies),
            "bound_s": bound,
            "met": max(latencies) <= bound,
        }

    shutil.rmtree(tmp, ignore_errors=True)
    print()
    table(
        ["config", "lease s", "sweep every s", "runs", "median s", "max s", "target: at most s", "met"],
        result_rows(results, lambda ok: "yes" if ok else "no"),
    )
    write_result(
        "resume_latency",
        {
            "parameters": {"configs": args.configs, "repeat": args.repeat},
            "definition": "step.completed event time of the held step - time of the SIGKILL of the worker that held it",
            "results": results,
            "target": {"at_most": "lease + sweep interval (tuned); 30 s with the default settings", "asserted": False},
        },
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
