"""PostgresStore: DjangoStore with PostgreSQL's single statements for the claim, the commit and the
journal writes (tasks_app/store/sql.py), prepared once per connection (prepared.py).

The claim also reads the latest checkpoint, the step its cursor points at and the events after it:
three round trips become one on every tick. The commit is one statement of CTEs instead of six
round trips or more; see docs/architecture.md, "Two statements per tick".
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from agents.status import StepStatus
from agents.store import CommitResult
from agents.types import (
    JSON,
    EventRecord,
    JournalEntry,
    Lease,
    Snapshot,
    StepRecord,
    TaskRecord,
    TickCommit,
)
from tasks_app.models import AgentTask, Checkpoint, Step
from tasks_app.services.webhooks import NOTIFY_STATUSES, task_status_changed
from tasks_app.store.django import DjangoStore
from tasks_app.store.prepared import async_commit, fetch_first_statement, prepared_cursor
from tasks_app.store.records import CHECKPOINTS, EVENTS, STEPS, TASKS
from tasks_app.store.sql import (
    CLAIM_TASK_COLUMNS,
    PRELOAD_NAMES,
    PRELOAD_WITH_ASYNC_COMMIT,
    PRELOAD_WITHOUT_ASYNC_COMMIT,
    STEP_COLUMNS,
    STEP_JSON_COLUMNS,
    TASK_JSON_COLUMNS,
    CommitShape,
    commit_sql,
)


def _loads(text: str | None) -> JSON:
    return json.loads(text) if text is not None else None


def _claimed_record(row: dict[str, Any]) -> TaskRecord:
    """The TaskRecord of the claim's row (a plain cursor's row, its JSON columns as text)."""
    values = {c: row[c] for c in CLAIM_TASK_COLUMNS if c != "taken_over_from"}
    return TASKS.from_values({**values, **{c: _loads(values[c]) for c in TASK_JSON_COLUMNS}})


def _preloaded_step(row: dict[str, Any]) -> StepRecord | None:
    if row["_st_index"] is None:
        return None
    values = {c: row[f"_st_{c}"] for c in STEP_COLUMNS}
    return STEPS.from_values({**values, **{c: _loads(values[c]) for c in STEP_JSON_COLUMNS}, "transcript": None})


def _preloaded_snapshot(task: TaskRecord, row: dict[str, Any]) -> Snapshot | None:
    """The snapshot the claim read, or None when more events follow the checkpoint than it reads
    (load reads them)."""
    checkpoint = None
    if row["_cp_seq"] is not None:
        checkpoint = CHECKPOINTS.from_values(
            {"seq": row["_cp_seq"], "event_seq": row["_cp_event_seq"], "state": _loads(row["_cp_state"])}
        )
    events = tuple(
        EVENTS.from_values({**e, "created_at": datetime.fromisoformat(e["created_at"])})
        for e in json.loads(row["_events"] or "[]")
    )
    if (checkpoint.event_seq if checkpoint else 0) + len(events) != task.last_event_seq:
        return None
    return Snapshot(task=task, checkpoint=checkpoint, events=events, next_step=_preloaded_step(row))


def _json(model: Any, field: str, value: object, conn: BaseDatabaseWrapper) -> object:
    return model._meta.get_field(field).get_db_prep_save(value, conn)


def _step_params(commit: TickCommit, conn: BaseDatabaseWrapper, task_id: str) -> list[Any]:
    params: list[Any] = []
    if commit.truncate_steps_from is not None:
        params.append(commit.truncate_steps_from + len(commit.new_steps))
    if commit.new_steps:
        new = [
            {
                "idx": s.index,
                "title": s.title,
                "instructions": s.instructions,
                "depends_on": list(s.depends_on),
                "approval": s.needs_approval,
                "minutes": s.expected_minutes,
            }
            for s in commit.new_steps
        ]
        params += [commit.plan_version, StepStatus.PENDING, conn.ops.adapt_json_value(new, None)]
    if (up := commit.step_update) is not None:
        params += [up.status, up.attempts, _json(Step, "result", up.result, conn), up.error, up.started_at, up.finished_at]
        params += [_json(Step, "transcript", list(up.transcript), conn), task_id, up.index]
    return params


def commit_statement(
    conn: BaseDatabaseWrapper, lease: Lease, commit: TickCommit, fields: dict[str, Any], now: datetime, events: list[EventRecord]
) -> tuple[str, list[Any]]:
    """commit_sql's text for this commit's shape and its parameters, in its placeholders' order."""
    shape = CommitShape(
        task_fields=tuple((name, value is None) for name, value in fields.items()),
        events=bool(events),
        truncate=commit.truncate_steps_from is not None,
        new_steps=bool(commit.new_steps),
        step_update=commit.step_update is not None,
        journal=bool(commit.journal),
    )
    params = [_json(AgentTask, n, v, conn) if n == "result" else v for n, v in fields.items() if v is not None]
    params += [lease.task_id, lease.epoch, lease.owner, commit.base_event_seq, commit.base_checkpoint_seq]
    rows = conn.ops.adapt_json_value
    if events:
        names = ("seq", "type", "schema_version", "payload", "prev_hash", "hash")
        params += [lease.owner, now, rows([{f: getattr(e, f) for f in names} for e in events], None)]
    params += _step_params(commit, conn, lease.task_id)
    if commit.journal:
        answers = [
            {"digest": e.request_digest, "key": e.key, "kind": e.kind, "name": e.name, "status": e.status, "result": e.result}
            for e in commit.journal
        ]
        params += [now, rows(answers, None)]
    params += [commit.base_checkpoint_seq + 1, commit.base_event_seq + len(commit.events)]
    params += [_json(Checkpoint, "state", commit.checkpoint_state, conn), now]
    return commit_sql(shape), params


class PostgresStore(DjangoStore):
    def _claimed(self, task_id: str, owner: str, params: list[Any]) -> Lease | None:
        """The claim with the task's latest checkpoint, its pending step and its recent events
        preloaded, in one prepared statement."""
        conn = connections[self.db]
        sql = PRELOAD_WITH_ASYNC_COMMIT if async_commit(conn) else PRELOAD_WITHOUT_ASYNC_COMMIT
        found = fetch_first_statement(conn, sql, params)
        if found is None:
            return None
        # The async-commit column, when there is one, comes last and is not wanted.
        row = dict(zip(PRELOAD_NAMES, found[: len(PRELOAD_NAMES)], strict=True))
        record = _claimed_record(row)
        return Lease(
            task_id=task_id,
            owner=owner,
            epoch=record.lease_epoch,
            took_over_from=row["taken_over_from"],
            task=record,
            preload=_preloaded_snapshot(record, row),
        )

    def _write_commit(
        self, lease: Lease, commit: TickCommit, fields: dict[str, Any], events: list[EventRecord], now: datetime
    ) -> CommitResult:
        conn = connections[self.db]
        sql, params = commit_statement(conn, lease, commit, fields, now, events)
        # Only a commit that a webhook may have to report pays for a transaction around the statement.
        notify = commit.status in NOTIFY_STATUSES
        with transaction.atomic(using=self.db) if notify else nullcontext(), prepared_cursor(conn) as cursor:
            cursor.execute(sql, params)
            committed = cursor.fetchone()[0]
            if committed and notify:
                task_status_changed(self.db, lease.task_id, commit.status, fields["last_event_seq"])
        return CommitResult.COMMITTED if committed else self._why_not_committed(lease)

    def _journal_write(
        self, lease: Lease, entry: JournalEntry, *, only_if_absent: bool = False, started: datetime | None = None
    ) -> bool:
        """The fenced INSERT, prepared; a model's answer does not wait for its WAL flush (a crash
        costs one more model call), a tool's does: its `started` row precedes its effect."""
        conn = connections[self.db]
        also = async_commit(conn, where=True) if entry.kind == "llm" else ""
        with prepared_cursor(conn) as cursor:
            cursor.execute(
                self._journal_sql(only_if_absent=only_if_absent, also=also), self._journal_params(lease, entry, started)
            )
            return bool(cursor.rowcount > 0)
