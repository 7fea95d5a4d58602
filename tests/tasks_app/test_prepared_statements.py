"""On PostgreSQL the tick's statements are prepared once per connection (tasks_app/store/prepared.py):
later ticks send only parameters, the switch turns it off, and a migration that adds a column under
running workers does not break their prepared statements."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from django.test import override_settings

from agents.runner import Runner
from agents.scripted import ScriptedModel
from tasks_app.store import PRELOAD_EVENTS_MAX, PostgresStore
from tests.conftest import make_scenario
from tests.support.processes import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def prepared() -> dict[str, int]:
    """This session's prepared statements that a tick made, by what they write, with their runs so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        rows = cursor.fetchall()
    labels = {"taken_over_from = lease_owner": "claim", 'INSERT INTO "tasks_app_checkpoint"': "commit"}
    found: dict[str, int] = {}
    for statement, runs in rows:
        for marker, label in labels.items():
            if marker in statement:
                found[label] = found.get(label, 0) + runs
    return found


@pytest.fixture(autouse=True)
def _one_session(one_pooled_connection: None) -> None:
    """These tests count what one session prepared (tests/conftest.py one_pooled_connection)."""


def new_session() -> None:
    """The next statement opens a new server session: nothing prepared yet. With the connection pool
    (settings: HORIZON_DB_POOL_MAX) a closed connection goes back to the pool with its prepared
    statements (which is the point), so the pool itself is closed too."""
    connection.close()
    if connection.pool is not None:
        connection.close_pool()


def run_ticks(task_id: str, runner: Runner, n: int) -> None:
    for _ in range(n):
        assert runner.tick(task_id).committed


def test_the_claim_and_the_commit_are_prepared_once_and_reused_by_every_tick() -> None:
    new_session()
    runner = Runner(PostgresStore(), ScriptedModel(make_scenario(6)))
    task_id = runner.create("goal")
    run_ticks(task_id, runner, 3)  # the plan, then steps 0 and 1
    after_three = prepared()
    assert after_three.get("claim") == 3
    run_ticks(task_id, runner, 4)  # steps 2 to 5: the last one completes the task
    after_seven = prepared()
    assert after_seven["claim"] == 7  # the same statement, run again: no new one per tick
    # Commits come in a few shapes (a plan, a step, the last step): each is prepared once.
    assert after_seven["commit"] == 7
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] <= 5


@override_settings(HORIZON_PG_PREPARED_STATEMENTS=False)
def test_the_switch_turns_preparing_off() -> None:
    new_session()
    runner = Runner(PostgresStore(), ScriptedModel(make_scenario(2)))
    task_id = runner.create("goal")
    assert runner.run(task_id).status == "completed"
    assert prepared() == {}


def alter(sql: str) -> None:
    """DDL from another session, as a deploy's migration runs it (psycopg forgets its prepared
    statements when it sees DDL on its own connection, which would hide what this test checks)."""
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as other:
        other.execute(sql)


def test_a_column_added_under_a_running_worker_leaves_its_prepared_statements_working() -> None:
    """A deploy migrates before the workers restart: their prepared claim must survive a new column
    (it names its columns, so the server plans it again with the same result type)."""
    new_session()
    runner = Runner(PostgresStore(), ScriptedModel(make_scenario(3)))
    task_id = runner.create("goal")
    run_ticks(task_id, runner, 2)
    alter("ALTER TABLE tasks_app_agenttask ADD COLUMN added_by_a_deploy integer")
    alter("ALTER TABLE tasks_app_checkpoint ADD COLUMN added_by_a_deploy integer")
    try:
        assert runner.run(task_id).status == "completed"
        assert prepared()["claim"] == 4  # the statements prepared before the change, still in use
    finally:
        alter("ALTER TABLE tasks_app_agenttask DROP COLUMN added_by_a_deploy")
        alter("ALTER TABLE tasks_app_checkpoint DROP COLUMN added_by_a_deploy")


def test_every_tick_statement_stays_small_enough_for_psycopg_to_cache_its_conversion() -> None:
    """psycopg parses a query's placeholders again on every execute when it has more than 50
    parameters or 4 KB of text; the tick's statements stay under both (they once did not)."""
    from psycopg import _queries  # the limits live in a private module: this test pins them

    seen: list[tuple[str, int]] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    runner = Runner(PostgresStore(), ScriptedModel(make_scenario(3)))
    task_id = runner.create("goal")
    with connection.execute_wrapper(record):
        assert runner.run(task_id).status == "completed"  # a plan commit, step commits, the final one
    tick_statements = [(sql, n) for sql, n in seen if sql.startswith(("WITH t AS", "INSERT INTO"))]
    assert len(tick_statements) >= 8
    for sql, n in tick_statements:
        assert n <= _queries.MAX_CACHED_STATEMENT_PARAMS, (n, sql[:80])
        assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH, (len(sql), sql[:80])


def test_a_tick_sends_no_health_check_and_a_connection_that_died_costs_one_reconnect(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Between Celery tasks close_old_connections re-arms CONN_HEALTH_CHECKS; the claim is then the
    check itself: no SELECT 1 on a live connection, one reconnect after the database dropped it."""
    from django.db import close_old_connections

    checks: list[bool] = []
    real_is_usable = connection.is_usable

    def counted() -> bool:
        checks.append(real_is_usable())
        return checks[-1]

    monkeypatch.setattr(connection, "is_usable", counted)
    runner = Runner(PostgresStore(), ScriptedModel(make_scenario(3)))
    task_id = runner.create("goal")
    close_old_connections()
    assert runner.tick(task_id).committed  # the plan
    close_old_connections()
    assert runner.tick(task_id).committed
    assert checks == []  # no health check on a live connection

    def backend_pid() -> int:
        # With the pool, a tick gives its connection back: borrow the pool's one connection to look.
        connection.ensure_connection()
        pid = int(connection.connection.info.backend_pid)
        connection.close()
        return pid

    first_pid = backend_pid()
    alter(f"SELECT pg_terminate_backend({first_pid})")  # what a database restart does to a kept connection
    close_old_connections()
    assert runner.tick(task_id).committed  # one reconnect, and the tick ran
    assert checks == [False] and backend_pid() != first_pid
    assert runner.run(task_id).status == "completed"


@pytest.mark.parametrize("signals", [0, 3, PRELOAD_EVENTS_MAX + 5], ids=["none", "a few", "more than the claim reads"])
def test_the_claim_reads_the_events_after_the_checkpoint_as_load_would(signals: int) -> None:
    """The first tick (no checkpoint yet) and a tick after operator events: the claim's own read
    gives the snapshot a separate load gives; a tail too long for it is left to load."""
    from dataclasses import replace

    from agents.types import NewEvent, OperatorChange

    store = PostgresStore()
    runner = Runner(store, ScriptedModel(make_scenario(2)))
    task_id = runner.create("goal")
    for i in range(signals):
        store.operator_change(
            task_id,
            OperatorChange(
                event=NewEvent(type="task.resumed", payload={"by": f"operator {i}"}),
                from_statuses=frozenset({"pending", "running"}),
            ),
        )
    for first in (True, False):  # before the plan (no checkpoint), then after it (its checkpoint covers all)
        lease = store.claim(task_id, owner="w", lease_seconds=60)
        assert lease is not None
        read_apart = store.load(replace(lease, preload=None))
        if first and signals > PRELOAD_EVENTS_MAX:
            assert lease.preload is None
        else:
            assert lease.preload is not None and lease.preload.events == read_apart.events
            assert lease.preload.checkpoint == read_apart.checkpoint
        store.release(lease)
        assert runner.tick(task_id).committed


def test_no_tick_statement_reads_rows_it_then_discards_even_when_prepared_on_small_tables() -> None:
    """A prepared statement keeps the plan it got when it was prepared, here while every table is
    nearly empty (a new deployment): each of the tick's statements must still reach its rows
    through an index, on every key column, or its cost would grow with the table (or with the task)
    for as long as the connection lives."""
    new_session()
    connection.ensure_connection()
    plans: list[str] = []
    connection.connection.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute("SET auto_explain.log_min_duration = 0")
        cursor.execute("SET auto_explain.log_level = 'notice'")  # the plans come to this client
        cursor.execute("SET auto_explain.log_analyze = on")  # with the rows each node read and removed
    runner = Runner(PostgresStore(), ScriptedModel(make_scenario(12)))
    task_id = runner.create("goal")
    assert runner.run(task_id).status == "completed"  # 13 ticks: well past psycopg preparing, and the generic plans
    tick_plans = [p for p in plans if "taken_over_from = lease_owner" in p or 'INSERT INTO "tasks_app_checkpoint"' in p]
    assert len(tick_plans) >= 26
    lines = [line.strip() for p in tick_plans for line in p.splitlines()]
    assert [line for line in lines if "Seq Scan on tasks_app_" in line] == []
    # The claim's step once came through an index on the task id alone, then a filter that
    # dropped every other step of the task: 11 rows here at the last tick, 999 at step 1000.
    removed = [int(line.rsplit(":", 1)[1]) for line in lines if line.startswith("Rows Removed by")]
    assert max(removed, default=0) <= 1, [line for line in lines if line.startswith("Rows Removed by")]
