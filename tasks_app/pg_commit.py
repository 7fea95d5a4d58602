"""A tick's commit as one PostgreSQL statement.

The ORM path (tasks_app.store.DjangoStore.commit) needs six round trips or more: BEGIN, the fenced
UPDATE of the task, the event INSERT, the step UPDATE or INSERT, the journal's model answers, the
checkpoint INSERT, COMMIT. On PostgreSQL all of it fits in one statement of data-modifying CTEs,
which runs atomically: every CTE reads the fenced UPDATE's output, so when the fence matches no row
nothing else is written either, and a constraint violation anywhere undoes the whole statement.
Profiling showed the client-side cost of each ORM statement (query building and adaptation)
dominating a no-op tick; this statement is built from fixed text, one per shape of commit, and
prepared once per connection (tasks_app/pg_prepared.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.db.backends.base.base import BaseDatabaseWrapper

from agents.status import StepStatus
from agents.types import EventRecord, Lease, TickCommit
from tasks_app.models import AgentTask, Checkpoint, Event, Step
from tasks_app.models import JournalEntry as JournalRow


def _quoted(model: type, name: str) -> str:
    # PostgreSQL's quoting, which is all this module speaks: a double-quoted identifier.
    return f'"{model._meta.get_field(name).column}"'  # type: ignore[attr-defined]


def _columns(model: type, names: list[str]) -> str:
    return ", ".join(_quoted(model, n) for n in names)


def _table(model: type) -> str:
    return f'"{model._meta.db_table}"'  # type: ignore[attr-defined]


def _json(model: type, field: str, value: object, conn: BaseDatabaseWrapper) -> object:
    return model._meta.get_field(field).get_db_prep_save(value, conn)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Shape:
    """What decides a commit statement's text. The same shape always gives the same SQL, so each
    shape is built once per process and prepared once per connection."""

    task_fields: tuple[tuple[str, bool], ...]  # (field, is NULL): a NULL is written into the text
    events: bool
    truncate: bool
    new_steps: bool
    step_update: bool
    journal: bool


# Rows go in as one JSON array each (jsonb_to_recordset), not as an array per column: one
# parameter to adapt instead of six, and few enough parameters for psycopg to cache the statement's
# conversion (it re-parses a query of more than 50 parameters on every execute).
_EVENT_FIELDS = ["task", "seq", "type", "schema_version", "payload", "prev_hash", "hash", "worker", "created_at"]
_EVENT_ROWS = "seq bigint, type text, schema_version smallint, payload jsonb, prev_hash text, hash text"
_STEP_FIELDS = ["task", "index", "plan_version", "title", "instructions", "depends_on", "status", "attempts"]
_STEP_FIELDS += ["requires_approval", "expected_minutes", "error", "transcript", "result", "started_at", "finished_at"]
_STEP_ROWS = "idx int, title text, instructions text, depends_on jsonb, approval boolean, minutes int"
_STEP_UPDATED = ["status", "attempts", "result", "error", "started_at", "finished_at", "transcript"]
_JOURNAL_FIELDS = ["key", "task", "kind", "name", "request_digest", "status", "result", "created_at", "completed_at"]
_JOURNAL_ROWS = "key text, kind text, name text, digest text, status text, result jsonb"
_JOURNAL_UPDATED = ["request_digest", "status", "result", "completed_at"]


def _excluded(model: type, names: list[str]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in (_quoted(model, n) for n in names))


@lru_cache(maxsize=64)
def _commit_sql(shape: _Shape) -> str:
    sets = ", ".join(f"{_quoted(AgentTask, name)} = {'NULL' if null else '%s'}" for name, null in shape.task_fields)
    ctes = [
        f"t AS (UPDATE {_table(AgentTask)} SET {sets} "
        "WHERE id = %s AND lease_epoch = %s AND lease_owner = %s AND last_event_seq = %s AND checkpoint_seq = %s "
        "RETURNING id)"
    ]
    if shape.events:
        ctes.append(
            f"e AS (INSERT INTO {_table(Event)} ({_columns(Event, _EVENT_FIELDS)}) "
            "SELECT t.id, v.seq, v.type, v.schema_version, v.payload, v.prev_hash, v.hash, %s, %s "
            f"FROM t, jsonb_to_recordset(%s::jsonb) AS v({_EVENT_ROWS}))"
        )
    steps = _table(Step)
    if shape.truncate:
        # A re-plan. The rows the new steps replace are upserted below; only the tail beyond the
        # new plan is deleted here, so that no row is both deleted and inserted by one statement.
        ctes.append(f'd AS (DELETE FROM {steps} USING t WHERE {steps}."task_id" = t.id AND "index" >= %s)')
    if shape.new_steps:
        ctes.append(
            f"n AS (INSERT INTO {steps} ({_columns(Step, _STEP_FIELDS)}) "
            "SELECT t.id, v.idx, %s, v.title, v.instructions, v.depends_on, %s, 0, v.approval, v.minutes, '', '[]', "
            f"NULL, NULL, NULL FROM t, jsonb_to_recordset(%s::jsonb) AS v({_STEP_ROWS}) "
            f"ON CONFLICT ({_columns(Step, ['task', 'index'])}) DO UPDATE SET {_excluded(Step, _STEP_FIELDS[2:])})"
        )
    if shape.step_update:
        # A resumed step keeps its first start: the timeline's duration counts from it.
        assigned = ", ".join(
            f"{_quoted(Step, c)} = COALESCE({_quoted(Step, c)}, %s)" if c == "started_at" else f"{_quoted(Step, c)} = %s"
            for c in _STEP_UPDATED
        )
        # The task id as a parameter too, not only through t: with both key columns given, the unique
        # index is the plan even when the statement was prepared while the table was small (a plan
        # that joined t to a scan of the whole table was kept, and grew with it).
        ctes.append(
            f"s AS (UPDATE {steps} SET {assigned} FROM t "
            f'WHERE {steps}."task_id" = t.id AND {steps}."task_id" = %s AND {steps}."index" = %s)'
        )
    if shape.journal:
        # The tick's last model answers (agents/journal.py): upserted like Store.journal_complete.
        ctes.append(
            f"j AS (INSERT INTO {_table(JournalRow)} ({_columns(JournalRow, _JOURNAL_FIELDS)}) "
            "SELECT v.key, t.id, v.kind, v.name, v.digest, v.status, v.result, w.at, "
            "CASE WHEN v.status = 'completed' THEN w.at END "
            f"FROM t, (SELECT %s::timestamptz AS at) w, jsonb_to_recordset(%s::jsonb) AS v({_JOURNAL_ROWS}) "
            f'ON CONFLICT ("key") DO UPDATE SET {_excluded(JournalRow, _JOURNAL_UPDATED)})'
        )
    ctes.append(
        f"c AS (INSERT INTO {_table(Checkpoint)} ({_columns(Checkpoint, ['task', 'seq', 'event_seq', 'state', 'created_at'])}) "
        "SELECT t.id, %s, %s, %s, %s FROM t)"
    )
    return "WITH " + ", ".join(ctes) + " SELECT count(*) FROM t"


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
    continues from the task's last_event_hash, which the fenced UPDATE's last_event_seq pins).
    The parameters follow the order of _commit_sql's placeholders."""
    shape = _Shape(
        task_fields=tuple((name, value is None) for name, value in task_fields.items()),
        events=bool(events),
        truncate=commit.truncate_steps_from is not None,
        new_steps=bool(commit.new_steps),
        step_update=commit.step_update is not None,
        journal=bool(commit.journal),
    )
    params: list[object] = [
        _json(AgentTask, name, value, conn) if name == "result" else value
        for name, value in task_fields.items()
        if value is not None
    ]
    params += [lease.task_id, lease.epoch, lease.owner, commit.base_event_seq, commit.base_checkpoint_seq]
    rows = conn.ops.adapt_json_value
    if events:
        fields = ("seq", "type", "schema_version", "payload", "prev_hash", "hash")
        params += [lease.owner, now, rows([{f: getattr(e, f) for f in fields} for e in events], None)]
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
        params += [commit.plan_version, StepStatus.PENDING, rows(new, None)]
    if (up := commit.step_update) is not None:
        params += [up.status, up.attempts, _json(Step, "result", up.result, conn), up.error, up.started_at, up.finished_at]
        params += [_json(Step, "transcript", list(up.transcript), conn), lease.task_id, up.index]
    if commit.journal:
        fields = ("key", "kind", "name", "status", "result")
        answers = [{"digest": e.request_digest, **{f: getattr(e, f) for f in fields}} for e in commit.journal]
        params += [now, rows(answers, None)]
    params += [commit.base_checkpoint_seq + 1, commit.base_event_seq + len(commit.events)]
    params += [_json(Checkpoint, "state", commit.checkpoint_state, conn), now]
    return _commit_sql(shape), params
