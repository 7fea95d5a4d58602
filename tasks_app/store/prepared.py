"""Server-side prepared statements and asynchronous commits for PostgresStore's tick statements.

The claim and the commit are fixed texts (one per shape of commit): each worker connection prepares
them once, then sends only parameters (docs/architecture.md). Behind a pooler that hands a session's
statements to other clients (PgBouncer in transaction mode before 1.21), set
HORIZON_PG_PREPARED_STATEMENTS=0.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import InterfaceError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from tasks_app.conf import settings
from tasks_app.store.sql import ASYNC_COMMIT_COLUMN, ASYNC_COMMIT_CONDITION


def async_commit(conn: BaseDatabaseWrapper, *, where: bool = False) -> str:
    """SQL that lets the statement's own transaction commit without waiting for its WAL flush: a
    column for its SELECT list, or (`where`) a condition that always holds. Empty inside an atomic
    block, where it would change the commit of the whole block. Why it is safe: docs/architecture.md, "One WAL flush per tick"."""
    if conn.in_atomic_block:
        return ""
    return ASYNC_COMMIT_CONDITION if where else ASYNC_COMMIT_COLUMN


class _PreparingCursor(psycopg.Cursor[Any]):
    """A psycopg cursor that prepares every statement it runs (Django turns automatic preparing off)."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor(conn: BaseDatabaseWrapper) -> CursorWrapper:
    """Django's cursor wrapper (error translation, execute wrappers, query logging) around a cursor
    that prepares its statements on the server; Django's usual cursor when the switch is off."""
    if not settings.HORIZON_PG_PREPARED_STATEMENTS:
        return conn.cursor()
    # What conn.cursor() does, with our cursor class in place of the client-binding one.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        return conn._prepare_cursor(_PreparingCursor(conn.connection))  # type: ignore[attr-defined,no-any-return]


def fetch_first_statement(conn: BaseDatabaseWrapper, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """Run a tick's first statement (the claim) and return its row: the statement is its own
    connection health check, instead of CONN_HEALTH_CHECKS' `SELECT 1` round trip before it.
    Only if it fails on a connection that proves dead does it reconnect and run once more (a dead
    connection sent nothing, so the claim runs once either way)."""
    check_due = (
        conn.connection is not None
        and conn.health_check_enabled  # type: ignore[attr-defined]
        and not conn.health_check_done  # type: ignore[attr-defined]
        and not conn.in_atomic_block
    )
    if check_due:
        conn.health_check_done = True  # type: ignore[attr-defined]  # what the check would have concluded if the claim succeeds
    # A pooled connection is not checked when borrowed: one that died in the pool fails here, goes
    # back to be discarded, and the claim runs once more on another.
    check_due = check_due or (bool(conn.settings_dict["OPTIONS"].get("pool")) and not conn.in_atomic_block)
    try:
        with prepared_cursor(conn) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()  # type: ignore[no-any-return]
    except (OperationalError, InterfaceError):
        # No connection at all (the pool timed out, the server refused): the tick is retried with backoff.
        if not check_due or conn.connection is None or conn.is_usable():
            raise
    conn.close()
    with prepared_cursor(conn) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()  # type: ignore[no-any-return]
