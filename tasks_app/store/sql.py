"""The SQL the stores send as text. CLAIM_SQL, FENCE_SQL and JOURNAL_WRITE_SQL are plain SQL that
PostgreSQL and SQLite both run; the rest is PostgreSQL's (PostgresStore): the claim that also reads
the snapshot, and a tick's commit as one statement of data-modifying CTEs (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

from agents.types import TaskRecord
from tasks_app.models import AgentTask, Checkpoint, Event, Step
from tasks_app.models import JournalEntry as JournalRow

TASKS_TABLE = f'"{AgentTask._meta.db_table}"'
EVENTS_TABLE = f'"{Event._meta.db_table}"'
STEPS_TABLE = f'"{Step._meta.db_table}"'
CHECKPOINTS_TABLE = f'"{Checkpoint._meta.db_table}"'
JOURNAL_TABLE = f'"{JournalRow._meta.db_table}"'

# The claim's conditional UPDATE. SQL evaluates every SET on the old row: taken_over_from and
# resume_count see the owner being replaced.
CLAIM_SQL = (
    f"UPDATE {TASKS_TABLE} SET "
    "taken_over_from = lease_owner, "
    "resume_count = resume_count + (CASE WHEN lease_owner IS NULL THEN 0 ELSE 1 END), "
    "status = %s, lease_owner = %s, lease_expires_at = %s, lease_epoch = lease_epoch + 1, "
    "step_attempts = step_attempts + 1, updated_at = %s, enqueued_at = NULL, "
    # A rolling deploy (docs/deploys.md): the first tick of a newer build records it; a build older
    # than the newest that ticked the task does not claim it. An unranked runner records nothing.
    "build_rank = CASE WHEN build_rank < %s THEN %s ELSE build_rank END, "
    "builds = CASE WHEN build_rank < %s THEN builds || %s ELSE builds END "
    "WHERE id = %s AND status IN (%s, %s, %s) AND next_run_at <= %s "
    "AND (lease_expires_at IS NULL OR lease_expires_at < %s) AND build_rank <= %s"
)

# The fence: the task row while we own it ({also}: one more condition; {lock}: a row lock clause).
FENCE_SQL = f"FROM {TASKS_TABLE} WHERE id = %s AND lease_epoch = %s AND lease_owner = %s{{also}}{{lock}}"
FENCE_ROW_LOCK = " FOR SHARE"  # a concurrent claim's UPDATE waits for our transaction

# A journal entry written only while the fence holds (parameters: the entry, then the fence's).
JOURNAL_WRITE_SQL = (
    f'INSERT INTO {JOURNAL_TABLE} ("key", "task_id", "kind", "name", "request_digest", "status", "result", '
    '"created_at", "completed_at") SELECT %s, id, %s, %s, %s, %s, %s, %s, %s {fence} ON CONFLICT ("key") {on_conflict}'
)
JOURNAL_IF_ABSENT = "DO NOTHING"
JOURNAL_UPSERT = (
    'DO UPDATE SET "request_digest" = excluded."request_digest", "status" = excluded."status", '
    '"result" = excluded."result", "completed_at" = excluded."completed_at"'
)

# Lets a statement's own implicit transaction commit without waiting for its WAL flush
# (prepared.async_commit says when; docs/architecture.md why). Local to the transaction.
ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"
ASYNC_COMMIT_COLUMN = f", {ASYNC_COMMIT} AS _async_commit"
ASYNC_COMMIT_CONDITION = f" AND {ASYNC_COMMIT} = 'off'"

# --- the claim that reads the snapshot too (PostgreSQL) -----------------------------------------
# The task's columns are a TaskRecord's; the checkpoint's come back prefixed `_cp_`, the step's
# `_st_`; JSON columns as text.
CLAIM_TASK_COLUMNS = (*(f.name for f in fields(TaskRecord)), "taken_over_from")
TASK_JSON_COLUMNS = frozenset({"context", "result", "profile_config"})
STEP_COLUMNS: tuple[str, ...] = (
    "index",
    "plan_version",
    "title",
    "instructions",
    "depends_on",
    "status",
    "attempts",
    "result",
    "error",
    "started_at",
    "finished_at",
    "requires_approval",
    "expected_minutes",
)
STEP_JSON_COLUMNS = frozenset({"depends_on", "result"})
# Events after the checkpoint come with the claim, up to this many; a longer tail is read by load().
PRELOAD_EVENTS_MAX = 50
EVENT_COLUMNS = ("seq", "type", "schema_version", "payload", "worker", "created_at", "prev_hash", "hash")


def _quoted(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _text(column: str, json_columns: frozenset[str], prefix: str = "") -> str:
    quoted = f'{prefix}"{column}"'
    return f"CAST({quoted} AS text)" if column in json_columns else quoted


PRELOAD_SQL = (
    f"WITH t AS ({CLAIM_SQL} RETURNING "
    + ", ".join(f'{_text(c, TASK_JSON_COLUMNS)} AS "{c}"' for c in CLAIM_TASK_COLUMNS)
    + ") SELECT t.*, c.seq AS _cp_seq, c.event_seq AS _cp_event_seq, CAST(c.state AS text) AS _cp_state, "
    + ", ".join(f"{_text(c, STEP_JSON_COLUMNS, 's.')} AS _st_{c}" for c in STEP_COLUMNS)
    + ", CAST(ev.events AS text) AS _events{async_commit}"
    + f" FROM t LEFT JOIN LATERAL (SELECT seq, event_seq, state FROM {CHECKPOINTS_TABLE} WHERE task_id = t.id "
    "ORDER BY seq DESC LIMIT 1) c ON true "
    # LIMIT keeps this subquery from being flattened into a join: both key columns stay the index
    # scan's condition (as a join condition the step index filtered every step row of the task).
    f"LEFT JOIN LATERAL (SELECT {_quoted(STEP_COLUMNS)} FROM {STEPS_TABLE} "
    "WHERE task_id = t.id AND \"index\" = (c.state->>'next_step')::int LIMIT 1) s ON true "
    "LEFT JOIN LATERAL (SELECT json_agg(json_build_object("
    + ", ".join(f"'{c}', e.{c}" for c in EVENT_COLUMNS)
    + f") ORDER BY e.seq) AS events FROM {EVENTS_TABLE} e WHERE e.task_id = t.id AND e.seq > coalesce(c.event_seq, 0) "
    f"AND t.last_event_seq - coalesce(c.event_seq, 0) BETWEEN 1 AND {PRELOAD_EVENTS_MAX}) ev ON true"
)
PRELOAD_WITH_ASYNC_COMMIT = PRELOAD_SQL.format(async_commit=ASYNC_COMMIT_COLUMN)
PRELOAD_WITHOUT_ASYNC_COMMIT = PRELOAD_SQL.format(async_commit="")
# The names of PRELOAD_SQL's columns, in order (reading cursor.description costs more per tick).
PRELOAD_NAMES = (*CLAIM_TASK_COLUMNS, "_cp_seq", "_cp_event_seq", "_cp_state", *(f"_st_{c}" for c in STEP_COLUMNS), "_events")

# --- a tick's commit as one statement (PostgreSQL) -----------------------------------------------
# Rows go in as one JSON array each (jsonb_to_recordset): one parameter to adapt instead of one per
# column, and few enough parameters for psycopg to cache the statement's conversion.
COMMIT_TASK = (
    f"t AS (UPDATE {TASKS_TABLE} SET {{sets}} WHERE id = %s AND lease_epoch = %s AND lease_owner = %s "
    "AND last_event_seq = %s AND checkpoint_seq = %s RETURNING id)"
)
COMMIT_EVENTS = (
    f'e AS (INSERT INTO {EVENTS_TABLE} ("task_id", "seq", "type", "schema_version", "payload", "prev_hash", "hash", '
    '"worker", "created_at") SELECT t.id, v.seq, v.type, v.schema_version, v.payload, v.prev_hash, v.hash, %s, %s '
    "FROM t, jsonb_to_recordset(%s::jsonb) AS v(seq bigint, type text, schema_version smallint, payload jsonb, "
    "prev_hash text, hash text))"
)
# A re-plan: the rows the new steps replace are upserted below; only the tail beyond the new plan
# is deleted, so that no row is both deleted and inserted by one statement.
COMMIT_TRUNCATE_STEPS = f'd AS (DELETE FROM {STEPS_TABLE} USING t WHERE {STEPS_TABLE}."task_id" = t.id AND "index" >= %s)'
# In the order of COMMIT_NEW_STEPS's SELECT list.
_STEP_REPLACED: tuple[str, ...] = (
    "plan_version",
    "title",
    "instructions",
    "depends_on",
    "status",
    "attempts",
    "requires_approval",
    "expected_minutes",
    "error",
    "transcript",
    "result",
    "started_at",
    "finished_at",
)
COMMIT_NEW_STEPS = (
    f'n AS (INSERT INTO {STEPS_TABLE} ("task_id", "index", {_quoted(_STEP_REPLACED)}) '
    "SELECT t.id, v.idx, %s, v.title, v.instructions, v.depends_on, %s, 0, v.approval, v.minutes, '', '[]', "
    "NULL, NULL, NULL FROM t, jsonb_to_recordset(%s::jsonb) AS v(idx int, title text, instructions text, "
    'depends_on jsonb, approval boolean, minutes int) ON CONFLICT ("task_id", "index") DO UPDATE SET '
    + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in _STEP_REPLACED)
    + ")"
)
# A resumed step keeps its first start. The task id is a parameter too: with both key columns given
# the unique index stays the plan even when the statement was prepared while the table was small.
COMMIT_STEP_UPDATE = (
    f's AS (UPDATE {STEPS_TABLE} SET "status" = %s, "attempts" = %s, "result" = %s, "error" = %s, '
    '"started_at" = COALESCE("started_at", %s), "finished_at" = %s, "transcript" = %s FROM t '
    f'WHERE {STEPS_TABLE}."task_id" = t.id AND {STEPS_TABLE}."task_id" = %s AND {STEPS_TABLE}."index" = %s)'
)
# The tick's last model answers (agents/journal.py), upserted like Store.journal_complete.
COMMIT_JOURNAL = (
    f'j AS (INSERT INTO {JOURNAL_TABLE} ("key", "task_id", "kind", "name", "request_digest", "status", "result", '
    '"created_at", "completed_at") SELECT v.key, t.id, v.kind, v.name, v.digest, v.status, v.result, w.at, '
    "CASE WHEN v.status = 'completed' THEN w.at END FROM t, (SELECT %s::timestamptz AS at) w, "
    "jsonb_to_recordset(%s::jsonb) AS v(key text, kind text, name text, digest text, status text, result jsonb) "
    'ON CONFLICT ("key") DO UPDATE SET "request_digest" = EXCLUDED."request_digest", "status" = EXCLUDED."status", '
    '"result" = EXCLUDED."result", "completed_at" = EXCLUDED."completed_at")'
)
COMMIT_CHECKPOINT = (
    f'c AS (INSERT INTO {CHECKPOINTS_TABLE} ("task_id", "seq", "event_seq", "state", "created_at") '
    "SELECT t.id, %s, %s, %s, %s FROM t)"
)


@dataclass(frozen=True)
class CommitShape:
    """What decides a commit statement's text: the same shape, the same SQL (prepared once)."""

    task_fields: tuple[tuple[str, bool], ...]  # (column, is NULL): a NULL is written into the text
    events: bool
    truncate: bool
    new_steps: bool
    step_update: bool
    journal: bool


@lru_cache(maxsize=64)
def commit_sql(shape: CommitShape) -> str:
    """The commit statement; it returns one row: 1 committed, 0 fenced or a conflict."""
    sets = ", ".join(f'"{name}" = {"NULL" if null else "%s"}' for name, null in shape.task_fields)
    parts = [
        (True, COMMIT_TASK.format(sets=sets)),
        (shape.events, COMMIT_EVENTS),
        (shape.truncate, COMMIT_TRUNCATE_STEPS),
        (shape.new_steps, COMMIT_NEW_STEPS),
        (shape.step_update, COMMIT_STEP_UPDATE),
        (shape.journal, COMMIT_JOURNAL),
        (True, COMMIT_CHECKPOINT),
    ]
    return "WITH " + ", ".join(cte for wanted, cte in parts if wanted) + " SELECT count(*) FROM t"
