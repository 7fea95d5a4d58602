"""DjangoStore: the agents.store.Store protocol on the ORM (PostgreSQL in production, SQLite embedded).

Fencing: a claim is one conditional UPDATE that increments lease_epoch. Every later write of the
tick is a single statement (or a transaction) that writes only if the task row still carries that
epoch and owner, reading it under a lock that a new claim must wait for, so a zombie whose lease
was taken over writes nothing and a claim cannot slip between the check and the write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import fields, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connections, transaction
from django.db.models import DateTimeField, F, Model, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from agents.audit import chain
from agents.errors import BuildSuperseded, InvalidInput, LeaseLost, TaskNotFound
from agents.events import TASK_CREATED, created_payload, new_event
from agents.status import StepStatus, TaskStatus, check_transition
from agents.store import CommitResult
from agents.types import (
    JSON,
    ApprovalRecord,
    Build,
    CheckpointRecord,
    EventRecord,
    JournalEntry,
    Lease,
    NewEvent,
    NewTask,
    OperatorChange,
    SignalRecord,
    Snapshot,
    StepRecord,
    TaskRecord,
    TickCommit,
)
from tasks_app.db_pool import borrows
from tasks_app.models import AgentTask, Checkpoint, Event, Step, WorkspaceFile
from tasks_app.models import Approval as ApprovalRow
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.models import Signal as SignalRow
from tasks_app.pg_commit import commit_statement
from tasks_app.pg_prepared import async_commit, fetch_first_statement, prepared_cursor
from tasks_app.services.webhooks import NOTIFY_STATUSES, task_status_changed

_CLAIMABLE = sorted(TaskStatus.CLAIMABLE)
_M = TypeVar("_M", bound=Model)


def task_pk(task_id: str) -> uuid.UUID:
    """The primary key for a task id; a malformed id is an unknown task."""
    try:
        return uuid.UUID(str(task_id))
    except ValueError:
        raise TaskNotFound(task_id) from None


def _task_record(t: AgentTask) -> TaskRecord:
    return TaskRecord(
        id=str(t.id),
        goal=t.goal,
        context=t.context,
        profile=t.profile,
        status=t.status,
        status_reason=t.status_reason,
        result=t.result,
        max_steps=t.max_steps,
        max_attempts=t.max_attempts,
        step_attempts=t.step_attempts,
        last_event_seq=t.last_event_seq,
        checkpoint_seq=t.checkpoint_seq,
        lease_owner=t.lease_owner,
        lease_epoch=t.lease_epoch,
        resume_count=t.resume_count,
        created_at=t.created_at,
        updated_at=t.updated_at,
        profile_config=t.profile_config,
        last_event_hash=t.last_event_hash,
        parent_id=str(t.parent_id) if t.parent_id else None,
        build_rank=t.build_rank,
        builds=t.builds,
    )


def _event_record(e: Event) -> EventRecord:
    return EventRecord(
        seq=e.seq,
        type=e.type,
        payload=e.payload,
        schema_version=e.schema_version,
        worker=e.worker,
        created_at=e.created_at,
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


def stamped(event: NewEvent, *, seq: int, worker: str, created_at: datetime) -> EventRecord:
    """A new event as the log keeps it: numbered, attributed and timed (chain_events adds the hashes)."""
    return EventRecord(
        seq=seq,
        type=event.type,
        payload=event.payload,
        schema_version=event.schema_version,
        worker=worker,
        created_at=created_at,
    )


def chain_events(task_id: str, prev_hash: str, events: list[EventRecord]) -> list[EventRecord]:
    """The events with their hash chain (agents/audit.py) filled in, continuing from `prev_hash`."""
    return chain(str(task_pk(task_id)), prev_hash, events)  # the id as verify_events reads it back, whatever its case


def event_row(task_id: object, event: EventRecord) -> Event:
    return Event(
        task_id=task_id,
        seq=event.seq,
        type=event.type,
        schema_version=event.schema_version,
        payload=event.payload,
        worker=event.worker,
        created_at=event.created_at,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def _step_record(s: Step) -> StepRecord:
    return StepRecord(
        index=s.index,
        title=s.title,
        instructions=s.instructions,
        depends_on=tuple(s.depends_on),
        plan_version=s.plan_version,
        status=s.status,
        attempts=s.attempts,
        result=s.result,
        error=s.error,
        started_at=s.started_at,
        finished_at=s.finished_at,
        requires_approval=s.requires_approval,
        expected_minutes=s.expected_minutes,
        transcript=tuple(s.transcript or ()),
    )


def approval_record(a: ApprovalRow) -> ApprovalRecord:
    return ApprovalRecord(
        task_id=str(a.task_id),
        key=a.key,
        kind=a.kind,
        step_index=a.step_index,
        plan_version=a.plan_version,
        action=a.action,
        digest=a.digest,
        status=a.status,
        id=a.pk,
        decided_by=a.decided_by.get_username() if a.decided_by else "",
        comment=a.comment,
        edited_arguments=a.edited_arguments,
        created_at=a.requested_at,
    )


def _checkpoint_record(c: Checkpoint) -> CheckpointRecord:
    return CheckpointRecord(seq=c.seq, event_seq=c.event_seq, state=c.state)


def _journal_record(j: JournalRow) -> JournalEntry:
    return JournalEntry(key=j.key, kind=j.kind, name=j.name, request_digest=j.request_digest, status=j.status, result=j.result)


# The claim's conditional UPDATE (DjangoStore.claim), the same text on PostgreSQL and SQLite.
CLAIM_SQL = (
    f'UPDATE "{AgentTask._meta.db_table}" SET '
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
UNRANKED_LIMIT = 2**62  # an unranked runner's WHERE: every task
BUILD_RETRY_SECONDS = 5.0  # a tick an older build left alone is rung again this much later

# On PostgreSQL the claim also reads, in the same statement, the latest checkpoint and the step its
# cursor points at: three round trips become one on every tick. (SQLite reads them separately.)
# The task's columns are the ones a TaskRecord holds; the checkpoint's come back prefixed `_cp_`
# and the step's `_st_`; JSON ones as text, decoded here like the ORM would.
_CLAIM_TASK_COLUMNS = tuple(f.name for f in fields(TaskRecord)) + ("taken_over_from",)  # each field is a column
_TASK_JSON_COLUMNS = frozenset({"context", "result", "profile_config"})
_STEP_COLUMNS = ("index", "plan_version", "title", "instructions", "depends_on", "status", "attempts", "result", "error")
_STEP_COLUMNS += ("started_at", "finished_at", "requires_approval", "expected_minutes")
_STEP_JSON_COLUMNS = frozenset({"depends_on", "result"})


def _text(column: str, json_columns: frozenset[str], prefix: str = "") -> str:
    quoted = f'{prefix}"{column}"'
    return f"CAST({quoted} AS text)" if column in json_columns else quoted


# Events after the checkpoint (the task.created event before the first one, an operator's or a
# signal's since the last tick) come with the claim too, up to this many; a longer tail is read by load().
PRELOAD_EVENTS_MAX = 50
_EVENT_JSON = ", ".join(
    f"'{f}', e.{f}" for f in ("seq", "type", "schema_version", "payload", "worker", "created_at", "prev_hash", "hash")
)

_STEP_SELECT = ", ".join(f'"{c}"' for c in _STEP_COLUMNS)

PRELOAD_SQL = (
    "WITH t AS ({claim} RETURNING "
    + ", ".join(f'{_text(c, _TASK_JSON_COLUMNS)} AS "{c}"' for c in _CLAIM_TASK_COLUMNS)
    + ") SELECT t.*, c.seq AS _cp_seq, c.event_seq AS _cp_event_seq, CAST(c.state AS text) AS _cp_state, "
    + ", ".join(f"{_text(c, _STEP_JSON_COLUMNS, 's.')} AS _st_{c}" for c in _STEP_COLUMNS)
    + ", CAST(ev.events AS text) AS _events{async_commit}"
    + " FROM t LEFT JOIN LATERAL (SELECT seq, event_seq, state FROM {checkpoint} WHERE task_id = t.id "
    "ORDER BY seq DESC LIMIT 1) c ON true "
    # A LATERAL subquery that cannot be flattened into a join (its LIMIT), so that both key columns
    # are the index scan's condition: as a join condition, the step index from the checkpoint was a
    # filter applied to every step row of the task.
    f"LEFT JOIN LATERAL (SELECT {_STEP_SELECT} FROM {{step}} "
    "WHERE task_id = t.id AND \"index\" = (c.state->>'next_step')::int LIMIT 1) s ON true "
    f"LEFT JOIN LATERAL (SELECT json_agg(json_build_object({_EVENT_JSON}) ORDER BY e.seq) AS events "
    "FROM {event} e WHERE e.task_id = t.id AND e.seq > coalesce(c.event_seq, 0) "
    f"AND t.last_event_seq - coalesce(c.event_seq, 0) BETWEEN 1 AND {PRELOAD_EVENTS_MAX}) ev ON true"
)


# The names of PRELOAD_SQL's columns, in order (reading cursor.description costs more per tick).
_PRELOAD_NAMES = (*_CLAIM_TASK_COLUMNS, "_cp_seq", "_cp_event_seq", "_cp_state", *(f"_st_{c}" for c in _STEP_COLUMNS), "_events")


@lru_cache(maxsize=2)
def _preload_sql(async_part: str) -> str:
    """PRELOAD_SQL around the claim, built once (with or without the async-commit column)."""
    tables = {name: f'"{model._meta.db_table}"' for name, model in (("checkpoint", Checkpoint), ("step", Step), ("event", Event))}
    return PRELOAD_SQL.format(claim=CLAIM_SQL, async_commit=async_part, **tables)


def _loads(text: str | None) -> JSON:
    return json.loads(text) if text is not None else None


def _claimed_record(row: dict[str, Any]) -> TaskRecord:
    """The TaskRecord of the claim's row (PostgreSQL: a plain cursor's row, its JSON columns as text)."""
    values = {c: row[c] for c in _CLAIM_TASK_COLUMNS if c != "taken_over_from"}
    for c in _TASK_JSON_COLUMNS:
        values[c] = _loads(values[c])
    values["id"] = str(values["id"])
    values["parent_id"] = str(values["parent_id"]) if values["parent_id"] else None
    return TaskRecord(**values)


def _preloaded_snapshot(task: TaskRecord, row: dict[str, Any]) -> Snapshot | None:
    """The snapshot the claim read, or None when more events follow the checkpoint than it reads
    (load reads them)."""
    checkpoint = None
    if row["_cp_seq"] is not None:
        checkpoint = CheckpointRecord(seq=row["_cp_seq"], event_seq=row["_cp_event_seq"], state=json.loads(row["_cp_state"]))
    events = tuple(
        EventRecord(**{**e, "created_at": datetime.fromisoformat(e["created_at"])}) for e in json.loads(row["_events"] or "[]")
    )
    covered = (checkpoint.event_seq if checkpoint else 0) + len(events)
    if covered != task.last_event_seq:
        return None
    step = None
    if row["_st_index"] is not None:
        values = {c: row[f"_st_{c}"] for c in _STEP_COLUMNS}
        for c in _STEP_JSON_COLUMNS:
            values[c] = _loads(values[c])
        step = StepRecord(**{**values, "depends_on": tuple(values["depends_on"] or ())})  # no transcript: not read
    return Snapshot(task=task, checkpoint=checkpoint, events=events, next_step=step)


def _build_set(build: Build | None) -> tuple[object, ...]:
    """The claim's SET parameters for the build (an unranked runner: a rank no row is below)."""
    if build is None or build.rank is None:
        return (-1, -1, -1, "")
    return (build.rank, build.rank, build.rank, f" {build.id}")


def due_q(now: datetime) -> Q:
    """What a claim may take at `now`: claimable, due, and no live lease (the claim's WHERE, as a Q)."""
    return Q(status__in=_CLAIMABLE, next_run_at__lte=now) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))


class DjangoStore:
    def __init__(self, using: str = "default") -> None:
        self.db = using

    @property
    def memory(self):  # type: ignore[no-untyped-def]
        """Long-term memory (the remember/recall tools) on this database; see tasks_app/recall_store.py."""
        from tasks_app.recall_store import memory_for  # imported late: it builds the embedder from settings

        return memory_for(self.db)

    def _tasks(self):  # type: ignore[no-untyped-def]
        return AgentTask.objects.using(self.db)

    # --- tasks -----------------------------------------------------------------------------

    def create_task(self, new: NewTask) -> str:
        created = new_event(TASK_CREATED, created_payload(new))
        # A sub-agent's id is derived from its spawn's journal key, so that a repeated spawn finds it.
        task_id, now = (task_pk(new.task_id) if new.task_id is not None else uuid.uuid4()), timezone.now()
        (first,) = chain_events(
            str(task_id),
            "",
            [stamped(created, seq=1, worker="", created_at=now)],
        )
        with transaction.atomic(using=self.db):
            if new.task_id is not None and self._tasks().filter(pk=task_pk(new.task_id)).exists():
                return new.task_id  # created before under this id (a sub-agent): once only
            rank, builds = self._spawning_build(new.parent_id)
            task = self._tasks().create(
                build_rank=rank,
                builds=builds,
                id=task_id,
                goal=new.goal,
                context=new.context,
                profile=new.profile,
                profile_config=new.profile_config,
                max_steps=new.max_steps,
                max_attempts=new.max_attempts,
                parent_id=task_pk(new.parent_id) if new.parent_id else None,
                deadline=new.deadline,
                next_run_at=timezone.now(),
                enqueued_at=timezone.now(),  # the creating service rings the first tick
                progress_at=timezone.now(),  # a task that never commits a tick is flagged stuck too
                last_event_seq=1,
                last_event_hash=first.hash,
            )
            event_row(task.pk, first).save(using=self.db)
        return str(task.id)

    def _spawning_build(self, parent_id: str | None) -> tuple[int, str]:
        """A sub-agent starts on the build that spawned it (its parent's newest): no older build takes it."""
        found = self._tasks().filter(pk=task_pk(parent_id)).values_list("build_rank", "builds").first() if parent_id else None
        if not found or not found[1]:
            return 0, ""
        return found[0], " " + found[1].split()[-1]

    def _get(self, task_id: str) -> AgentTask:
        try:
            return self._tasks().get(pk=task_pk(task_id))
        except AgentTask.DoesNotExist:
            raise TaskNotFound(task_id) from None

    def get_task(self, task_id: str) -> TaskRecord:
        return _task_record(self._get(task_id))

    def claim(self, task_id: str, *, owner: str, lease_seconds: float, build: Build | None = None) -> Lease | None:
        """One conditional UPDATE ... RETURNING: claimable, due, and no live lease, or nothing happens.

        Concurrent claimers serialise on the row; the WHERE is re-checked after the wait, so exactly
        one wins. SQL evaluates every SET expression on the old row, which is how taken_over_from
        and resume_count see the owner being replaced.
        """
        conn = connections[self.db]
        now = timezone.now()
        at = conn.ops.adapt_datetimefield_value
        params = [
            TaskStatus.RUNNING,
            owner,
            at(now + timedelta(seconds=lease_seconds)),
            at(now),
            *_build_set(build),
            self._task_param(task_id),
            *_CLAIMABLE,
            at(now),
            at(now),
            UNRANKED_LIMIT if build is None or build.rank is None else build.rank,  # the WHERE's build_rank
        ]
        if conn.vendor == "postgresql":
            found = fetch_first_statement(conn, _preload_sql(async_commit(conn)), params)
            # The async-commit column, when there is one, comes last and is not wanted.
            row = dict(zip(_PRELOAD_NAMES, found[: len(_PRELOAD_NAMES)], strict=True)) if found is not None else None
            if row is None:
                return self._not_claimed(task_id, build)
            record = _claimed_record(row)
            return Lease(
                task_id=task_id,
                owner=owner,
                epoch=record.lease_epoch,
                took_over_from=row["taken_over_from"],
                task=record,
                preload=_preloaded_snapshot(record, row),
            )
        claimed = list(self._tasks().raw(f"{CLAIM_SQL} RETURNING *", params))
        if not claimed:
            return self._not_claimed(task_id, build)
        task = claimed[0]
        record = _task_record(task)
        return Lease(task_id=task_id, owner=owner, epoch=record.lease_epoch, took_over_from=task.taken_over_from, task=record)

    def _not_claimed(self, task_id: str, build: Build | None = None) -> None:
        found = self._tasks().filter(pk=task_pk(task_id)).values_list("build_rank", "status").first()
        if found is None:
            raise TaskNotFound(task_id)
        if build is not None and build.rank is not None and found[0] > build.rank and found[1] in _CLAIMABLE:
            raise BuildSuperseded(
                f"task {task_id} was ticked by a newer build than {build.id!r}", retry_after=BUILD_RETRY_SECONDS
            )
        return None

    def _fence_sql(self, also: str = "") -> str:
        """The fence as SQL: the task row while we own it, locked so that it holds until commit.

        On PostgreSQL, FOR SHARE makes a concurrent claim's UPDATE wait for our transaction, and a
        claim that committed first fails our epoch check (the row is re-read after the wait).
        SQLite needs no lock clause: its IMMEDIATE transactions and single statements hold the
        database-wide write lock.
        """
        conn = connections[self.db]
        lock = " FOR SHARE" if conn.vendor == "postgresql" else ""
        table = conn.ops.quote_name(AgentTask._meta.db_table)
        return f"FROM {table} WHERE id = %s AND lease_epoch = %s AND lease_owner = %s{also}{lock}"

    def _fence_params(self, lease: Lease) -> list[object]:
        return [self._task_param(lease.task_id), lease.epoch, lease.owner]

    def _fence(self, lease: Lease) -> None:
        """Inside a transaction: hold the task row against a new claim, if and only if we still own it."""
        with connections[self.db].cursor() as cursor:
            cursor.execute(f"SELECT 1 {self._fence_sql()}", self._fence_params(lease))
            if cursor.fetchone() is None:
                raise LeaseLost(f"task {lease.task_id}: lease epoch {lease.epoch} is stale")

    def load(self, lease: Lease) -> Snapshot:
        if lease.preload is not None:
            return lease.preload
        task = lease.task or self.get_task(lease.task_id)
        checkpoint = self.latest_checkpoint(lease.task_id)
        after = checkpoint.event_seq if checkpoint else 0
        # Usually the last tick's checkpoint covers the whole log: no need to ask for events.
        events = tuple(self.events(lease.task_id, after_seq=after)) if after < task.last_event_seq else ()
        return Snapshot(task=task, checkpoint=checkpoint, events=events)

    def commit(self, lease: Lease, commit: TickCommit) -> CommitResult:
        check_transition(TaskStatus.RUNNING, commit.status)
        now = timezone.now()
        state = commit.checkpoint_state
        last_seq = commit.base_event_seq + len(commit.events)
        fields: dict[str, object] = {
            "status": commit.status,
            "status_reason": commit.status_reason,
            "last_event_seq": last_seq,
            "checkpoint_seq": commit.base_checkpoint_seq + 1,
            "step_attempts": 0,
            "lease_owner": None,
            "lease_expires_at": None,
            "next_run_at": now if commit.runnable else commit.wake_at,
            # A runnable commit is followed by its tick message; the sweeper re-rings only if that
            # message is not claimed within HORIZON_SWEEP_REDELIVER_AFTER.
            "enqueued_at": now if commit.runnable else None,
            "progress_at": now,
            "stuck_flagged_at": None,
            "steps_completed": state.get("next_step", 0),
            "model_calls": state.get("model_calls", 0),
            "tool_calls": state.get("tool_calls", 0),
            "prompt_tokens": state.get("prompt_tokens", 0),
            "completion_tokens": state.get("completion_tokens", 0),
            "cost_usd": state.get("cost_usd", 0.0),
            "updated_at": now,
        }
        if commit.result is not None:
            fields["result"] = commit.result
        if commit.new_step_deadline:
            fields["step_deadline_at"] = commit.step_deadline_at
        events = chain_events(
            lease.task_id,
            self._base_hash(lease, commit),
            [
                stamped(e, seq=commit.base_event_seq + i + 1, worker=lease.owner, created_at=now)
                for i, e in enumerate(commit.events)
            ],
        )
        if events:
            fields["last_event_hash"] = events[-1].hash
        conn = connections[self.db]
        # Only a commit that a webhook may have to report pays for a transaction around the statement.
        notify = commit.status in NOTIFY_STATUSES
        if conn.vendor == "postgresql":
            sql, params = commit_statement(conn, lease, commit, fields, now, events)
            with transaction.atomic(using=self.db) if notify else nullcontext(), prepared_cursor(conn) as cursor:
                cursor.execute(sql, params)
                committed = cursor.fetchone()[0]
                if committed and notify:
                    task_status_changed(self.db, lease.task_id, commit.status, last_seq)
            return CommitResult.COMMITTED if committed else self._why_not_committed(lease)
        with transaction.atomic(using=self.db):
            # One UPDATE is both the fence (epoch and owner) and the conflict check (no event
            # appended since the load); it also holds the row lock until the writes below commit.
            updated = (
                self._tasks()
                .filter(
                    pk=lease.task_id,
                    lease_epoch=lease.epoch,
                    lease_owner=lease.owner,
                    last_event_seq=commit.base_event_seq,
                    checkpoint_seq=commit.base_checkpoint_seq,
                )
                .update(**fields)
            )
            if not updated:
                return self._why_not_committed(lease)
            task_pk = lease.task_id
            Event.objects.using(self.db).bulk_create([event_row(task_pk, e) for e in events])
            if commit.truncate_steps_from is not None:
                Step.objects.using(self.db).filter(task_id=task_pk, index__gte=commit.truncate_steps_from).delete()
            if commit.new_steps:
                Step.objects.using(self.db).bulk_create(
                    [
                        Step(
                            task_id=task_pk,
                            index=s.index,
                            plan_version=commit.plan_version,
                            title=s.title,
                            instructions=s.instructions,
                            depends_on=list(s.depends_on),
                            status=StepStatus.PENDING,
                            requires_approval=s.needs_approval,
                            expected_minutes=s.expected_minutes,
                        )
                        for s in commit.new_steps
                    ]
                )
            if commit.step_update is not None:
                up = commit.step_update
                Step.objects.using(self.db).filter(task_id=task_pk, index=up.index).update(
                    status=up.status,
                    attempts=up.attempts,
                    result=up.result,
                    error=up.error,
                    # A resumed step keeps its first start (pg_commit.py does the same).
                    started_at=Coalesce(F("started_at"), Value(up.started_at, output_field=DateTimeField())),
                    finished_at=up.finished_at,
                    transcript=list(up.transcript),
                )
            for entry in commit.journal:  # the UPDATE above was the fence: it holds until the commit
                written = {"request_digest": entry.request_digest, "status": entry.status, "result": entry.result}
                written["completed_at"] = now if entry.status == "completed" else None
                JournalRow.objects.using(self.db).update_or_create(
                    key=entry.key,
                    defaults=written,
                    create_defaults={**written, "task_id": task_pk, "kind": entry.kind, "name": entry.name},
                )
            Checkpoint.objects.using(self.db).create(
                task_id=task_pk, seq=commit.base_checkpoint_seq + 1, event_seq=last_seq, state=state
            )
            if notify:
                task_status_changed(self.db, lease.task_id, commit.status, last_seq)
        return CommitResult.COMMITTED

    def _base_hash(self, lease: Lease, commit: TickCommit) -> str:
        """The hash of the event the commit follows. The claim read it with the task row (no extra
        round trip); after a conflict the row is read again. Should the log have moved on
        meanwhile, the commit's fence (last_event_seq) refuses it anyway."""
        if lease.task is not None and lease.task.last_event_seq == commit.base_event_seq:
            return lease.task.last_event_hash
        row = self._tasks().filter(pk=task_pk(lease.task_id), last_event_seq=commit.base_event_seq)
        return row.values_list("last_event_hash", flat=True).first() or ""

    def _why_not_committed(self, lease: Lease) -> CommitResult:
        row = self._tasks().filter(pk=lease.task_id).values("lease_epoch", "lease_owner").first()
        if row is None or row["lease_epoch"] != lease.epoch or row["lease_owner"] != lease.owner:
            return CommitResult.FENCED
        return CommitResult.CONFLICT

    def release(self, lease: Lease, *, retry_in: float = 0.0, refund_attempt: bool = False) -> bool:
        now = timezone.now()
        due = now + timedelta(seconds=retry_in)
        fields: dict[str, object] = {
            "lease_owner": None,
            "lease_expires_at": None,
            "next_run_at": due,
            # A released tick is rung again by its own retry (Celery's backoff, a Retry-After, a
            # breaker's countdown), so the sweeper treats a doorbell as sent for when it is due and
            # re-rings only if none is claimed within HORIZON_SWEEP_REDELIVER_AFTER after that.
            "enqueued_at": due,
            "updated_at": now,
        }
        if refund_attempt:
            fields["step_attempts"] = Greatest(F("step_attempts") - 1, 0)
        return bool(self._tasks().filter(pk=lease.task_id, lease_epoch=lease.epoch, lease_owner=lease.owner).update(**fields))

    def renew(self, leases: Sequence[Lease], *, lease_seconds: float) -> list[Lease]:
        """One UPDATE for every tick in flight in this process (the heartbeat's), fenced on epoch and
        owner; then, in the same transaction, which rows it holds: the rows it updated stay locked
        until the commit, and a row it did not update can never come to match (epochs only grow)."""
        if not leases:
            return []
        now = timezone.now()
        owned = Q()
        for lease in leases:
            owned |= Q(pk=task_pk(lease.task_id), lease_epoch=lease.epoch, lease_owner=lease.owner)
        with transaction.atomic(using=self.db):
            self._tasks().filter(owned).update(lease_expires_at=now + timedelta(seconds=lease_seconds))
            held = {(str(i), e) for i, e in self._tasks().filter(owned).values_list("id", "lease_epoch")}
        return [lease for lease in leases if (str(task_pk(lease.task_id)), lease.epoch) not in held]

    def lease_expires_at(self, task_id: str) -> datetime | None:
        return self._tasks().filter(pk=task_pk(task_id)).values_list("lease_expires_at", flat=True).first()

    def steps(self, task_id: str) -> list[StepRecord]:
        self._get(task_id)
        return [_step_record(s) for s in Step.objects.using(self.db).filter(task_id=task_id).order_by("index")]

    def _first(self, model: type[_M], where: str, params: list[object], order: str = "") -> _M | None:
        """One row by a fixed query. The three reads of every tick use this instead of a QuerySet:
        on a no-op tick, building the ORM query cost more than the round trip itself."""
        conn = connections[self.db]
        sql = f"SELECT * FROM {conn.ops.quote_name(model._meta.db_table)} WHERE {where} {order} LIMIT 1"
        rows = list(model.objects.using(self.db).raw(sql, params))  # type: ignore[attr-defined]
        return rows[0] if rows else None

    def _task_param(self, task_id: str) -> object:
        return AgentTask._meta.pk.get_db_prep_value(task_pk(task_id), connections[self.db])

    def step(self, task_id: str, index: int) -> StepRecord:
        row = self._first(Step, 'task_id = %s AND "index" = %s', [self._task_param(task_id), index])
        if row is None:
            raise KeyError(f"task {task_id} has no step {index}")
        return _step_record(row)

    def events(self, task_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        qs = Event.objects.using(self.db).filter(task_id=task_id, seq__gt=after_seq).order_by("seq")
        return [_event_record(e) for e in (qs[:limit] if limit is not None else qs)]

    def event(self, task_id: str, seq: int) -> EventRecord:
        return _event_record(Event.objects.using(self.db).get(task_id=task_id, seq=seq))

    def checkpoints(self, task_id: str) -> list[CheckpointRecord]:
        return [_checkpoint_record(c) for c in Checkpoint.objects.using(self.db).filter(task_id=task_id).order_by("seq")]

    def latest_checkpoint(self, task_id: str) -> CheckpointRecord | None:
        c = self._first(Checkpoint, "task_id = %s", [self._task_param(task_id)], order="ORDER BY seq DESC")
        return _checkpoint_record(c) if c else None

    def due_tasks(self, *, limit: int) -> list[str]:
        ids = self._tasks().filter(due_q(timezone.now())).order_by("next_run_at").values_list("id", flat=True)[:limit]
        return [str(i) for i in ids]

    def leased_tasks(self) -> list[tuple[str, str]]:
        rows = self._tasks().filter(lease_owner__isnull=False).values_list("id", "lease_owner")
        return [(str(i), str(o)) for i, o in rows]

    def break_lease(self, task_id: str, *, owner: str) -> bool:
        now = timezone.now()
        return bool(
            self._tasks()
            .filter(pk=task_id, lease_owner=owner)
            .update(lease_expires_at=now - timedelta(seconds=1), next_run_at=now)
        )

    # --- journal -----------------------------------------------------------------------------

    def journal_get(self, key: str) -> JournalEntry | None:
        row = self._first(JournalRow, f"{connections[self.db].ops.quote_name('key')} = %s", [key])
        return _journal_record(row) if row else None

    def _journal_write(
        self, lease: Lease, entry: JournalEntry, *, only_if_absent: bool = False, started: datetime | None = None
    ) -> bool:
        """Record an entry in one fenced statement: INSERT ... SELECT from the task row only while we own it.

        Returns False when nothing was written: the lease is stale, or (only_if_absent) the key exists.
        A model's answer is written without waiting for its WAL flush (see async_commit): losing it
        in a database crash costs one more model call, never a side effect. Tool entries wait: a
        non-idempotent tool's `started` row must be on disk before its effect happens.
        """
        conn = connections[self.db]
        q = conn.ops.quote_name
        now = conn.ops.adapt_datetimefield_value(timezone.now())
        result = JournalRow._meta.get_field("result").get_db_prep_save(entry.result, conn)
        names = ("key", "task_id", "kind", "name", "request_digest", "status", "result", "created_at", "completed_at")
        on_conflict = (
            "DO NOTHING"
            if only_if_absent
            else "DO UPDATE SET "
            + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in ("request_digest", "status", "result", "completed_at"))
        )
        fence = self._fence_sql(async_commit(conn, where=True) if entry.kind == "llm" else "")
        sql = (
            f"INSERT INTO {q(JournalRow._meta.db_table)} ({', '.join(q(c) for c in names)}) "
            f"SELECT %s, id, %s, %s, %s, %s, %s, %s, %s {fence} ON CONFLICT ({q('key')}) {on_conflict}"
        )
        completed_at = now if entry.status == "completed" else None
        created_at = conn.ops.adapt_datetimefield_value(started) if started is not None else now
        params = [entry.key, entry.kind, entry.name, entry.request_digest, entry.status, result, created_at, completed_at]
        with prepared_cursor(conn) as cursor:
            cursor.execute(sql, params + self._fence_params(lease))
            return cursor.rowcount > 0

    def journal_entries(self, task_id: str) -> list[JournalEntry]:
        rows = JournalRow.objects.using(self.db).filter(task_id=task_pk(task_id)).order_by("id")
        return [_journal_record(r) for r in rows]

    def journal_begin(self, lease: Lease, entry: JournalEntry) -> None:
        if not self._journal_write(lease, entry, only_if_absent=True):
            with transaction.atomic(using=self.db):
                self._fence(lease)  # nothing written: raise LeaseLost if the lease is why

    def journal_complete(self, lease: Lease, entry: JournalEntry) -> None:
        if not self._journal_write(lease, entry):
            raise LeaseLost(f"task {lease.task_id}: lease epoch {lease.epoch} is stale")

    def journal_run(self, lease: Lease, entry: JournalEntry, fn: Callable[[], JSON]) -> JournalEntry:
        # The tool's own writes join this transaction, so its effect and its journal row commit
        # together or not at all: exactly once, even if the worker dies at any point.
        with transaction.atomic(using=self.db):
            self._fence(lease)
            existing = JournalRow.objects.using(self.db).filter(key=entry.key).first()
            if existing is not None and existing.status == "completed":
                return _journal_record(existing)
            started = timezone.now()  # kept as the row's created_at: the timeline shows how long the call took
            done = JournalEntry(
                key=entry.key,
                kind=entry.kind,
                name=entry.name,
                request_digest=entry.request_digest,
                status="completed",
                result=fn(),
            )
            if not self._journal_write(
                lease, done, started=started
            ):  # unreachable under the row lock; if not, undo the tool's writes
                raise LeaseLost(f"task {lease.task_id}: lease epoch {lease.epoch} is stale")
            return done

    # --- outside a tick: operators, signals, the sweeper ---------------------------------------

    def operator_change(self, task_id: str, change: OperatorChange) -> EventRecord:
        with transaction.atomic(using=self.db):
            try:
                task = self._tasks().select_for_update().get(pk=task_pk(task_id))
            except AgentTask.DoesNotExist:
                raise TaskNotFound(task_id) from None
            if task.status not in change.from_statuses:
                allowed = ", ".join(sorted(change.from_statuses))
                raise InvalidInput(f"task {task_id} is {task.status}; this needs one of {allowed}")
            now = timezone.now()
            seq = task.last_event_seq + 1
            (event,) = chain_events(
                task_id, task.last_event_hash, [stamped(change.event, seq=seq, worker="operator", created_at=now)]
            )
            fields: dict[str, object] = {"last_event_seq": seq, "last_event_hash": event.hash, "updated_at": now}
            if change.status is not None:
                check_transition(task.status, change.status)
                # A new status fences any tick in flight: its epoch is gone, so it writes nothing more.
                fields.update(status=change.status, status_reason=change.status_reason, lease_owner=None)
                fields.update(lease_expires_at=None, lease_epoch=F("lease_epoch") + 1, step_attempts=0)
            if change.wake or (change.wake_if_waiting and task.status == TaskStatus.WAITING):
                fields.update(next_run_at=now, enqueued_at=now)
            elif change.clear_schedule:
                fields.update(next_run_at=None, enqueued_at=None)
            self._tasks().filter(pk=task.pk).update(**fields)
            event_row(task.pk, event).save(using=self.db)
            if change.status is not None:
                task_status_changed(self.db, str(task.pk), change.status, seq)
        return event

    def lease_ended(self, task_id: str, *, owner: str, lease_seconds: float) -> Lease | None:
        now = timezone.now()
        free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
        with transaction.atomic(using=self.db):
            updated = (
                self._tasks()
                .filter(free, pk=task_pk(task_id), status__in=TaskStatus.TERMINAL)
                .update(
                    lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds), lease_epoch=F("lease_epoch") + 1
                )
            )
            if not updated:
                return None
            task = self._get(task_id)
        return Lease(task_id=task_id, owner=owner, epoch=task.lease_epoch, task=_task_record(task))

    def spawn_children(self, lease: Lease, entry: JournalEntry, children: list[NewTask]) -> None:
        # One transaction under the fence: the journal row and the child rows commit together, so
        # a crash leaves either both or neither; ids derived from the key make a retry a no-op.
        with transaction.atomic(using=self.db):
            self._fence(lease)
            self._journal_write(lease, replace(entry, status="started"), only_if_absent=True)
            for child in children:
                self.create_task(child)

    def children(self, task_id: str) -> list[str]:
        return [str(i) for i in self._tasks().filter(parent_id=task_pk(task_id)).values_list("id", flat=True)]

    def signal_put(self, task_id: str, name: str, payload: JSON) -> SignalRecord:
        row = SignalRow.objects.using(self.db).create(task_id=task_pk(task_id), name=name, payload=payload)
        return SignalRecord(id=row.id, name=row.name, payload=row.payload, created_at=row.created_at)

    def signals_pending(self, task_id: str, names: list[str]) -> list[SignalRecord]:
        rows = SignalRow.objects.using(self.db).filter(task_id=task_pk(task_id), name__in=names, consumed_key__isnull=True)
        return [SignalRecord(id=r.id, name=r.name, payload=r.payload, created_at=r.created_at) for r in rows.order_by("id")]

    def signals_consume(self, task_id: str, ids: list[int], key: str) -> None:
        # Guarded by consumed_key IS NULL: a signal is consumed by exactly one wait.
        updated = (
            SignalRow.objects.using(self.db)
            .filter(task_id=task_pk(task_id), id__in=ids, consumed_key__isnull=True)
            .update(consumed_key=key, consumed_at=timezone.now())
        )
        if updated != len(ids):
            raise LeaseLost(f"task {task_id}: a signal was consumed by someone else meanwhile")

    # --- approvals -----------------------------------------------------------------------------

    def approval_get(self, task_id: str, key: str) -> ApprovalRecord | None:
        row = ApprovalRow.objects.using(self.db).filter(task_id=task_pk(task_id), key=key).select_related("decided_by").first()
        return approval_record(row) if row else None

    def approval_request(self, lease: Lease, approval: ApprovalRecord) -> ApprovalRecord:
        with transaction.atomic(using=self.db):
            self._fence(lease)  # a zombie asks nobody anything
            fields = {
                "kind": approval.kind,
                "step_index": approval.step_index,
                "plan_version": approval.plan_version,
                "action": approval.action,
                "digest": approval.digest,
            }
            rows = ApprovalRow.objects.using(self.db)
            row = rows.select_for_update().filter(task_id=task_pk(approval.task_id), key=approval.key).first()
            if row is None:
                row = rows.create(task_id=task_pk(approval.task_id), key=approval.key, **fields)
            elif row.status == ApprovalRow.Status.STALE:
                # A new proposal under the same key: asked afresh, the old decision cleared.
                for name, value in fields.items():
                    setattr(row, name, value)
                row.status, row.decided_by, row.decided_at, row.comment, row.edited_arguments = "pending", None, None, "", None
                row.requested_at = timezone.now()
                row.save(using=self.db)
        return approval_record(row)

    def approval_mark_stale(self, lease: Lease, approval_id: int) -> None:
        with transaction.atomic(using=self.db):
            self._fence(lease)
            ApprovalRow.objects.using(self.db).filter(pk=approval_id).update(status=ApprovalRow.Status.STALE)

    # --- workspace ---------------------------------------------------------------------------

    def workspace_read(self, task_id: str, path: str) -> str | None:
        row = WorkspaceFile.objects.using(self.db).filter(task_id=task_id, path=path).first()
        return row.content if row else None

    def workspace_write(self, task_id: str, path: str, content: str) -> None:
        WorkspaceFile.objects.using(self.db).update_or_create(task_id=task_id, path=path, defaults={"content": content})

    def workspace_list(self, task_id: str) -> list[str]:
        return list(WorkspaceFile.objects.using(self.db).filter(task_id=task_id).order_by("path").values_list("path", flat=True))


# Every method a tick (or an operator, the sweeper, the heartbeat) calls gives its pooled connection
# back when it returns, so nothing holds one while it waits for a model or a tool (tasks_app/db_pool.py).
_BORROWING = """
    create_task get_task claim load commit release renew lease_expires_at steps step events event checkpoints
    latest_checkpoint due_tasks leased_tasks break_lease journal_get journal_entries journal_begin journal_complete
    journal_run operator_change lease_ended spawn_children children signal_put signals_pending signals_consume
    approval_get approval_request approval_mark_stale workspace_read workspace_write workspace_list
"""
for _name in _BORROWING.split():
    setattr(DjangoStore, _name, borrows(getattr(DjangoStore, _name)))
