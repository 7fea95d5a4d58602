"""Per-step harness overhead of Horizon, beside a bare Celery baseline, on PostgreSQL + Redis.

    .venv/bin/python benchmarks/step_overhead.py [--n 10 100 1000] [--json-out benchmarks/results/step_overhead.json]

For each N it starts one real `celery worker` (prefork, concurrency 1, the project's settings: it
keeps its database connection across tasks) and measures, in the same run:

- Horizon: ONE task whose plan has N no-op steps (the scripted model answers each step with a
  final text at once), dispatched through Celery: N+1 ticks (one plan tick, N step ticks; the last
  step completes the task in its own commit).
- baseline `next`: N Celery tasks, each one INSERT + COMMIT, each enqueuing the next one after its
  commit: the message pattern of Horizon's ticks.
- baseline `chain`: the same N tasks as one `celery.chain` of N signatures. It runs at N=1000,
  but each message carries the rest of the chain, so its cost per task grows with N: `next` is the
  reference for the ratio.

Time is read from the database (first to last row written by the run), and also as wall-clock
from the first enqueue until the poller saw the end. Bytes are the WAL records of the benchmark
database (pg_walinspect) beside the cluster-wide LSN difference, the growth of the tables
(pg_total_relation_size) and the size of the live rows (pg_column_size). It prints figures and
asserts nothing; the issue's target (ratio at most 1.5, per-step time and bytes flat as N grows)
is reported, not enforced. About 1.5 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `benchmarks`, `tasks_app`, `tests` importable
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from benchmarks import bench_db  # noqa: E402 - needs the sys.path line above
from tests.support.processes import CeleryWorker  # noqa: E402 - the real worker process tree the tests use

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/horizon_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
TARGET_RATIO = 1.5
KINDS = ("horizon", "next", "chain")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000], help="step counts to measure (default: 10 100 1000)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="runs per N and kind; the median is reported (default: 3 for N <= 100, 1 above, to stay under ~5 minutes)",
    )
    parser.add_argument("--json-out", type=Path, default=REPO / "benchmarks" / "results" / "step_overhead.json")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL))
    parser.add_argument("--skip-chain", action="store_true", help="leave out the celery.chain baseline")
    args = parser.parse_args(argv)
    if any(n < 1 or n > 10_000 for n in args.n):
        parser.error("every N must be between 1 and 10000 (a task's max_steps range)")
    return args


def configure_django(database_url: str, broker_url: str) -> None:
    """Point this process at the benchmark database and broker, in celery dispatch, then set Django up."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "horizon_project.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_BROKER_URL"] = broker_url
    # The creating process enqueues the first tick on commit, like a web request would.
    os.environ["HORIZON_DISPATCH"] = "celery"
    # As in production: DEBUG off (with DEBUG on, Django also keeps a log of every query).
    os.environ["DJANGO_DEBUG"] = "0"
    # The workers inherit this environment: keep them on the offline scripted model.
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "HORIZON_SCENARIO"):
        os.environ.pop(name, None)
    import django

    django.setup()


# --- one measured run ------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # "horizon", "next" or "chain"
    n: int
    units: int  # Celery messages the run consumed: N+1 ticks for Horizon, N tasks for a baseline
    db_ms: float  # first to last row the run wrote, by the database's (or Django's) timestamps
    wall_ms: float  # from just before the first enqueue until the poller saw the end
    wal_bytes: int  # cluster-wide LSN difference
    wal_db_bytes: int | None  # records of this database only (pg_walinspect); None without the extension
    wal_db_fpi_bytes: int | None  # of which full-page images
    table_growth_bytes: int
    row_bytes: int
    wal_by_relation: dict[str, dict[str, int]] = field(default_factory=dict)
    growth_by_table: dict[str, int] = field(default_factory=dict)
    sessions: int = 0  # PostgreSQL connections opened during the run (pg_stat_database.sessions; approximate)
    rows_by_table: dict[str, int] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def ms_per_unit(self) -> float:
        return self.db_ms / self.units

    @property
    def ms_per_step(self) -> float:
        return self.db_ms / self.n


def wait_for(check: Callable[[], bool], *, timeout: float, what: str, log: Path, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}; see the worker log {log}")
        time.sleep(poll)


def prepare(conn: psycopg.Connection) -> None:
    bench_db.truncate_all(conn)
    bench_db.checkpoint(conn)


def row_bytes(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, int]:
    """The size of the live rows (pg_column_size of the whole row): what a run logically wrote."""
    return {t: int(conn.execute(f"SELECT coalesce(sum(pg_column_size(r.*)), 0) FROM {t} r").fetchone()[0]) for t in tables}


WALINSPECT = False  # set by main() when pg_walinspect could be enabled


def start_measuring(conn: psycopg.Connection, tables: tuple[str, ...]) -> tuple[dict[str, int], str]:
    prepare(conn)
    if WALINSPECT:
        bench_db.hold_wal(conn)
    return bench_db.relation_sizes(conn, tables), bench_db.wal_insert_lsn(conn)


def measure_bytes(conn: psycopg.Connection, tables: tuple[str, ...], before: dict[str, int], lsn_before: str) -> dict:
    lsn_after = bench_db.wal_insert_lsn(conn)
    by_relation = bench_db.wal_of_database(conn, lsn_before, bench_db.wal_flush_lsn(conn)) if WALINSPECT else None
    if WALINSPECT:
        bench_db.release_wal(conn)
    after = bench_db.relation_sizes(conn, tables)
    rows = row_bytes(conn, tables)
    growth = {t: after[t] - before[t] for t in tables}
    return {
        "wal_bytes": bench_db.wal_bytes_between(conn, lsn_before, lsn_after),
        "wal_db_bytes": None if by_relation is None else sum(v["bytes"] for v in by_relation.values()),
        "wal_db_fpi_bytes": None if by_relation is None else sum(v["fpi_bytes"] for v in by_relation.values()),
        "wal_by_relation": by_relation or {},
        "table_growth_bytes": sum(growth.values()),
        "row_bytes": sum(rows.values()),
        "growth_by_table": growth,
        "rows_by_table": rows,
    }


def settled_sessions(conn: psycopg.Connection) -> int:
    # A backend reports its session when it exits or goes idle for a while: give the last one a moment.
    time.sleep(0.3)
    return bench_db.sessions_opened(conn)


def run_horizon(conn: psycopg.Connection, n: int, *, log: Path) -> Run:
    from tasks_app.services.tasks import agent_task_create

    tables = bench_db.HORIZON_TABLES
    sizes, lsn = start_measuring(conn, tables)
    sessions = bench_db.sessions_opened(conn)
    started = time.perf_counter()
    # The service enqueues the first tick after its commit (HORIZON_DISPATCH=celery).
    task_id = str(agent_task_create(goal=f"benchmark: {n} no-op steps", max_steps=n).id)

    def finished() -> bool:
        status = conn.execute("SELECT status FROM tasks_app_agenttask WHERE id = %s", [task_id]).fetchone()[0]
        return status in ("completed", "failed", "cancelled", "requires_human", "paused")

    wait_for(finished, timeout=60 + n * 1.0, what=f"Horizon task {task_id} ({n} steps)", log=log)
    wall_ms = (time.perf_counter() - started) * 1000
    figures = measure_bytes(conn, tables, sizes, lsn)
    figures["sessions"] = settled_sessions(conn) - sessions
    task = conn.execute(
        "SELECT status, status_reason, steps_completed, resume_count, lease_epoch, checkpoint_seq, last_event_seq"
        " FROM tasks_app_agenttask WHERE id = %s",
        [task_id],
    ).fetchone()
    status, reason, steps_completed, resume_count, lease_epoch, checkpoints, events = task
    if status != "completed" or steps_completed != n:
        raise RuntimeError(f"Horizon task {task_id} ended {status} after {steps_completed}/{n} steps: {reason}")
    first, last = conn.execute(
        "SELECT min(created_at), max(created_at) FROM tasks_app_event WHERE task_id = %s", [task_id]
    ).fetchone()
    return Run(
        kind="horizon",
        n=n,
        units=int(checkpoints),  # one checkpoint per committed tick
        db_ms=(last - first).total_seconds() * 1000,
        wall_ms=wall_ms,
        notes={
            "ticks": int(checkpoints),
            "claims": int(lease_epoch),
            "events": int(events),
            "resumes": int(resume_count),
            "timing": "Event.created_at of task.created (set just before the creating commit and enqueue) to task.completed",
        },
        **figures,
    )


def run_baseline(conn: psycopg.Connection, n: int, pattern: str, *, log: Path) -> Run:
    from celery import chain

    from benchmarks.baseline_tasks import INSERT, insert_one, insert_then_next

    tables = (bench_db.BASELINE_TABLE,)
    sizes, lsn = start_measuring(conn, tables)
    run = uuid.uuid4().hex[:12]
    sessions = bench_db.sessions_opened(conn)
    started = time.perf_counter()
    # Row 0 is the start mark: its clock_timestamp() is the moment just before the first enqueue,
    # as task.created is for Horizon.
    conn.execute(INSERT, [run, 0])
    if pattern == "chain":
        chain(*(insert_one.si(run, i) for i in range(1, n + 1))).apply_async()
    else:
        insert_then_next.delay(run, 1, n)
    enqueue_ms = (time.perf_counter() - started) * 1000

    def finished() -> bool:
        return conn.execute("SELECT count(*) FROM bench_baseline WHERE run = %s", [run]).fetchone()[0] >= n + 1

    wait_for(finished, timeout=60 + n * 0.5, what=f"baseline {pattern} {run} ({n} tasks)", log=log)
    wall_ms = (time.perf_counter() - started) * 1000
    figures = measure_bytes(conn, tables, sizes, lsn)
    figures["sessions"] = settled_sessions(conn) - sessions
    first, last = conn.execute("SELECT min(created_at), max(created_at) FROM bench_baseline WHERE run = %s", [run]).fetchone()
    return Run(
        kind=pattern,
        n=n,
        units=n,
        db_ms=(last - first).total_seconds() * 1000,
        wall_ms=wall_ms,
        notes={"enqueue_ms": round(enqueue_ms, 2), "timing": "clock_timestamp() of the start-mark row to the last row"},
        **figures,
    )


# --- the workers -----------------------------------------------------------------------------


def write_scenario(directory: Path, n: int) -> Path:
    path = directory / f"noop_{n}.json"
    scenario = {
        "name": f"bench-noop-{n}",
        "plan": [{"title": f"Step {i}", "instructions": ""} for i in range(n)],
        "default_step": [{"final": "ok"}],
    }
    path.write_text(json.dumps(scenario))
    return path


def start_worker(n: int, *, scenario: Path, database_url: str, broker_url: str, log_dir: Path) -> CeleryWorker:
    env = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url, "HORIZON_SCENARIO": str(scenario)}
    worker = CeleryWorker(
        env=env,
        name=f"bench-n{n}",
        concurrency=1,
        log_dir=log_dir,
        extra_args=("--include", "benchmarks.baseline_tasks"),
    )
    return worker.start(ready_timeout=60)


def warm_up(conn: psycopg.Connection, *, log: Path) -> None:
    """One short baseline run: the pool child imports, connects to Redis; this process's producer connects."""
    run_baseline(conn, 5, "next", log=log)


# --- reporting -------------------------------------------------------------------------------


def machine_info(conn: psycopg.Connection) -> dict[str, object]:
    import celery
    import django
    import redis
    from django.conf import settings

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    # The code measured is the working tree: name the tracked files that differ from the commit.
    dirty = git("diff", "--name-only", "HEAD").split()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": bench_db.server_version(conn),
        "redis": broker.info("server").get("redis_version"),
        "django": django.get_version(),
        "celery": celery.__version__,
        "git_commit": commit,
        "git_uncommitted": dirty,
        "pg_settings": {
            name: bench_db.setting(conn, name)
            for name in ("synchronous_commit", "fsync", "full_page_writes", "wal_level", "shared_buffers")
        },
        "worker": "1 x celery worker --pool=prefork --concurrency=1 (prefetch 1, acks_late, loglevel INFO, DEBUG off)",
    }


def worker_db_connections() -> str:
    """How the workers treat their database connection. They inherit this process's environment, so
    the settings read here are theirs."""
    from django.conf import settings

    reuse_max = settings.CELERY_DB_REUSE_MAX
    database = settings.DATABASES["default"]
    max_age, health_checks = database.get("CONN_MAX_AGE", 0), database.get("CONN_HEALTH_CHECKS", False)
    knobs = f"CELERY_DB_REUSE_MAX={reuse_max}, CONN_MAX_AGE={max_age}, CONN_HEALTH_CHECKS={health_checks}"
    if not reuse_max or max_age == 0:
        return f"closed around every task ({knobs})"
    return (
        f"kept across tasks ({knobs}): Celery's Django fixup closes them only every {reuse_max} tasks, and"
        " close_old_connections on task_prerun/task_postrun closes a broken or expired one around each task"
    )


def fmt_bytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[Run]) -> dict:
    """Medians over the runs of one kind and N: time per Celery message and per step, bytes per step."""
    n = runs[0].n
    return {
        "runs": len(runs),
        "ms_per_unit": statistics.median(r.ms_per_unit for r in runs),
        "ms_per_step": statistics.median(r.ms_per_step for r in runs),
        "ms_per_unit_all_runs": [round(r.ms_per_unit, 3) for r in runs],
        "wall_ms": statistics.median(r.wall_ms for r in runs),
        "wal_db_bytes_per_step": median_of([None if r.wal_db_bytes is None else r.wal_db_bytes / n for r in runs]),
        "wal_db_fpi_bytes_per_step": median_of([None if r.wal_db_fpi_bytes is None else r.wal_db_fpi_bytes / n for r in runs]),
        "wal_cluster_bytes_per_step": statistics.median(r.wal_bytes / n for r in runs),
        "table_growth_bytes_per_step": statistics.median(r.table_growth_bytes / n for r in runs),
        "row_bytes_per_step": statistics.median(r.row_bytes / n for r in runs),
        "db_sessions_per_message": statistics.median(r.sessions / r.units for r in runs),
    }


def summary_rows(by_key: dict[tuple[str, int], list[Run]], ns: list[int], kinds: tuple[str, ...]) -> list[dict]:
    rows = []
    for n in ns:
        row: dict = {"n": n, **{k: summarise(by_key[(k, n)]) for k in kinds}}
        horizon = row["horizon"]
        for k in kinds[1:]:
            base = row[k]
            base["ratio_tick_vs_task"] = horizon["ms_per_unit"] / base["ms_per_unit"]
            base["ratio_step_vs_task"] = horizon["ms_per_step"] / base["ms_per_unit"]
        rows.append(row)
    return rows


def marginal_rows(rows: list[dict], kinds: tuple[str, ...]) -> list[dict]:
    out = []
    for a, b in zip(rows, rows[1:], strict=False):
        dn = b["n"] - a["n"]
        for k in kinds:
            wal_a, wal_b = a[k]["wal_db_bytes_per_step"], b[k]["wal_db_bytes_per_step"]
            out.append(
                {
                    "from_n": a["n"],
                    "to_n": b["n"],
                    "kind": k,
                    "ms": (b[k]["ms_per_step"] * b["n"] - a[k]["ms_per_step"] * a["n"]) / dn,
                    "wal_db_bytes": None if wal_a is None or wal_b is None else (wal_b * b["n"] - wal_a * a["n"]) / dn,
                    "table_bytes": (b[k]["table_growth_bytes_per_step"] * b["n"] - a[k]["table_growth_bytes_per_step"] * a["n"])
                    / dn,
                }
            )
    return out


def table(header: list[str], lines: list[list[str]], *, width: int = 12) -> None:
    """Right-aligned columns; the first column (N or a name) is as wide as its widest cell."""
    widths = [max([len(h)] + [len(cells[i]) for cells in lines] + ([width] if i else [])) for i, h in enumerate(header)]
    align = [str.ljust if i == 0 and header[0] != "N" else str.rjust for i in range(len(header))]
    print("  " + " | ".join(a(h, w) for a, h, w in zip(align, header, widths, strict=True)))
    print("  " + "-+-".join("-" * w for w in widths))
    for cells in lines:
        print("  " + " | ".join(a(c, w) for a, c, w in zip(align, cells, widths, strict=True)))


def print_report(rows: list[dict], by_key: dict[tuple[str, int], list[Run]], kinds: tuple[str, ...]) -> None:
    baselines = kinds[1:]
    print()
    print("TIME  (median of the runs; database timestamps, first to last row written by the run)")
    print("  Horizon ms/tick = total / (N+1) ticks (1 plan tick + N step ticks); ms/step = total / N.")
    print("  Baseline ms/task = total / N Celery tasks, each one INSERT + COMMIT through Django's connection:")
    print("    next  = each task enqueues the next after its commit (the message pattern of Horizon's ticks)")
    if "chain" in baselines:
        print("    chain = one celery.chain of N signatures (each message carries the rest of the chain)")
    print("  ratio = Horizon ms/tick / baseline ms/task: the cost of one Celery message each")
    header = ["N", "Horizon ms/tick", "Horizon ms/step"]
    for k in baselines:
        header += [f"{k} ms/task", f"ratio vs {k}"]
    lines = []
    for row in rows:
        h = row["horizon"]
        cells = [str(row["n"]), f"{h['ms_per_unit']:.2f}", f"{h['ms_per_step']:.2f}"]
        for k in baselines:
            cells += [f"{row[k]['ms_per_unit']:.2f}", f"{row[k]['ratio_tick_vs_task']:.2f}x"]
        lines.append(cells)
    table(header, lines, width=15)
    sessions = ", ".join(f"{k} {rows[-1][k]['db_sessions_per_message']:.2f}" for k in kinds)
    print(f"  PostgreSQL connections opened per Celery message at N={rows[-1]['n']} (pg_stat_database.sessions): {sessions}")

    print()
    print("BYTES PER STEP  (median of the runs; divided by N)")
    print("  WAL db      = WAL records of the benchmark database only (pg_walinspect: records touching its blocks,")
    print("                plus the commit records of those transactions); FPI = of which full-page images")
    print("  WAL cluster = pg_wal_lsn_diff around the run. WAL is cluster-wide: the worker is the only writer to the")
    print("                benchmark database, but anything else on the cluster meanwhile (other databases, other test")
    print("                runs, autovacuum) is counted too. A CHECKPOINT before each run makes full-page images comparable.")
    print("  table       = growth of sum(pg_total_relation_size) of the run's tables (heap + TOAST + indexes; 8 KiB pages:")
    print("                at small N the first page of every relation dominates; see the marginal figures below)")
    print("  rows        = sum(pg_column_size(row)) of the live rows after the run: what the run logically kept")
    lines = []
    for row in rows:
        for k in kinds:
            r = row[k]
            lines.append(
                [
                    str(row["n"]),
                    k,
                    fmt_bytes(r["wal_db_bytes_per_step"]),
                    fmt_bytes(r["wal_db_fpi_bytes_per_step"]),
                    fmt_bytes(r["wal_cluster_bytes_per_step"]),
                    fmt_bytes(r["table_growth_bytes_per_step"]),
                    fmt_bytes(r["row_bytes_per_step"]),
                ]
            )
    table(["N", "kind", "WAL db", "of which FPI", "WAL cluster", "table", "rows"], lines, width=11)

    if len(rows) > 1:
        print()
        print("MARGINAL COST PER STEP between consecutive N: (total at the larger N - total at the smaller) / (N difference).")
        print("  This takes out the fixed costs (the plan tick, the first 8 KiB page of every relation) that dominate small N.")
        lines = []
        for m in marginal_rows(rows, kinds):
            lines.append(
                [
                    f"{m['from_n']}->{m['to_n']}",
                    m["kind"],
                    f"{m['ms']:.2f}",
                    fmt_bytes(m["wal_db_bytes"]),
                    fmt_bytes(m["table_bytes"]),
                ]
            )
        table(["N", "kind", "ms", "WAL db", "table"], lines, width=10)

    largest = rows[-1]["n"]
    runs = by_key[("horizon", largest)]
    h = sorted(runs, key=lambda r: r.ms_per_unit)[len(runs) // 2]
    print()
    print(f"HORIZON AT N={largest} BY RELATION  (bytes per step; WAL charged to the relation of a record's first block)")
    wal = sorted(h.wal_by_relation.items(), key=lambda kv: -kv[1]["bytes"])
    lines = [
        [name, f"{v['records'] / largest:.1f}", fmt_bytes(v["bytes"] / largest), fmt_bytes(v["fpi_bytes"] / largest)]
        for name, v in wal
        if v["bytes"] / largest >= 1
    ]
    if lines:
        table(["relation", "WAL records", "WAL bytes", "of which FPI"], lines, width=12)
    print()
    lines = [
        [t, fmt_bytes(h.growth_by_table.get(t, 0) / largest), fmt_bytes(h.rows_by_table.get(t, 0) / largest)]
        for t in bench_db.HORIZON_TABLES
    ]
    table(["table", "table growth", "live rows"], lines, width=12)
    print(f"  ticks {h.notes['ticks']}, claims {h.notes['claims']}, events {h.notes['events']}, resumes {h.notes['resumes']}")

    print()
    print(f"TARGET (reported, not asserted): ratio at most {TARGET_RATIO}; per-step time and bytes flat as N grows.")
    ref = "next" if "next" in baselines else baselines[0]
    for row in rows:
        ratio = row[ref]["ratio_tick_vs_task"]
        print(f"  N={row['n']}: ratio vs {ref} {ratio:.2f}x -> {'meets' if ratio <= TARGET_RATIO else 'misses'} the target")
    first, last = rows[0], rows[-1]
    if first is not last:
        for label, key in (
            ("ms/tick", "ms_per_unit"),
            ("WAL db B/step", "wal_db_bytes_per_step"),
            ("table B/step", "table_growth_bytes_per_step"),
            ("rows B/step", "row_bytes_per_step"),
        ):
            a, b = first["horizon"][key], last["horizon"][key]
            if a and b is not None:
                print(f"  Horizon {label}: N={first['n']} {a:,.2f} -> N={last['n']} {b:,.2f} ({b / a:.2f}x)")


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ns = sorted(set(args.n))
    kinds = tuple(k for k in KINDS if not (args.skip_chain and k == "chain"))
    created = bench_db.ensure_database(args.database_url)
    print(f"database {args.database_url} ({'created' if created else 'exists'}); migrating ...", flush=True)
    bench_db.migrate(args.database_url)
    global WALINSPECT
    with bench_db.connect(args.database_url) as conn:
        WALINSPECT = bench_db.enable_walinspect(conn)
    if not WALINSPECT:
        print("pg_walinspect is not available: only the cluster-wide WAL figure is reported")
    configure_django(args.database_url, args.broker_url)

    import redis

    redis.Redis.from_url(args.broker_url).flushdb()  # this benchmark's own db number: stale messages of an aborted run
    out_dir = args.json_out.parent
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("worker-bench-*.log"):
        old.unlink()

    by_key: dict[tuple[str, int], list[Run]] = {(k, n): [] for k in kinds for n in ns}
    started = time.monotonic()
    with bench_db.connect(args.database_url) as conn, tempfile.TemporaryDirectory(prefix="horizon-bench-") as tmp:
        info = machine_info(conn)
        info["worker_db_connections"] = worker_db_connections()
        print(f"{info['cpu_count']} CPUs, Python {info['python']}, {info['postgresql'].split(' on ')[0]}, Redis {info['redis']}")
        print(f"worker: {info['worker']}")
        print(f"DB connections: {info['worker_db_connections']}")
        changed = f" + uncommitted changes to {', '.join(info['git_uncommitted'])}" if info["git_uncommitted"] else ""
        print(f"code: commit {info['git_commit']}{changed}")
        for n in ns:
            repeat = args.repeat or (3 if n <= 100 else 1)
            scenario = write_scenario(Path(tmp), n)
            worker = start_worker(
                n,
                scenario=scenario,
                database_url=args.database_url,
                broker_url=args.broker_url,
                log_dir=log_dir,
            )
            try:
                warm_up(conn, log=worker.log_path)
                for r in range(repeat):
                    for kind in kinds:
                        if kind == "horizon":
                            run = run_horizon(conn, n, log=worker.log_path)
                        else:
                            run = run_baseline(conn, n, kind, log=worker.log_path)
                        by_key[(kind, n)].append(run)
                        wal = fmt_bytes(run.wal_db_bytes / n if run.wal_db_bytes is not None else None)
                        print(
                            f"  N={n:<5} run {r + 1}/{repeat} {kind:<8} {run.ms_per_unit:7.2f} ms/message"
                            f"  wall {run.wall_ms / 1000:6.2f}s  WAL db {wal:>7} B/step",
                            flush=True,
                        )
            finally:
                worker.stop()

        rows = summary_rows(by_key, ns, kinds)
        print_report(rows, by_key, kinds)
        elapsed = time.monotonic() - started
        print(f"\n{elapsed:.0f}s in all; worker logs in {log_dir}")

        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "benchmark": "step_overhead",
            "machine": info,
            "parameters": {
                "n": ns,
                "repeat": args.repeat or "3 for N <= 100, else 1",
                "kinds": list(kinds),
            },
            "definitions": {
                "horizon_ms_per_tick": "DB time of the run / (N+1) ticks",
                "horizon_ms_per_step": "DB time of the run / N",
                "baseline_ms_per_task": "DB time of the run / N tasks (one INSERT + COMMIT each)",
                "ratio_tick_vs_<baseline>": "horizon_ms_per_tick / baseline_ms_per_task",
                "wal_bytes": "pg_wal_lsn_diff around the run; cluster-wide",
                "table_growth_bytes": "growth of sum(pg_total_relation_size) of the run's tables",
                "row_bytes": "sum(pg_column_size(row)) of the live rows after the run",
            },
            "target": {"ratio_at_most": TARGET_RATIO, "flat_per_step": True, "asserted": False},
            "summary": rows,
            "marginal_per_step": marginal_rows(rows, kinds),
            "runs": [{**asdict(r), "ms_per_unit": r.ms_per_unit} for runs in by_key.values() for r in runs],
            "elapsed_s": round(elapsed, 1),
        }
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"results written to {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
