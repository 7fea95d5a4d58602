"""The in-memory store's state, and its records beside the tasks: the call journal, the signal
inbox and approvals. agents/inmemory_store.py builds InMemoryStore on them (tasks, ticks, reads).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from agents.errors import InvalidInput, LeaseLost, TaskNotFound
from agents.recall import InMemoryBackend, LongTermMemory
from agents.recall.embedders import HashEmbedder
from agents.status import ApprovalStatus, ApprovalStatusName, JournalStatus
from agents.types import (
    JSON,
    ApprovalRecord,
    CheckpointRecord,
    EventRecord,
    JournalEntry,
    Lease,
    SignalRecord,
    StepRecord,
    TaskRecord,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class StoredTask:
    record: TaskRecord
    lease_expires_at: datetime | None = None
    next_run_at: datetime | None = None
    events: list[EventRecord] = field(default_factory=list)
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    steps: dict[int, StepRecord] = field(default_factory=dict)
    workspace: dict[str, str] = field(default_factory=dict)
    parent_id: str | None = None
    signals: list[tuple[SignalRecord, str | None]] = field(default_factory=list)  # (signal, consumed by key)


class InMemoryState:
    """The store's whole state behind one lock, and the two lookups every operation starts with."""

    def __init__(self, clock: Callable[[], datetime] = utcnow, memory: LongTermMemory | None = None) -> None:
        self._clock = clock
        # Long-term memory (the remember/recall tools): the hashing embedder unless a test gives another.
        self.memory = memory or LongTermMemory(InMemoryBackend(), HashEmbedder())
        self._lock = threading.RLock()
        self._tasks: dict[str, StoredTask] = {}
        self._journal: dict[str, JournalEntry] = {}
        self._signal_ids = 0
        self._approvals: dict[tuple[str, str], ApprovalRecord] = {}

    def _get(self, task_id: str) -> StoredTask:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise TaskNotFound(task_id) from None

    def _guard(self, lease: Lease) -> StoredTask:
        task = self._get(lease.task_id)
        if task.record.lease_epoch != lease.epoch or task.record.lease_owner != lease.owner:
            raise LeaseLost.stale(lease.task_id, lease.epoch)
        return task


class InMemoryJournalSignalsApprovals(InMemoryState):
    """The records a tick writes beside its commit, each under the same lock and lease checks."""

    # --- journal -----------------------------------------------------------------------------

    def journal_get(self, key: str) -> JournalEntry | None:
        with self._lock:
            return self._journal.get(key)

    def journal_begin(self, lease: Lease, entry: JournalEntry) -> None:
        with self._lock:
            self._guard(lease)
            # Like the database's INSERT ... ON CONFLICT DO NOTHING: an existing entry is kept.
            if entry.key not in self._journal:
                self._journal[entry.key] = replace(entry, status=JournalStatus.STARTED, result=copy.deepcopy(entry.result))

    def journal_complete(self, lease: Lease, entry: JournalEntry) -> None:
        with self._lock:
            self._guard(lease)
            self._journal[entry.key] = replace(entry, status=JournalStatus.COMPLETED, result=copy.deepcopy(entry.result))

    def journal_entries(self, task_id: str) -> list[JournalEntry]:
        with self._lock:
            return [e for k, e in self._journal.items() if k.startswith(f"{task_id}/")]

    def journal_run(self, lease: Lease, entry: JournalEntry, fn: Callable[[], JSON]) -> JournalEntry:
        with self._lock:
            self._guard(lease)
            existing = self._journal.get(entry.key)
            if existing is not None and existing.status == JournalStatus.COMPLETED:
                return existing
            snapshot = {tid: dict(t.workspace) for tid, t in self._tasks.items()}
            try:
                result = fn()
            except BaseException:
                for tid, files in snapshot.items():  # roll back, as the database would
                    self._tasks[tid].workspace = files
                raise
            done = replace(entry, status=JournalStatus.COMPLETED, result=copy.deepcopy(result))
            self._journal[entry.key] = done
            return done

    # --- signals -------------------------------------------------------------------------------

    def signal_put(self, task_id: str, name: str, payload: JSON) -> SignalRecord:
        with self._lock:
            task = self._get(task_id)
            self._signal_ids += 1
            signal = SignalRecord(id=self._signal_ids, name=name, payload=copy.deepcopy(payload), created_at=self._clock())
            task.signals.append((signal, None))
            return signal

    def signals_pending(self, task_id: str, names: list[str]) -> list[SignalRecord]:
        with self._lock:
            return [s for s, used in self._get(task_id).signals if used is None and s.name in names]

    def signals_consume(self, task_id: str, ids: list[int], key: str) -> None:
        with self._lock:
            task = self._get(task_id)
            task.signals = [(s, key if s.id in ids and used is None else used) for s, used in task.signals]

    # --- approvals -------------------------------------------------------------------------------

    def approval_get(self, task_id: str, key: str) -> ApprovalRecord | None:
        with self._lock:
            return self._approvals.get((task_id, key))

    def approval_request(self, lease: Lease, approval: ApprovalRecord) -> ApprovalRecord:
        with self._lock:
            self._guard(lease)
            existing = self._approvals.get((approval.task_id, approval.key))
            if existing is not None and existing.status != ApprovalStatus.STALE:
                return existing
            self._signal_ids += 1
            record = replace(approval, id=self._signal_ids, status=ApprovalStatus.PENDING, created_at=self._clock())
            self._approvals[(approval.task_id, approval.key)] = record
            return record

    def approval_mark_stale(self, lease: Lease, approval_id: int) -> None:
        with self._lock:
            self._guard(lease)
            for k, a in self._approvals.items():
                if a.id == approval_id:
                    self._approvals[k] = replace(a, status=ApprovalStatus.STALE)

    def approval_decide(
        self,
        approval_id: int,
        *,
        status: ApprovalStatusName,
        by: str,
        comment: str = "",
        edited_arguments: dict[str, JSON] | None = None,
    ) -> ApprovalRecord:
        """For tests of the runner: what the Django service does for people (no permission checks here)."""
        with self._lock:
            for k, a in self._approvals.items():
                if a.id == approval_id and a.status == ApprovalStatus.PENDING:
                    self._approvals[k] = replace(
                        a, status=status, decided_by=by, comment=comment, edited_arguments=edited_arguments
                    )
                    return self._approvals[k]
            raise InvalidInput(f"approval {approval_id} is not pending")
