"""DjangoStore: the agents.store.Store protocol on the ORM, on SQLite and on PostgreSQL.

Fencing: a claim is one conditional UPDATE that increments lease_epoch. Every later write of the
tick writes only if the task row still carries that epoch and owner (tasks_app/store/writes.py), so
a zombie whose lease was taken over writes nothing. PostgresStore (postgres.py) replaces the claim,
the commit and the journal writes with single PostgreSQL statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from agents.errors import BuildSuperseded, TaskNotFound
from agents.status import StepStatus, TaskStatus, check_transition
from agents.store import CommitResult
from agents.types import Build, EventRecord, Lease, Snapshot, TickCommit
from tasks_app.db_pool import borrows
from tasks_app.models import Checkpoint, Event, Step
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.services.webhooks import NOTIFY_STATUSES, task_status_changed
from tasks_app.store.reads import CLAIMABLE
from tasks_app.store.records import TASKS, chain_events, event_row, stamped, task_pk
from tasks_app.store.sql import CLAIM_SQL
from tasks_app.store.writes import StoreWrites

UNRANKED_LIMIT = 2**62  # an unranked runner's WHERE: every task
BUILD_RETRY_SECONDS = 5.0  # a tick an older build left alone is rung again this much later


def _build_set(build: Build | None) -> tuple[object, ...]:
    """The claim's SET parameters for the build (an unranked runner: a rank no row is below)."""
    if build is None or build.rank is None:
        return (-1, -1, -1, "")
    return (build.rank, build.rank, build.rank, f" {build.id}")


def commit_fields(commit: TickCommit, now: datetime) -> dict[str, Any]:
    """The task row's columns as a commit leaves them (but last_event_hash)."""
    state = commit.checkpoint_state
    fields: dict[str, Any] = {
        "status": commit.status,
        "status_reason": commit.status_reason,
        "last_event_seq": commit.base_event_seq + len(commit.events),
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
    return fields


class DjangoStore(StoreWrites):
    def _claim_params(self, task_id: str, owner: str, lease_seconds: float, build: Build | None) -> list[Any]:
        """CLAIM_SQL's parameters, in its placeholders' order."""
        now = timezone.now()
        at = connections[self.db].ops.adapt_datetimefield_value
        rank = UNRANKED_LIMIT if build is None or build.rank is None else build.rank
        expires = at(now + timedelta(seconds=lease_seconds))
        fence = [self._task_param(task_id), *CLAIMABLE, at(now), at(now), rank]  # the WHERE's
        return [TaskStatus.RUNNING, owner, expires, at(now), *_build_set(build), *fence]

    def claim(self, task_id: str, *, owner: str, lease_seconds: float, build: Build | None = None) -> Lease | None:
        """One conditional UPDATE ... RETURNING: claimable, due, and no live lease, or nothing happens.
        Concurrent claimers serialise on the row; the WHERE is re-checked after the wait: one wins."""
        lease = self._claimed(task_id, owner, self._claim_params(task_id, owner, lease_seconds, build))
        if lease is None:
            self._not_claimed(task_id, build)
        return lease

    def _claimed(self, task_id: str, owner: str, params: list[Any]) -> Lease | None:
        """The claim's statement: the lease it took, or None (PostgresStore runs its own)."""
        claimed = list(self._tasks().raw(f"{CLAIM_SQL} RETURNING *", params))
        if not claimed:
            return None
        task = claimed[0]
        record = TASKS.from_row(task)
        return Lease(task_id=task_id, owner=owner, epoch=record.lease_epoch, took_over_from=task.taken_over_from, task=record)

    def _not_claimed(self, task_id: str, build: Build | None = None) -> None:
        """Why a claim took nothing, when it is an error: an unknown task, or a newer build's."""
        found = self._tasks().filter(pk=task_pk(task_id)).values_list("build_rank", "status").first()
        if found is None:
            raise TaskNotFound(task_id)
        if build is not None and build.rank is not None and found[0] > build.rank and found[1] in CLAIMABLE:
            raise BuildSuperseded(
                f"task {task_id} was ticked by a newer build than {build.id!r}", retry_after=BUILD_RETRY_SECONDS
            )

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
        fields = commit_fields(commit, now)
        new = [
            stamped(e, seq=commit.base_event_seq + i + 1, worker=lease.owner, created_at=now) for i, e in enumerate(commit.events)
        ]
        events = chain_events(lease.task_id, self._base_hash(lease, commit), new)
        if events:
            fields["last_event_hash"] = events[-1].hash
        return self._write_commit(lease, commit, fields, events, now)

    def _write_commit(
        self, lease: Lease, commit: TickCommit, fields: dict[str, Any], events: list[EventRecord], now: datetime
    ) -> CommitResult:
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
            Event.objects.using(self.db).bulk_create([event_row(lease.task_id, e) for e in events])
            self._write_steps(lease.task_id, commit)
            self._write_journal(lease.task_id, commit, now)
            last_seq = fields["last_event_seq"]
            Checkpoint.objects.using(self.db).create(
                task_id=lease.task_id, seq=commit.base_checkpoint_seq + 1, event_seq=last_seq, state=commit.checkpoint_state
            )
            if commit.status in NOTIFY_STATUSES:
                task_status_changed(self.db, lease.task_id, commit.status, last_seq)
        return CommitResult.COMMITTED

    def _write_steps(self, task_id: str, commit: TickCommit) -> None:
        steps = Step.objects.using(self.db)
        if commit.truncate_steps_from is not None:
            steps.filter(task_id=task_id, index__gte=commit.truncate_steps_from).delete()  # type: ignore[misc]
        if commit.new_steps:
            steps.bulk_create(
                [
                    Step(
                        task_id=task_id,
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
        if (up := commit.step_update) is not None:
            steps.filter(task_id=task_id, index=up.index).update(  # type: ignore[misc]
                status=up.status,
                attempts=up.attempts,
                result=up.result,
                error=up.error,
                # A resumed step keeps its first start (PostgresStore's commit does the same).
                started_at=Coalesce(F("started_at"), Value(up.started_at, output_field=DateTimeField())),
                finished_at=up.finished_at,
                transcript=list(up.transcript),
            )

    def _write_journal(self, task_id: str, commit: TickCommit, now: datetime) -> None:
        for entry in commit.journal:  # the commit's UPDATE was the fence: it holds until the commit
            written: dict[str, object] = {"request_digest": entry.request_digest, "status": entry.status, "result": entry.result}
            written["completed_at"] = now if entry.status == "completed" else None
            JournalRow.objects.using(self.db).update_or_create(
                key=entry.key,
                defaults=written,
                create_defaults={**written, "task_id": task_id, "kind": entry.kind, "name": entry.name},
            )

    def _base_hash(self, lease: Lease, commit: TickCommit) -> str:
        """The hash of the event the commit follows. The claim read it with the task row; after a
        conflict the row is read again (should the log have moved on, the commit's fence refuses it)."""
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
        fields: dict[str, Any] = {
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


# Every method a tick (or an operator, the sweeper, the heartbeat) calls gives its pooled connection
# back when it returns, so nothing holds one while it waits for a model or a tool (tasks_app/db_pool.py).
BORROWING = (
    "create_task get_task claim load commit release renew lease_expires_at steps step events event checkpoints "
    "latest_checkpoint due_tasks leased_tasks break_lease journal_get journal_entries journal_begin journal_complete "
    "journal_run operator_change lease_ended spawn_children children signal_put signals_pending signals_consume "
    "approval_get approval_request approval_mark_stale workspace_read workspace_write workspace_list"
)
for _name in BORROWING.split():
    setattr(DjangoStore, _name, borrows(getattr(DjangoStore, _name)))
