"""DjangoStore: the agents.store.Store protocol on the ORM (PostgreSQL in production, SQLite embedded).

Fencing: a claim is one compare-and-set UPDATE on lease_epoch. Every later write of the tick runs
in a transaction that starts with an UPDATE guarded by that epoch (which also renews the lease
and takes the row lock), so a zombie whose lease was taken over writes nothing, and a claim
cannot slip between the guard and the writes behind it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.errors import LeaseLost, TaskNotFound
from agents.status import StepStatus, TaskStatus, check_transition
from agents.store import CommitResult
from agents.types import (
    JSON,
    CheckpointRecord,
    EventRecord,
    JournalEntry,
    Lease,
    NewTask,
    Snapshot,
    StepRecord,
    TaskRecord,
    TickCommit,
)
from tasks_app.models import AgentTask, Checkpoint, Event, Step, WorkspaceFile
from tasks_app.models import JournalEntry as JournalRow

_CLAIMABLE = sorted(TaskStatus.CLAIMABLE)


def _task_pk(task_id: str) -> uuid.UUID:
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
    )


def _event_record(e: Event) -> EventRecord:
    return EventRecord(
        seq=e.seq, type=e.type, payload=e.payload, schema_version=e.schema_version, worker=e.worker, created_at=e.created_at
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
    )


def _checkpoint_record(c: Checkpoint) -> CheckpointRecord:
    return CheckpointRecord(seq=c.seq, event_seq=c.event_seq, state=c.state)


def _journal_record(j: JournalRow) -> JournalEntry:
    return JournalEntry(key=j.key, kind=j.kind, name=j.name, request_digest=j.request_digest, status=j.status, result=j.result)


class DjangoStore:
    def __init__(self, using: str = "default") -> None:
        self.db = using

    def _tasks(self):  # type: ignore[no-untyped-def]
        return AgentTask.objects.using(self.db)

    # --- tasks -----------------------------------------------------------------------------

    def create_task(self, new: NewTask) -> str:
        from agents.events import TASK_CREATED, new_event

        created = new_event(TASK_CREATED, {"goal": new.goal, "profile": new.profile})
        with transaction.atomic(using=self.db):
            task = self._tasks().create(
                goal=new.goal,
                context=new.context,
                profile=new.profile,
                max_steps=new.max_steps,
                max_attempts=new.max_attempts,
                next_run_at=timezone.now(),
                last_event_seq=1,
            )
            Event.objects.using(self.db).create(
                task=task, seq=1, type=created.type, schema_version=created.schema_version, payload=created.payload
            )
        return str(task.id)

    def _get(self, task_id: str) -> AgentTask:
        try:
            return self._tasks().get(pk=_task_pk(task_id))
        except AgentTask.DoesNotExist:
            raise TaskNotFound(task_id) from None

    def get_task(self, task_id: str) -> TaskRecord:
        return _task_record(self._get(task_id))

    def claim(self, task_id: str, *, owner: str, lease_seconds: float) -> Lease | None:
        now = timezone.now()
        row = (
            self._tasks()
            .filter(pk=_task_pk(task_id))
            .values("lease_epoch", "lease_owner", "lease_expires_at", "status", "next_run_at")
            .first()
        )
        if row is None:
            raise TaskNotFound(task_id)
        # A cheap read first: duplicate doorbells for a busy task stop here without a write.
        if row["status"] not in TaskStatus.CLAIMABLE or row["next_run_at"] is None or row["next_run_at"] > now:
            return None
        if row["lease_expires_at"] is not None and row["lease_expires_at"] >= now:
            return None
        # The compare-and-set: of any number of concurrent claimers that read the same epoch and
        # owner, exactly one UPDATE matches them.
        previous_owner = row["lease_owner"]
        owner_filter = Q(lease_owner__isnull=True) if previous_owner is None else Q(lease_owner=previous_owner)
        with transaction.atomic(using=self.db):
            self._asynchronous_commit()
            claimed = (
                self._tasks()
                .filter(owner_filter, pk=task_id, lease_epoch=row["lease_epoch"], status__in=_CLAIMABLE, next_run_at__lte=now)
                .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
                .update(
                    status=TaskStatus.RUNNING,
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    lease_epoch=F("lease_epoch") + 1,
                    step_attempts=F("step_attempts") + 1,
                    resume_count=F("resume_count") + (1 if previous_owner else 0),
                    updated_at=now,
                )
            )
        if not claimed:
            return None
        return Lease(
            task_id=task_id, owner=owner, epoch=row["lease_epoch"] + 1, seconds=lease_seconds, took_over_from=previous_owner
        )

    def _asynchronous_commit(self) -> None:
        """Let this transaction commit without waiting for its WAL flush (PostgreSQL only).

        Used for writes whose loss in a *database* crash is harmless, to save an fsync per tick:
        - a claim: if it is lost, the row falls back to the old epoch and owner, and every later
          write of the would-be owner is guarded by its epoch and its unique owner id, so it is
          fenced; another worker simply claims again;
        - a model answer in the journal: if it is lost, the step pays for that call again.
        A worker crash loses neither (the commit is in the server's WAL buffers), and WAL is flushed
        in order, so a later synchronous commit (the tick's) makes them durable too.
        """
        if connections[self.db].vendor == "postgresql":
            with connections[self.db].cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")

    def _guard(self, lease: Lease) -> None:
        """Inside a transaction: renew the lease if and only if we still own it (takes the row lock)."""
        renewed = (
            self._tasks()
            .filter(pk=lease.task_id, lease_epoch=lease.epoch, lease_owner=lease.owner)
            .update(lease_expires_at=timezone.now() + timedelta(seconds=lease.seconds))
        )
        if not renewed:
            raise LeaseLost(f"task {lease.task_id}: lease epoch {lease.epoch} is stale")

    def load(self, lease: Lease) -> Snapshot:
        task = self._get(lease.task_id)
        if task.lease_epoch != lease.epoch or task.lease_owner != lease.owner:
            raise LeaseLost(f"task {lease.task_id}: lease epoch {lease.epoch} is stale")
        checkpoint = self.latest_checkpoint(lease.task_id)
        after = checkpoint.event_seq if checkpoint else 0
        events = tuple(self.events(lease.task_id, after_seq=after))
        return Snapshot(task=_task_record(task), checkpoint=checkpoint, events=events)

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
            "next_run_at": now if commit.runnable else None,
            "steps_completed": state.get("next_step", 0),
            "model_calls": state.get("model_calls", 0),
            "tool_calls": state.get("tool_calls", 0),
            "prompt_tokens": state.get("prompt_tokens", 0),
            "completion_tokens": state.get("completion_tokens", 0),
            "updated_at": now,
        }
        if commit.result is not None:
            fields["result"] = commit.result
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
                row = self._tasks().filter(pk=lease.task_id).values("lease_epoch", "lease_owner").first()
                if row is None or row["lease_epoch"] != lease.epoch or row["lease_owner"] != lease.owner:
                    return CommitResult.FENCED
                return CommitResult.CONFLICT
            task_pk = lease.task_id
            Event.objects.using(self.db).bulk_create(
                [
                    Event(
                        task_id=task_pk,
                        seq=commit.base_event_seq + i + 1,
                        type=e.type,
                        schema_version=e.schema_version,
                        payload=e.payload,
                        worker=lease.owner,
                    )
                    for i, e in enumerate(commit.events)
                ]
            )
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
                    started_at=up.started_at,
                    finished_at=up.finished_at,
                )
            Checkpoint.objects.using(self.db).create(
                task_id=task_pk, seq=commit.base_checkpoint_seq + 1, event_seq=last_seq, state=state
            )
        return CommitResult.COMMITTED

    def release(self, lease: Lease, *, retry_in: float = 0.0) -> bool:
        now = timezone.now()
        return bool(
            self._tasks()
            .filter(pk=lease.task_id, lease_epoch=lease.epoch, lease_owner=lease.owner)
            .update(lease_owner=None, lease_expires_at=None, next_run_at=now + timedelta(seconds=retry_in), updated_at=now)
        )

    def steps(self, task_id: str) -> list[StepRecord]:
        self._get(task_id)
        return [_step_record(s) for s in Step.objects.using(self.db).filter(task_id=task_id).order_by("index")]

    def step(self, task_id: str, index: int) -> StepRecord:
        return _step_record(Step.objects.using(self.db).get(task_id=task_id, index=index))

    def events(self, task_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        qs = Event.objects.using(self.db).filter(task_id=task_id, seq__gt=after_seq).order_by("seq")
        return [_event_record(e) for e in (qs[:limit] if limit is not None else qs)]

    def event(self, task_id: str, seq: int) -> EventRecord:
        return _event_record(Event.objects.using(self.db).get(task_id=task_id, seq=seq))

    def checkpoints(self, task_id: str) -> list[CheckpointRecord]:
        return [_checkpoint_record(c) for c in Checkpoint.objects.using(self.db).filter(task_id=task_id).order_by("seq")]

    def latest_checkpoint(self, task_id: str) -> CheckpointRecord | None:
        c = Checkpoint.objects.using(self.db).filter(task_id=task_id).order_by("-seq").first()
        return _checkpoint_record(c) if c else None

    def due_tasks(self, *, limit: int) -> list[str]:
        now = timezone.now()
        ids = (
            self._tasks()
            .filter(status__in=_CLAIMABLE, next_run_at__lte=now)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
            .order_by("next_run_at")
            .values_list("id", flat=True)[:limit]
        )
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
        row = JournalRow.objects.using(self.db).filter(key=key).first()
        return _journal_record(row) if row else None

    def _journal_write(self, lease: Lease, entry: JournalEntry, *, only_if_absent: bool = False) -> None:
        defaults = {
            "task_id": lease.task_id,
            "kind": entry.kind,
            "name": entry.name,
            "request_digest": entry.request_digest,
            "status": entry.status,
            "result": entry.result,
            "completed_at": timezone.now() if entry.status == "completed" else None,
        }
        rows = JournalRow.objects.using(self.db)
        # Under the guard's row lock no other writer for this task can race us, so a plain
        # UPDATE-then-INSERT is enough (and cheaper than update_or_create's savepoints).
        if only_if_absent:
            if not rows.filter(key=entry.key).exists():
                rows.create(key=entry.key, **defaults)
        elif not rows.filter(key=entry.key).update(**defaults):
            rows.create(key=entry.key, **defaults)

    def journal_begin(self, lease: Lease, entry: JournalEntry) -> None:
        with transaction.atomic(using=self.db):
            self._guard(lease)
            self._journal_write(lease, entry, only_if_absent=True)

    def journal_complete(self, lease: Lease, entry: JournalEntry) -> None:
        with transaction.atomic(using=self.db):
            if entry.kind == "llm":
                self._asynchronous_commit()
            # A tool's completion stays synchronous: losing it would turn a finished
            # non-idempotent call into an unknown outcome.
            self._guard(lease)
            self._journal_write(lease, entry)

    def journal_run(self, lease: Lease, entry: JournalEntry, fn: Callable[[], JSON]) -> JournalEntry:
        # The tool's own writes join this transaction, so its effect and its journal row commit
        # together or not at all: exactly once, even if the worker dies at any point.
        with transaction.atomic(using=self.db):
            self._guard(lease)
            existing = JournalRow.objects.using(self.db).filter(key=entry.key).first()
            if existing is not None and existing.status == "completed":
                return _journal_record(existing)
            done = JournalEntry(
                key=entry.key,
                kind=entry.kind,
                name=entry.name,
                request_digest=entry.request_digest,
                status="completed",
                result=fn(),
            )
            self._journal_write(lease, done)
            return done

    # --- workspace ---------------------------------------------------------------------------

    def workspace_read(self, task_id: str, path: str) -> str | None:
        row = WorkspaceFile.objects.using(self.db).filter(task_id=task_id, path=path).first()
        return row.content if row else None

    def workspace_write(self, task_id: str, path: str, content: str) -> None:
        WorkspaceFile.objects.using(self.db).update_or_create(task_id=task_id, path=path, defaults={"content": content})

    def workspace_list(self, task_id: str) -> list[str]:
        return list(WorkspaceFile.objects.using(self.db).filter(task_id=task_id).order_by("path").values_list("path", flat=True))
