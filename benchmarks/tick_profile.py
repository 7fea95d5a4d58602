"""Where a no-op tick's time goes: SQL statements, transactions and Python, in one process, on PostgreSQL.

    .venv/bin/python benchmarks/tick_profile.py [--n 50] [--close-connection] [--cprofile 30]

No Celery here: one process creates a task of N no-op steps and ticks it with the same runner a
worker builds, timing every statement (a Django execute wrapper: what CaptureQueriesContext sees,
but timed to the microsecond rather than rounded to the millisecond), every COMMIT and every
connect. Like a Celery worker with the project's settings (CELERY_DB_REUSE_MAX, and
close_old_connections on task_prerun/task_postrun in horizon_project/celery.py), it keeps its
connection across ticks and runs close_old_connections between them: a broken or expired
connection is closed, and CONN_HEALTH_CHECKS checks a kept one before a tick's first statement.
`--close-connection` closes it after each tick instead, for comparison: each tick then pays a new
connection on a backend with cold caches (what workers did before connections were reused). It
prints the statements of one step tick in order, counts per tick, the split between connect, SQL and
Python, wall and CPU time per Store call, the same for the baseline task body (one INSERT +
COMMIT), and a cProfile summary of a second task's step ticks. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bench_db  # noqa: E402 - needs the sys.path line above

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/horizon_bench"
TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="steps of the profiled task (default 50)")
    parser.add_argument("--cprofile", type=int, default=30, help="functions to list from cProfile (0: skip it)")
    parser.add_argument(
        "--sort", choices=("tottime", "cumulative"), default="tottime", help="order of the cProfile list (default: own time)"
    )
    parser.add_argument(
        "--close-connection",
        action="store_true",
        help="close the connection after each tick, for comparison (default: keep it across ticks, as a worker does)",
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    return parser.parse_args(argv)


def describe(sql: str) -> str:
    """A short label: verb and table, e.g. 'UPDATE tasks_app_agenttask' or 'SAVEPOINT'."""
    verb = sql.split(None, 1)[0].upper()
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return verb
    if verb in ("SET", "SHOW", "SELECT") and not TABLE.search(sql):
        return " ".join(sql.split())[:45]
    match = TABLE.search(sql)
    lock = " FOR UPDATE" if "FOR UPDATE" in sql.upper() else ""
    return f"{verb} {match.group(1) if match else '?'}{lock}"


class Recorder:
    """Every statement of Django's default connection with its time (perf_counter, unlike the log's
    millisecond rounding), plus COMMITs, connection opens and CONN_HEALTH_CHECKS checks (is_usable),
    which do not pass through execute."""

    def __init__(self, connection) -> None:  # type: ignore[no-untyped-def]
        self.connection = connection
        self.statements: list[tuple[str, float, bool]] = []  # label, seconds, inside a transaction block
        self.commits = 0
        self.connects = 0
        self.connect_s = 0.0
        self.commit_s = 0.0
        self.check_s = 0.0
        commit, connect, is_usable = connection.commit, connection.connect, connection.is_usable

        def timed_commit() -> None:
            started = time.perf_counter()
            commit()
            self.commits += 1
            self.commit_s += time.perf_counter() - started

        def timed_connect() -> None:
            started = time.perf_counter()
            connect()
            self.connects += 1
            self.connect_s += time.perf_counter() - started

        def timed_is_usable() -> bool:
            started = time.perf_counter()
            try:
                return is_usable()
            finally:
                self.check_s += time.perf_counter() - started

        connection.commit = timed_commit
        connection.connect = timed_connect
        connection.is_usable = timed_is_usable
        connection.execute_wrappers.append(self._execute)

    def _execute(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((describe(sql), time.perf_counter() - started, self.connection.in_atomic_block))

    def take(self) -> dict[str, object]:
        taken = {
            "statements": self.statements,
            "commits": self.commits,
            "commit_ms": self.commit_s * 1000,
            "connect_ms": self.connect_s * 1000,
            "check_ms": self.check_s * 1000,
        }
        self.statements, self.commits, self.connects, self.connect_s, self.commit_s, self.check_s = [], 0, 0, 0.0, 0.0, 0.0
        return taken


def group_of(filename: str, function: str) -> str:
    if (
        filename.endswith("psycopg/connection.py")
        and function == "wait"
        or function == "<method 'poll' of 'select.epoll' objects>"
    ):
        return "psycopg: waiting for the server (round trips)"
    for marker, name in (
        ("/psycopg/", "psycopg: the rest"),
        ("/django/db/models/", "django ORM: building queries and rows"),
        ("/django/db/backends/", "django db backend"),
        ("/django/", "django: the rest"),
        ("/agents/", "agents/ (the harness logic)"),
        ("/tasks_app/", "tasks_app/ (the ORM store)"),
        ("json", "json"),
    ):
        if marker in filename:
            return name
    return "other (stdlib, builtins)"


def round_trip_ms(connection) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The floor under every statement and commit: a bare SELECT 1, and an empty transaction's COMMIT."""
    from django.db import transaction

    selects, commits = [], []
    for _ in range(30):
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute("SELECT 1")
            selects.append(time.perf_counter() - started)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT txid_current()")  # gets an xid: the COMMIT writes and flushes WAL
            started = time.perf_counter()
        commits.append(time.perf_counter() - started)
    return statistics.median(selects) * 1000, statistics.median(commits) * 1000


STORE_CALLS = ("claim", "load", "step", "journal_get", "journal_complete", "commit")


class CallTimer:
    """Wall and CPU time per Store method of one runner (instance attributes shadow the methods)."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self.wall: Counter[str] = Counter()
        self.cpu: Counter[str] = Counter()
        for name in STORE_CALLS:
            setattr(store, name, self._timed(name, getattr(store, name)))

    def _timed(self, name, method):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - started
                self.cpu[name] += time.process_time() - cpu

        return timed


def new_task(runner, n: int) -> str:  # type: ignore[no-untyped-def]
    return runner.create(f"profile: {n} no-op steps", max_steps=n)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_db.prepare(args.database_url)
    os.environ.update(
        {"DJANGO_SETTINGS_MODULE": "horizon_project.settings", "DATABASE_URL": args.database_url, "HORIZON_DISPATCH": "inprocess"}
    )
    import django

    django.setup()
    from django.db import close_old_connections, connection, transaction

    from agents.scripted import ScriptedModel, validate_scenario
    from benchmarks.baseline_tasks import INSERT
    from tasks_app.runtime import build_runner

    with bench_db.connect(args.database_url) as admin:
        bench_db.truncate_all(admin)
    n = args.n
    scenario = {
        "name": f"profile-noop-{n}",
        "plan": [{"title": f"Step {i}", "instructions": ""} for i in range(n)],
        "default_step": [{"final": "ok"}],
    }
    runner = build_runner(model=ScriptedModel(validate_scenario(scenario)))
    recorder = Recorder(connection)
    timer = CallTimer(runner.store)

    def between_ticks() -> None:
        if args.close_connection:
            # What Celery's Django fixup (Celery 5.7) does around every task when CELERY_DB_REUSE_MAX
            # is not set, whatever CONN_MAX_AGE says: a new connection for every tick.
            connection.close()
        else:
            # What horizon_project/celery.py runs around every task: keep the connection unless it is
            # broken or expired; with CONN_HEALTH_CHECKS the next tick's first statement checks it first.
            close_old_connections()

    # --- pass 1: every tick of one task, timed, with its statements ---
    task_id = new_task(runner, n)
    recorder.take()
    runner.tick(task_id)  # the plan tick, measured apart
    plan = {**recorder.take()}
    timer.wall.clear()
    timer.cpu.clear()
    ticks = []
    while True:
        between_ticks()
        started, cpu = time.perf_counter(), time.process_time()
        outcome = runner.tick(task_id)
        ticks.append(
            {
                "decision": outcome.decision,
                "ms": (time.perf_counter() - started) * 1000,
                "cpu_ms": (time.process_time() - cpu) * 1000,
                **recorder.take(),
            }
        )
        if not outcome.runnable:
            break

    step_ticks = ticks[:-1] or ticks  # the completing tick is a one-off
    sample = step_ticks[len(step_ticks) // 2]

    def med(key, rows=step_ticks) -> float:  # type: ignore[no-untyped-def]
        return statistics.median(key(t) for t in rows)

    print(f"task of {n} no-op steps: {len(ticks) + 1} ticks (the plan tick, then one tick per step)")
    kept = "kept between ticks, as a worker keeps it across tasks (close_old_connections between ticks)"
    closed = "closed after each tick (--close-connection), as workers did before connections were reused"
    print(f"connection: {closed if args.close_connection else kept}")
    print()
    print("ONE STEP TICK, statement by statement (ms, client side: round trip included; '|' = inside a transaction block)")
    for i, (label, seconds, in_block) in enumerate(sample["statements"], 1):
        print(f"  {i:2d}. {'|' if in_block else ' '} {label:<45} {seconds * 1000:6.3f}")
    print(f"      {sample['commits']} COMMIT(s){'':<36} {sample['commit_ms']:6.3f}")
    print()
    statements = med(lambda t: len(t["statements"]))
    sql_ms = med(lambda t: sum(s for _, s, _ in t["statements"]) * 1000)
    commit_ms = med(lambda t: t["commit_ms"])
    tick_ms = med(lambda t: t["ms"])
    connect_ms = med(lambda t: t["connect_ms"])
    check_ms = med(lambda t: t["check_ms"])
    commits = med(lambda t: t["commits"])
    kinds = Counter(label.split()[0] for label, _, _ in sample["statements"])
    autocommitted = sum(1 for _, _, in_block in sample["statements"] if not in_block)
    print(f"PER STEP TICK (median over {len(step_ticks)} step ticks)")
    print(f"  statements             {statements:.0f}  ({', '.join(f'{k} {v}' for k, v in kinds.most_common())})")
    print(
        f"  transactions           {commits + autocommitted:.0f}: {commits:.0f} blocks (BEGIN ... COMMIT) and"
        f" {autocommitted} statements that autocommit on their own"
    )
    print(
        f"  round trips            {statements + 2 * commits:.0f} (statements + a BEGIN and a COMMIT per block)"
        + (", plus the connect" if args.close_connection else ", plus a health check if one runs")
    )
    print(f"  tick wall time         {tick_ms:6.2f} ms")
    print(f"    connect              {connect_ms:6.2f} ms")
    print(f"    health check         {check_ms:6.2f} ms  (CONN_HEALTH_CHECKS' is_usable(); a tick's claim is its own check)")
    print(
        f"    statements           {sql_ms:6.2f} ms  (client side; includes the BEGIN psycopg sends before a block's first one)"
    )
    print(f"    COMMITs              {commit_ms:6.2f} ms")
    print(f"    Python, the rest     {tick_ms - sql_ms - commit_ms - connect_ms - check_ms:6.2f} ms")
    print(
        f"  CPU time of this process per tick {med(lambda t: t['cpu_ms']):6.2f} ms (Python, psycopg, the ORM; not the server's)"
    )
    print(f"  the plan tick: {len(plan['statements'])} statements; the last tick: {len(ticks[-1]['statements'])}")
    print()
    print(f"BY STORE CALL (mean per step tick over {len(ticks)} ticks; wall / CPU of this process)")
    for name in STORE_CALLS:
        wall, cpu = timer.wall[name] / len(ticks) * 1000, timer.cpu[name] / len(ticks) * 1000
        if name != "claim":
            note = ""
        elif args.close_connection:
            note = "  (its first statement opens the connection)"
        else:
            note = "  (also the connection's health check: store.prepared.fetch_first_statement)"
        print(f"  {name:<18} {wall:6.2f} / {cpu:6.2f} ms{note}")
    wall_all = sum(timer.wall.values()) / len(ticks) * 1000
    tick_mean = statistics.mean(t["ms"] for t in ticks)
    print(f"  {'outside the store':<18} {tick_mean - wall_all:6.2f} ms wall (deciding, the scripted model, the executor)")

    # --- the baseline task body, for comparison ---
    base = []
    for i in range(max(20, n)):
        between_ticks()
        started, cpu = time.perf_counter(), time.process_time()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(INSERT, ["profile", i])
        base.append(
            {"ms": (time.perf_counter() - started) * 1000, "cpu_ms": (time.process_time() - cpu) * 1000, **recorder.take()}
        )
    print()
    print("BASELINE TASK BODY (one INSERT + COMMIT in transaction.atomic), median:")
    print(
        f"  {med(lambda t: t['ms'], base):.2f} ms: connect {med(lambda t: t['connect_ms'], base):.2f},"
        f" health check {med(lambda t: t['check_ms'], base):.2f},"
        f" INSERT {med(lambda t: t['statements'][0][1] * 1000, base):.2f}, COMMIT {med(lambda t: t['commit_ms'], base):.2f};"
        f" CPU {med(lambda t: t['cpu_ms'], base):.2f}"
    )

    select_ms, commit_floor_ms = round_trip_ms(connection)
    print(f"FLOOR: SELECT 1 round trip {select_ms:.3f} ms; COMMIT of a transaction with an xid {commit_floor_ms:.3f} ms")

    # --- pass 2: a second task under cProfile (kept apart: the profiler inflates the timings above) ---
    if args.cprofile:
        task_id = new_task(runner, n)
        runner.tick(task_id)  # the plan tick, not profiled
        profile = cProfile.Profile()
        profiled = 0
        while True:
            between_ticks()
            profile.enable()
            outcome = runner.tick(task_id)
            profile.disable()
            profiled += 1
            if not outcome.runnable:
                break
        stats = pstats.Stats(profile)
        groups: Counter[str] = Counter()
        for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            groups[group_of(filename, function)] += own
        total = sum(groups.values())
        print()
        print(f"CPROFILE OF {profiled} STEP TICKS: own time by where it is spent (the profiler inflates Python time)")
        for name, own in groups.most_common():
            print(f"  {name:<52} {own / profiled * 1000:6.2f} ms/tick  {own / total:5.1%}")
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.cprofile)
        print()
        print(f"the top {args.cprofile} functions by {args.sort} time (for all {profiled} ticks):")
        print("\n".join(line for line in out.getvalue().splitlines()[3:] if line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
