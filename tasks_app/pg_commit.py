"""A tick's commit as one PostgreSQL statement.

The ORM path (tasks_app.store.DjangoStore.commit) needs six round trips: BEGIN, the fenced UPDATE
of the task, the event INSERT, the step UPDATE or INSERT, the checkpoint INSERT, COMMIT. On
PostgreSQL all of it fits in one statement of data-modifying CTEs, which runs atomically: every
CTE reads the fenced UPDATE's output, so when the fence matches no row nothing else is written
either, and a constraint violation anywhere undoes the whole statement. Profiling showed the
client-side cost of each ORM statement (query building and adaptation) dominating a no-op tick;
this statement is built from fixed text.
"""

from __future__ import annotations

from datetime import datetime

from django.db.backends.base.base import BaseDatabaseWrapper

from agents.status import StepStatus
from agents.types import EventRecord, Lease, TickCommit
from tasks_app.models import AgentTask, Checkpoint, Event, Step


def _columns(model: type, names: list[str], conn: BaseDatabaseWrapper) -> str:
    return ", ".join(conn.ops.quote_name(model._meta.get_field(n).column) for n in names)  # type: ignore[attr-defined]


def _json(model: type, field: str, value: object, conn: BaseDatabaseWrapper) -> object:
    return model._meta.get_field(field).get_db_prep_save(value, conn)  # type: ignore[attr-defined]


def commit_statement(
    conn: BaseDatabaseWrapper,
    lease: Lease,
    commit: TickCommit,
    task_fields: dict[str, object],
    now: datetime,
    events: list[EventRecord],
) -> tuple[str, list[object]]:
    """The SQL and parameters; the statement returns one row (1 committed, 0 fenced or conflict).

    `events` are the commit's events as stored, their hash chain computed beforehand (the chain
    continues from the task's last_event_hash, which the fenced UPDATE's last_event_seq pins)."""
    q = conn.ops.quote_name
    params: list[object] = []

    sets = []
    for name, value in task_fields.items():
        sets.append(f"{q(AgentTask._meta.get_field(name).column)} = %s")
        params.append(_json(AgentTask, name, value, conn) if name == "result" else value)
    params += [lease.task_id, lease.epoch, lease.owner, commit.base_event_seq, commit.base_checkpoint_seq]
    ctes = [
        f"t AS (UPDATE {q(AgentTask._meta.db_table)} SET {', '.join(sets)} "
        "WHERE id = %s AND lease_epoch = %s AND lease_owner = %s AND last_event_seq = %s AND checkpoint_seq = %s "
        "RETURNING id)"
    ]

    if events:
        names = ["task", "seq", "type", "schema_version", "payload", "prev_hash", "hash", "worker", "created_at"]
        ctes.append(
            f"e AS (INSERT INTO {q(Event._meta.db_table)} ({_columns(Event, names, conn)}) "
            "SELECT t.id, v.seq, v.type, v.schema_version, v.payload, v.prev_hash, v.hash, %s, %s FROM t, "
            "unnest(%s::bigint[], %s::text[], %s::smallint[], %s::jsonb[], %s::text[], %s::text[]) "
            "AS v(seq, type, schema_version, payload, prev_hash, hash))"
        )
        params += [
            lease.owner,
            now,
            [e.seq for e in events],
            [e.type for e in events],
            [e.schema_version for e in events],
            [_json(Event, "payload", e.payload, conn) for e in events],
            [e.prev_hash for e in events],
            [e.hash for e in events],
        ]

    step_table = q(Step._meta.db_table)
    if commit.truncate_steps_from is not None:
        # A re-plan. The rows the new steps replace are upserted below; only the tail beyond the
        # new plan is deleted here, so that no row is both deleted and inserted by one statement.
        ctes.append(f"d AS (DELETE FROM {step_table} USING t WHERE {step_table}.{q('task_id')} = t.id AND {q('index')} >= %s)")
        params.append(commit.truncate_steps_from + len(commit.new_steps))

    if commit.new_steps:
        names = ["task", "index", "plan_version", "title", "instructions", "depends_on", "status", "attempts"]
        names += ["requires_approval", "expected_minutes", "error", "transcript", "result", "started_at", "finished_at"]
        replaced = [n for n in names if n not in ("task", "index")]
        ctes.append(
            f"n AS (INSERT INTO {step_table} ({_columns(Step, names, conn)}) "
            "SELECT t.id, v.idx, %s, v.title, v.instructions, v.depends_on, %s, 0, v.approval, v.minutes, '', '[]', "
            "NULL, NULL, NULL FROM t, "
            "unnest(%s::int[], %s::text[], %s::text[], %s::jsonb[], %s::boolean[], %s::int[]) "
            "AS v(idx, title, instructions, depends_on, approval, minutes) "
            f"ON CONFLICT ({_columns(Step, ['task', 'index'], conn)}) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _columns(Step, replaced, conn).split(", "))
            + ")"
        )
        params += [
            commit.plan_version,
            StepStatus.PENDING,
            [s.index for s in commit.new_steps],
            [s.title for s in commit.new_steps],
            [s.instructions for s in commit.new_steps],
            [_json(Step, "depends_on", list(s.depends_on), conn) for s in commit.new_steps],
            [s.needs_approval for s in commit.new_steps],
            [s.expected_minutes for s in commit.new_steps],
        ]

    if commit.step_update is not None:
        up = commit.step_update
        columns = ("status", "attempts", "result", "error", "started_at", "finished_at", "transcript")
        assigned = ", ".join(f"{q(c)} = %s" for c in columns)
        ctes.append(
            f"s AS (UPDATE {step_table} SET {assigned} FROM t "
            f"WHERE {step_table}.{q('task_id')} = t.id AND {step_table}.{q('index')} = %s)"
        )
        params += [up.status, up.attempts, _json(Step, "result", up.result, conn), up.error, up.started_at, up.finished_at]
        params.append(_json(Step, "transcript", list(up.transcript), conn))
        params += [up.index]

    ctes.append(
        f"c AS (INSERT INTO {q(Checkpoint._meta.db_table)} "
        f"({_columns(Checkpoint, ['task', 'seq', 'event_seq', 'state', 'created_at'], conn)}) "
        "SELECT t.id, %s, %s, %s, %s FROM t)"
    )
    params += [
        commit.base_checkpoint_seq + 1,
        commit.base_event_seq + len(commit.events),
        _json(Checkpoint, "state", commit.checkpoint_state, conn),
        now,
    ]
    return "WITH " + ", ".join(ctes) + " SELECT count(*) FROM t", params
