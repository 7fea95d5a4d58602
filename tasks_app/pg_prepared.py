"""Server-side prepared statements for the statements every tick runs on PostgreSQL.

Django's psycopg backend binds parameters on the client: each statement reaches the server as new
text, which the server parses and plans again. For the claim (an UPDATE joined to the latest
checkpoint and the current step) and the commit (five data-modifying CTEs), parsing and planning
took longer than executing: about 0.6 ms and 0.3 ms of server time per statement, on every tick,
beside a fraction of that to run them. Their texts are fixed (one per shape of commit), so each
worker connection prepares them once and then sends only parameters.

The cursor is Django's own wrapper (error translation, execute wrappers, query logging) around a
psycopg server-binding cursor on the same connection, so the connection's adapters and its
transaction state are shared with the ORM. psycopg keeps up to `prepared_max` (100) statements per
connection and deallocates the least recently used.

Prepared statements live in a server session: behind a pooler that hands a session's statements
to other clients (PgBouncer in transaction mode before 1.21), set HORIZON_PG_PREPARED_STATEMENTS=0.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import InterfaceError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from tasks_app.conf import settings

ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"


def async_commit(conn: BaseDatabaseWrapper, *, where: bool = False) -> str:
    """SQL that lets the statement's own implicit transaction commit without waiting for its WAL
    flush: a column for its SELECT list, or (`where`) a condition for its WHERE that always holds.
    Empty inside an atomic block, where it would change the commit of the whole block.

    On PostgreSQL a tick makes two or three writes: the claim, maybe a model's answer in the
    journal, and the commit. Waiting for a WAL flush (fsync) at each was most of the harness's
    cost per step beside a plain INSERT + COMMIT. Only the tick's commit needs to wait: it flushes
    the WAL up to its own record, which includes the earlier ones. An asynchronous commit is
    visible to every other session at once, so fencing between live workers is unchanged; only a
    crash of the database server itself can undo one that was not flushed yet, and then:
    - a lost claim: the server restart broke the holder's connection, so its tick fails on its next
      statement; and a new claim that reuses the lost epoch number has another owner, which every
      fenced write also checks;
    - a lost model answer: the resumed step asks the model again (one more call, no side effect).
    The claim's attempt counter may then miss that attempt; the attempt cap still bounds retries.

    set_config(..., true) is local to the transaction, so the session's setting is untouched
    afterwards; being part of the statement, it works with prepared statements too (a second
    statement in the same query string would not).
    """
    if conn.vendor != "postgresql" or conn.in_atomic_block:
        return ""
    return f" AND {ASYNC_COMMIT} = 'off'" if where else f", {ASYNC_COMMIT} AS _async_commit"


class _PreparingCursor(psycopg.Cursor[Any]):
    """A psycopg cursor that prepares every statement it runs (Django turns automatic preparing off)."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor(conn: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor whose statements are prepared on the server, or Django's usual one when that is off
    or the database is not PostgreSQL. Either way the SQL uses %s placeholders."""
    if conn.vendor != "postgresql" or not settings.HORIZON_PG_PREPARED_STATEMENTS:
        return conn.cursor()
    # What conn.cursor() does, with our cursor class in place of the client-binding one.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        return conn._prepare_cursor(_PreparingCursor(conn.connection))  # type: ignore[attr-defined,no-any-return]


def fetch_first_statement(conn: BaseDatabaseWrapper, sql: str, params: list[object]) -> tuple[Any, ...] | None:
    """Run a tick's first statement (the claim) and return its row: the statement is its own
    connection health check.

    With CONN_HEALTH_CHECKS, Django sends `SELECT 1` on a kept connection before the first query of
    every Celery task (close_old_connections runs around each): a round trip per tick, to spare a
    tick that would fail on a connection that died since the last one (a restarted database).
    Here the claim goes first; only if it fails and the connection then proves dead does it
    reconnect and run the claim once more. A dead connection sent nothing, so the claim is run
    once either way.
    """
    check_due = (
        conn.connection is not None and conn.health_check_enabled and not conn.health_check_done and not conn.in_atomic_block
    )
    if check_due:
        conn.health_check_done = True  # what the check would have concluded if the claim succeeds
    # A pooled connection is not checked when it is borrowed (a round trip per statement): one that
    # died in the pool (a restarted server) fails here instead, goes back to be discarded, and the
    # claim runs once more on another.
    check_due = check_due or (bool(conn.settings_dict["OPTIONS"].get("pool")) and not conn.in_atomic_block)
    try:
        with prepared_cursor(conn) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()  # type: ignore[no-any-return]
    except (OperationalError, InterfaceError):
        # No connection at all (the pool timed out, the server refused): nothing to retry here; the
        # tick is retried with backoff.
        if not check_due or conn.connection is None or conn.is_usable():
            raise
    conn.close()
    with prepared_cursor(conn) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()  # type: ignore[no-any-return]
