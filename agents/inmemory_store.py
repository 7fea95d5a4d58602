"""An in-memory Store for unit tests and single-process use. Same rules as the ORM store.

One lock serialises every operation, standing in for the database's row lock; a "transaction"
works on copies and swaps them in only when every check passed, so a failed write leaves nothing.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agents.audit import chain
from agents.errors import BuildSuperseded, InvalidInput, LeaseLost
from agents.events import TASK_CREATED, created_payload, new_event
from agents.inmemory_records import InMemoryJournalSignalsApprovals, StoredTask
from agents.status import JournalStatus, StepStatus, TaskStatus, check_transition
from agents.store import CommitResult, Store
from agents.types import (
    Build,
    CheckpointRecord,
    EventRecord,
    JournalEntry,
    Lease,
    NewTask,
    OperatorChange,
    Snapshot,
    StepRecord,
    TaskRecord,
    TickCommit,
)


class InMemoryStore(InMemoryJournalSignalsApprovals):
    """Every role of agents/store.py in one process (mypy checks it against Store below)."""

    # --- tasks -----------------------------------------------------------------------------

    def create_task(self, new: NewTask) -> str:
        now = self._clock()
        task_id = new.task_id or str(uuid.uuid4())
        if new.task_id is not None and new.task_id in self._tasks:
            return task_id  # created before under this id: once only
        record = TaskRecord(
            id=task_id,
            goal=new.goal,
            context=copy.deepcopy(new.context),
            profile=new.profile,
            status=TaskStatus.PENDING,
            status_reason="",
            result=None,
            max_steps=new.max_steps,
            max_attempts=new.max_attempts,
            step_attempts=0,
            last_event_seq=1,
            checkpoint_seq=0,
            lease_owner=None,
            lease_epoch=0,
            resume_count=0,
            created_at=now,
            updated_at=now,
            profile_config=copy.deepcopy(new.profile_config),
            parent_id=new.parent_id,
        )
        parent = self._tasks.get(new.parent_id) if new.parent_id else None
        if parent is not None and parent.record.builds:
            # A sub-agent starts on the build that spawned it: no older build takes it.
            record = replace(record, build_rank=parent.record.build_rank, builds=" " + parent.record.builds.split()[-1])
        created = new_event(TASK_CREATED, created_payload(new))
        (event,) = chain(
            task_id,
            "",  # the first event of a task chains to nothing
            [EventRecord(1, created.type, created.payload, created.schema_version, created_at=now)],
        )
        record = replace(record, last_event_hash=event.hash)
        with self._lock:
            self._tasks[task_id] = StoredTask(record=record, next_run_at=now, events=[event], parent_id=new.parent_id)
        return task_id

    def get_task(self, task_id: str) -> TaskRecord:
        with self._lock:
            return self._get(task_id).record

    def claim(self, task_id: str, *, owner: str, lease_seconds: float, build: Build | None = None) -> Lease | None:
        with self._lock:
            task = self._get(task_id)
            now = self._clock()
            rec = task.record
            if rec.status not in TaskStatus.CLAIMABLE:
                return None
            if build is not None and build.rank is not None and rec.build_rank > build.rank:
                raise BuildSuperseded(f"task {task_id} was ticked by a newer build than {build.id!r}", retry_after=5.0)
            if task.lease_expires_at is not None and task.lease_expires_at >= now:
                return None
            if task.next_run_at is None or task.next_run_at > now:
                return None
            took_over = rec.lease_owner
            if build is not None and build.rank is not None and rec.build_rank < build.rank:
                rec = replace(rec, build_rank=build.rank, builds=f"{rec.builds} {build.id}")
            task.record = replace(
                rec,
                status=TaskStatus.RUNNING,
                lease_owner=owner,
                lease_epoch=rec.lease_epoch + 1,
                step_attempts=rec.step_attempts + 1,
                resume_count=rec.resume_count + (1 if took_over else 0),
                updated_at=now,
            )
            task.lease_expires_at = now + timedelta(seconds=lease_seconds)
            return Lease(task_id=task_id, owner=owner, epoch=task.record.lease_epoch, took_over_from=took_over, task=task.record)

    def load(self, lease: Lease) -> Snapshot:
        with self._lock:
            task = self._get(lease.task_id)
            checkpoint = task.checkpoints[-1] if task.checkpoints else None
            after = checkpoint.event_seq if checkpoint else 0
            return Snapshot(task=task.record, checkpoint=checkpoint, events=tuple(e for e in task.events if e.seq > after))

    def commit(self, lease: Lease, commit: TickCommit) -> CommitResult:
        with self._lock:
            try:
                task = self._guard(lease)
            except LeaseLost:
                return CommitResult.FENCED
            now = self._clock()
            rec = task.record
            if rec.last_event_seq != commit.base_event_seq or rec.checkpoint_seq != commit.base_checkpoint_seq:
                return CommitResult.CONFLICT
            check_transition(rec.status, commit.status)
            events = chain(
                lease.task_id,
                rec.last_event_hash,
                [
                    EventRecord(
                        seq=rec.last_event_seq + i + 1,
                        type=e.type,
                        payload=copy.deepcopy(e.payload),
                        schema_version=e.schema_version,
                        worker=lease.owner,
                        created_at=now,
                    )
                    for i, e in enumerate(commit.events)
                ],
            )
            steps = dict(task.steps)
            if commit.truncate_steps_from is not None:
                steps = {i: st for i, st in steps.items() if i < commit.truncate_steps_from}
            for spec in commit.new_steps:
                steps[spec.index] = StepRecord(
                    index=spec.index,
                    title=spec.title,
                    instructions=spec.instructions,
                    depends_on=spec.depends_on,
                    plan_version=commit.plan_version,
                    status=StepStatus.PENDING,
                    attempts=0,
                    result=None,
                    error="",
                    started_at=None,
                    finished_at=None,
                    requires_approval=spec.needs_approval,
                    expected_minutes=spec.expected_minutes,
                )
            if commit.step_update is not None:
                up = commit.step_update
                steps[up.index] = replace(
                    steps[up.index],
                    status=up.status,
                    attempts=up.attempts,
                    result=copy.deepcopy(up.result),
                    error=up.error,
                    started_at=up.started_at,
                    finished_at=up.finished_at,
                    transcript=copy.deepcopy(up.transcript),
                )
            last_seq = rec.last_event_seq + len(events)
            checkpoint = CheckpointRecord(
                seq=rec.checkpoint_seq + 1, event_seq=last_seq, state=copy.deepcopy(commit.checkpoint_state)
            )
            task.events.extend(events)
            task.checkpoints.append(checkpoint)
            task.steps = steps
            task.record = replace(
                rec,
                status=commit.status,
                status_reason=commit.status_reason,
                result=copy.deepcopy(commit.result) if commit.result is not None else rec.result,
                last_event_seq=last_seq,
                last_event_hash=events[-1].hash if events else rec.last_event_hash,
                checkpoint_seq=checkpoint.seq,
                step_attempts=0,
                lease_owner=None,
                updated_at=now,
            )
            task.lease_expires_at = None
            task.next_run_at = now if commit.runnable else commit.wake_at
            for entry in commit.journal:
                self._journal[entry.key] = replace(entry, result=copy.deepcopy(entry.result))
            return CommitResult.COMMITTED

    def release(self, lease: Lease, *, retry_in: float = 0.0, refund_attempt: bool = False) -> bool:
        with self._lock:
            try:
                task = self._guard(lease)
            except LeaseLost:
                return False
            now = self._clock()
            attempts = max(0, task.record.step_attempts - 1) if refund_attempt else task.record.step_attempts
            task.record = replace(task.record, lease_owner=None, updated_at=now, step_attempts=attempts)
            task.lease_expires_at = None
            task.next_run_at = now + timedelta(seconds=retry_in)
            return True

    def renew(self, leases: Sequence[Lease], *, lease_seconds: float) -> list[Lease]:
        with self._lock:
            now, lost = self._clock(), []
            for lease in leases:
                task = self._tasks.get(lease.task_id)
                if task is None or task.record.lease_epoch != lease.epoch or task.record.lease_owner != lease.owner:
                    lost.append(lease)
                else:
                    task.lease_expires_at = now + timedelta(seconds=lease_seconds)
            return lost

    def lease_expires_at(self, task_id: str) -> datetime | None:
        with self._lock:
            return self._get(task_id).lease_expires_at

    def steps(self, task_id: str) -> list[StepRecord]:
        with self._lock:
            return [s for _, s in sorted(self._get(task_id).steps.items())]

    def step(self, task_id: str, index: int) -> StepRecord:
        with self._lock:
            return self._get(task_id).steps[index]

    def events(self, task_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        with self._lock:
            found = [e for e in self._get(task_id).events if e.seq > after_seq]
            return found[:limit] if limit is not None else found

    def event(self, task_id: str, seq: int) -> EventRecord:
        with self._lock:
            return self._get(task_id).events[seq - 1]

    def checkpoints(self, task_id: str) -> list[CheckpointRecord]:
        with self._lock:
            return list(self._get(task_id).checkpoints)

    def latest_checkpoint(self, task_id: str) -> CheckpointRecord | None:
        with self._lock:
            cps = self._get(task_id).checkpoints
            return cps[-1] if cps else None

    def due_tasks(self, *, limit: int) -> list[str]:
        with self._lock:
            now = self._clock()
            due = [
                (t.next_run_at, tid)
                for tid, t in self._tasks.items()
                if t.record.status in TaskStatus.CLAIMABLE
                and t.next_run_at is not None
                and t.next_run_at <= now
                and (t.lease_expires_at is None or t.lease_expires_at < now)
            ]
            return [tid for _, tid in sorted(due)[:limit]]

    def leased_tasks(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(tid, t.record.lease_owner) for tid, t in self._tasks.items() if t.record.lease_owner]

    def break_lease(self, task_id: str, *, owner: str) -> bool:
        with self._lock:
            task = self._get(task_id)
            if task.record.lease_owner != owner:
                return False
            task.lease_expires_at = self._clock() - timedelta(seconds=1)
            task.next_run_at = task.next_run_at or self._clock()
            return True

    # --- workspace ---------------------------------------------------------------------------

    def workspace_read(self, task_id: str, path: str) -> str | None:
        with self._lock:
            return self._get(task_id).workspace.get(path)

    def workspace_write(self, task_id: str, path: str, content: str) -> None:
        with self._lock:
            self._get(task_id).workspace[path] = content

    def workspace_list(self, task_id: str) -> list[str]:
        with self._lock:
            return sorted(self._get(task_id).workspace)

    # --- outside a tick: operators, signals ---------------------------------------------------

    def operator_change(self, task_id: str, change: OperatorChange) -> EventRecord:
        with self._lock:
            task = self._get(task_id)
            rec = task.record
            if rec.status not in change.from_statuses:
                raise InvalidInput(f"task {task_id} is {rec.status}; this needs one of {', '.join(sorted(change.from_statuses))}")
            now = self._clock()
            (event,) = chain(
                task_id,
                rec.last_event_hash,
                [
                    EventRecord(
                        seq=rec.last_event_seq + 1,
                        type=change.event.type,
                        payload=copy.deepcopy(change.event.payload),
                        schema_version=change.event.schema_version,
                        worker="operator",
                        created_at=now,
                    )
                ],
            )
            updates: dict[str, object] = {"last_event_seq": event.seq, "last_event_hash": event.hash, "updated_at": now}
            if change.status is not None:
                check_transition(rec.status, change.status)
                # A new status fences any tick in flight: its lease and epoch are gone.
                updates.update(status=change.status, status_reason=change.status_reason, lease_owner=None)
                updates.update(lease_epoch=rec.lease_epoch + 1, step_attempts=0)
                task.lease_expires_at = None
            task.events.append(event)
            task.record = replace(rec, **updates)  # type: ignore[arg-type]
            if change.wake or (change.wake_if_waiting and rec.status == TaskStatus.WAITING):
                task.next_run_at = now
            elif change.clear_schedule:
                task.next_run_at = None
            return event

    def lease_ended(self, task_id: str, *, owner: str, lease_seconds: float) -> Lease | None:
        with self._lock:
            task = self._get(task_id)
            now = self._clock()
            if task.record.status not in TaskStatus.TERMINAL:
                return None
            if task.lease_expires_at is not None and task.lease_expires_at >= now:
                return None
            task.record = replace(task.record, lease_owner=owner, lease_epoch=task.record.lease_epoch + 1, updated_at=now)
            task.lease_expires_at = now + timedelta(seconds=lease_seconds)
            return Lease(task_id=task_id, owner=owner, epoch=task.record.lease_epoch, task=task.record)

    def spawn_children(self, lease: Lease, entry: JournalEntry, children: list[NewTask]) -> None:
        with self._lock:
            self._guard(lease)
            if entry.key not in self._journal:
                self._journal[entry.key] = replace(entry, status=JournalStatus.STARTED, result=copy.deepcopy(entry.result))
            for child in children:
                self.create_task(child)

    def children(self, task_id: str) -> list[str]:
        with self._lock:
            self._get(task_id)
            return [tid for tid, t in self._tasks.items() if t.parent_id == task_id]


if TYPE_CHECKING:

    def _provides_every_role(store: InMemoryStore) -> Store:
        return store  # mypy checks here that InMemoryStore satisfies the Store protocol
