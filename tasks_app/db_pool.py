"""Borrowing pooled connections: a tick holds a database connection only while a statement runs.

With Django's native psycopg pool (settings: OPTIONS["pool"], HORIZON_DB_POOL_MAX), a thread's
connection is checked out of its process's pool on first use and goes back when Django closes it.
Left to Django, a worker thread would keep it from its claim until its commit, through every model
and tool call in between: one connection per tick in flight, and a worker of 500 threads would need
500. So every store method that a tick calls gives the connection back when it returns, unless a
transaction is open (a transactional tool's writes, an atomic block of the caller): the next
statement borrows one again. A borrow from a warm pool is a lock and a deque pop, microseconds beside
the statement's round trip; the psycopg connection keeps its prepared statements across borrows
(tasks_app/store/prepared.py), so whichever thread gets it next reuses them.

Without a pool (HORIZON_DB_POOL_MAX=0, SQLite) nothing changes: connections stay with their thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

F = TypeVar("F", bound=Callable[..., Any])


def pooled(alias: str = "default") -> bool:
    return bool(connections[alias].settings_dict.get("OPTIONS", {}).get("pool"))


def give_back(alias: str = "default") -> None:
    """Return this thread's connection to the pool now, if it is pooled and no transaction needs it."""
    conn = connections[alias]
    if conn.connection is not None and not conn.in_atomic_block and pooled(alias):
        conn.close()


def borrows(method: F) -> F:
    """A store method that gives its connection back to the pool when it returns (or raises)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            give_back(self.db)

    return wrapper  # type: ignore[return-value]


def open_pools() -> int:
    """How many connections this process's pools hold now (checked out or idle); for tests and benchmarks."""
    total = 0
    for conn in connections.all(initialized_only=True):
        pool = getattr(conn, "pool", None)
        if pool is not None:
            total += pool.get_stats().get("pool_size", 0)
    return total
