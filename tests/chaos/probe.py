"""Reads of the private database for the driver and the checks: plain psycopg, reconnecting after a restart."""

from __future__ import annotations

import time
from datetime import datetime

import psycopg

from tasks_app.models import AgentTask, Event

TASKS = AgentTask._meta.db_table
EVENTS = Event._meta.db_table
TERMINAL = ("completed", "failed", "cancelled")
# Events that no tick wrote: the sweeper's task.stalled, an operator's cancel, a task's creation.
NOT_A_TICK = ("sweeper", "operator", "")


class Probe:
    def __init__(self, connect) -> None:  # type: ignore[no-untyped-def]
        self._connect = connect
        self._conn: psycopg.Connection | None = None

    def query(self, sql: str, params: object = None, *, retry_for: float = 30.0) -> list[tuple]:
        """Run a read; a connection cut by a PostgreSQL restart is opened again, for up to `retry_for` seconds."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect(autocommit=True)
                return list(self._conn.execute(sql, params).fetchall())
            except psycopg.OperationalError:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def statuses(self, task_ids: list[str]) -> dict[str, str]:
        return dict(self.query(f"SELECT id::text, status FROM {TASKS} WHERE id = ANY(%s::uuid[])", [task_ids]))

    def positions(self, task_ids: list[str]) -> dict[str, int]:
        """Each unfinished goal's place in its log (last_event_seq)."""
        rows = self.query(
            f"SELECT id::text, last_event_seq FROM {TASKS} WHERE id = ANY(%s::uuid[]) AND status <> ALL(%s)",
            [task_ids, list(TERMINAL)],
        )
        return dict(rows)

    def held_by(self, pids: set[int], task_ids: list[str]) -> dict[str, int]:
        """The goals whose live lease belongs to one of `pids` (lease_owner is host:pid:nonce), with their log position."""
        rows = self.query(
            f"SELECT id::text, lease_owner, last_event_seq FROM {TASKS} "
            "WHERE id = ANY(%s::uuid[]) AND lease_owner IS NOT NULL AND lease_expires_at > now()",
            [task_ids],
        )
        return {task_id: seq for task_id, owner, seq in rows if int(owner.split(":")[1]) in pids}

    def moved_at(self, positions: dict[str, int]) -> dict[str, datetime | None]:
        """For each goal, when a tick first committed an event past the given log position (None: never)."""
        if not positions:
            return {}
        rows = self.query(
            f"SELECT e.task_id::text, min(e.created_at) FROM {EVENTS} e "
            "JOIN unnest(%s::uuid[], %s::bigint[]) AS p(task_id, seq) ON e.task_id = p.task_id AND e.seq > p.seq "
            "WHERE e.worker <> ALL(%s) GROUP BY e.task_id",
            [list(positions), list(positions.values()), list(NOT_A_TICK)],
        )
        found = dict(rows)
        return {task_id: found.get(task_id) for task_id in positions}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
