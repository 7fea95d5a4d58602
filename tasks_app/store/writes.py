"""The store's writes besides a tick's claim and commit: creating tasks, an operator's changes, and
the writes fenced on a lease, each of which writes only while the task row still carries the lease's
epoch and owner, reading it under a lock that a new claim must wait for."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.errors import InvalidInput, LeaseLost, TaskNotFound
from agents.events import TASK_CREATED, created_payload, new_event
from agents.status import TaskStatus, check_transition
from agents.types import JSON, ApprovalRecord, EventRecord, JournalEntry, Lease, NewTask, OperatorChange, SignalRecord
from tasks_app.models import AgentTask, WorkspaceFile
from tasks_app.models import Approval as ApprovalRow
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.models import Signal as SignalRow
from tasks_app.services.webhooks import task_status_changed
from tasks_app.store.reads import StoreReads
from tasks_app.store.records import JOURNAL, SIGNALS, TASKS, approval_record, chain_events, event_row, stamped, task_pk
from tasks_app.store.sql import FENCE_ROW_LOCK, FENCE_SQL, JOURNAL_IF_ABSENT, JOURNAL_UPSERT, JOURNAL_WRITE_SQL


class StoreWrites(StoreReads):
    def create_task(self, new: NewTask) -> str:
        created = new_event(TASK_CREATED, created_payload(new))
        # A sub-agent's id is derived from its spawn's journal key, so that a repeated spawn finds it.
        task_id, now = (task_pk(new.task_id) if new.task_id is not None else uuid.uuid4()), timezone.now()
        (first,) = chain_events(str(task_id), "", [stamped(created, seq=1, worker="", created_at=now)])
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

    def break_lease(self, task_id: str, *, owner: str) -> bool:
        now = timezone.now()
        return bool(
            self._tasks()
            .filter(pk=task_id, lease_owner=owner)
            .update(lease_expires_at=now - timedelta(seconds=1), next_run_at=now)
        )

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
            fields: dict[str, Any] = {"last_event_seq": seq, "last_event_hash": event.hash, "updated_at": now}
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
        return Lease(task_id=task_id, owner=owner, epoch=task.lease_epoch, task=TASKS.from_row(task))

    def signal_put(self, task_id: str, name: str, payload: JSON) -> SignalRecord:
        return SIGNALS.from_row(SignalRow.objects.using(self.db).create(task_id=task_pk(task_id), name=name, payload=payload))

    def workspace_write(self, task_id: str, path: str, content: str) -> None:
        WorkspaceFile.objects.using(self.db).update_or_create(task_id=task_id, path=path, defaults={"content": content})  # type: ignore[misc]

    def _fence_sql(self, also: str = "") -> str:
        """The fence as SQL. A database with row locks takes a shared one, which a concurrent claim's
        UPDATE waits for; SQLite has none: its writers hold the database-wide write lock."""
        lock = FENCE_ROW_LOCK if connections[self.db].features.has_select_for_update else ""
        return FENCE_SQL.format(also=also, lock=lock)

    def _fence_params(self, lease: Lease) -> list[Any]:
        return [self._task_param(lease.task_id), lease.epoch, lease.owner]

    def _fence(self, lease: Lease) -> None:
        """Inside a transaction: hold the task row against a new claim, if and only if we still own it."""
        with connections[self.db].cursor() as cursor:
            cursor.execute(f"SELECT 1 {self._fence_sql()}", self._fence_params(lease))
            if cursor.fetchone() is None:
                raise LeaseLost.stale(lease.task_id, lease.epoch)

    def _journal_sql(self, *, only_if_absent: bool, also: str = "") -> str:
        on_conflict = JOURNAL_IF_ABSENT if only_if_absent else JOURNAL_UPSERT
        return JOURNAL_WRITE_SQL.format(fence=self._fence_sql(also), on_conflict=on_conflict)

    def _journal_params(self, lease: Lease, entry: JournalEntry, started: datetime | None) -> list[Any]:
        conn = connections[self.db]
        now = conn.ops.adapt_datetimefield_value(timezone.now())
        result = JournalRow._meta.get_field("result").get_db_prep_save(entry.result, conn)
        completed_at = now if entry.status == "completed" else None
        created_at = conn.ops.adapt_datetimefield_value(started) if started is not None else now
        entry_params = [entry.key, entry.kind, entry.name, entry.request_digest, entry.status, result, created_at, completed_at]
        return entry_params + self._fence_params(lease)

    def _journal_write(
        self, lease: Lease, entry: JournalEntry, *, only_if_absent: bool = False, started: datetime | None = None
    ) -> bool:
        """Record an entry in one fenced statement: INSERT ... SELECT from the task row only while we own it.
        False when nothing was written: the lease is stale, or (only_if_absent) the key exists."""
        with connections[self.db].cursor() as cursor:
            sql = self._journal_sql(only_if_absent=only_if_absent)
            cursor.execute(sql, self._journal_params(lease, entry, started))
            return bool(cursor.rowcount > 0)

    def journal_begin(self, lease: Lease, entry: JournalEntry) -> None:
        if not self._journal_write(lease, entry, only_if_absent=True):
            with transaction.atomic(using=self.db):
                self._fence(lease)  # nothing written: raise LeaseLost if the lease is why

    def journal_complete(self, lease: Lease, entry: JournalEntry) -> None:
        if not self._journal_write(lease, entry):
            raise LeaseLost.stale(lease.task_id, lease.epoch)

    def journal_run(self, lease: Lease, entry: JournalEntry, fn: Callable[[], JSON]) -> JournalEntry:
        # The tool's own writes join this transaction, so its effect and its journal row commit
        # together or not at all: exactly once, even if the worker dies at any point.
        with transaction.atomic(using=self.db):
            self._fence(lease)
            existing = JournalRow.objects.using(self.db).filter(key=entry.key).first()
            if existing is not None and existing.status == "completed":
                return JOURNAL.from_row(existing)
            started = timezone.now()  # kept as the row's created_at: the timeline shows how long the call took
            done = replace(entry, status="completed", result=fn())
            if not self._journal_write(lease, done, started=started):  # unreachable under the row lock; else undo the tool
                raise LeaseLost.stale(lease.task_id, lease.epoch)
            return done

    def spawn_children(self, lease: Lease, entry: JournalEntry, children: list[NewTask]) -> None:
        # One transaction under the fence: the journal row and the child rows commit together, so
        # a crash leaves either both or neither; ids derived from the key make a retry a no-op.
        with transaction.atomic(using=self.db):
            self._fence(lease)
            self._journal_write(lease, replace(entry, status="started"), only_if_absent=True)
            for child in children:
                self.create_task(child)

    def signals_consume(self, task_id: str, ids: list[int], key: str) -> None:
        # Guarded by consumed_key IS NULL: a signal is consumed by exactly one wait.
        updated = (
            SignalRow.objects.using(self.db)
            .filter(task_id=task_pk(task_id), id__in=ids, consumed_key__isnull=True)
            .update(consumed_key=key, consumed_at=timezone.now())
        )
        if updated != len(ids):
            raise LeaseLost(f"task {task_id}: a signal was consumed by someone else meanwhile")

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
