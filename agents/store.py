"""The Store protocol: the only way the harness touches storage.

Implementations: agents.inmemory_store.InMemoryStore (unit tests, one process) and
tasks_app.store.DjangoStore (SQLite or PostgreSQL through the ORM), with its PostgreSQL subclass
PostgresStore. tests/tasks_app/test_store_conformance.py runs one suite against all of them.

`Store` is the sum of roles, each what one kind of caller needs; a caller names the narrowest:
- JournalReads     the call journal's entries, read without a lease
- TaskReads        unfenced reads: JournalReads and the task, its steps, events, checkpoints, children
- JournalStore     the call journal: its reads plus the fenced writes of a tick (agents/journal.py)
- TickStore        a tick's lease: claim, load, renew, commit, release, and the other fenced writes
- ApprovalStore    approvals a tick asks for and reads back (agents/approvals.py)
- SignalStore      the signal inbox: put by anyone, consumed once by a wait (agents/waits.py)
- ControlStore     writes outside a tick: new tasks, operator changes, the sweeper's scheduling
- WorkspaceStore   the task's durable files
- MemoryStore      long-term memory (`memory`), None when the runtime has none
- ToolStore        what a tool sees (ToolContext.store): reads, the workspace and memory

Rules every implementation keeps:
- `claim` is one conditional write: it succeeds only when the task is claimable, due, and not
  leased by a live owner; it increments `lease_epoch` and the task's `step_attempts`.
- Every write made under a lease (`commit`, `journal_*`, `release`) checks, atomically with the
  write, that the task's epoch and owner still equal the lease's. A mismatch means a newer owner
  exists: nothing is written. Reads (`load`) are not fenced: a zombie may read, never write.
- A lease is short and renewed while its tick runs (`renew`, called by agents/heartbeat.py): a
  renewal is fenced like a write, so a lease that was taken over is reported lost, never extended;
  a dead worker's lease frees itself `lease_seconds` after its last renewal.
- `commit` applies a whole tick atomically and assigns event seqs without gaps; the journal entries
  it carries (`TickCommit.journal`, a tick's last model answers) are written in the same transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from agents.types import (
    JSON,
    ApprovalRecord,
    Build,
    CheckpointRecord,
    EventRecord,
    JournalEntry,
    Lease,
    NewTask,
    OperatorChange,
    SignalRecord,
    Snapshot,
    StepRecord,
    TaskRecord,
    TickCommit,
)

if TYPE_CHECKING:  # agents.recall imports agents.types only, but its numpy need not load with the protocol
    from agents.recall import LongTermMemory


class CommitResult(enum.Enum):
    COMMITTED = "committed"
    FENCED = "fenced"  # the lease epoch moved on: a zombie's tick, discarded
    CONFLICT = "conflict"  # someone else appended events since the load (an operator): reload and redo


class JournalReads(Protocol):
    # The call journal. Reads need no lease; writes are fenced like every other write.
    def journal_get(self, key: str) -> JournalEntry | None: ...

    def journal_entries(self, task_id: str) -> list[JournalEntry]:
        """Every entry of a task, in the order they were first written (compensation walks them backwards)."""
        ...


class TaskReads(JournalReads, Protocol):
    """Reads need no lease: a zombie may read, never write."""

    def get_task(self, task_id: str) -> TaskRecord: ...

    def steps(self, task_id: str) -> list[StepRecord]: ...

    def step(self, task_id: str, index: int) -> StepRecord: ...

    def events(self, task_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]: ...

    def event(self, task_id: str, seq: int) -> EventRecord: ...

    def checkpoints(self, task_id: str) -> list[CheckpointRecord]: ...

    def latest_checkpoint(self, task_id: str) -> CheckpointRecord | None: ...

    def children(self, task_id: str) -> list[str]: ...

    def lease_expires_at(self, task_id: str) -> datetime | None: ...


class JournalStore(JournalReads, Protocol):
    def journal_begin(self, lease: Lease, entry: JournalEntry) -> None: ...

    def journal_complete(self, lease: Lease, entry: JournalEntry) -> None: ...

    def journal_run(self, lease: Lease, entry: JournalEntry, fn: Callable[[], JSON]) -> JournalEntry:
        """Run `fn` and record its result in one transaction (a transactional tool: exactly once)."""
        ...


class TickStore(JournalStore, Protocol):
    """A tick's life under its lease; every write here is fenced by the lease's epoch and owner."""

    def claim(self, task_id: str, *, owner: str, lease_seconds: float, build: Build | None = None) -> Lease | None:
        """`build` (ranked): refuse with BuildSuperseded a task a newer build has ticked, and record
        the build on the task when it is newer than every build that ticked it (docs/deploys.md)."""
        ...

    def load(self, lease: Lease) -> Snapshot: ...

    def renew(self, leases: Sequence[Lease], *, lease_seconds: float) -> list[Lease]:
        """Extend each lease to `lease_seconds` from now if its epoch and owner still hold the task;
        returns the leases that do not (taken over, or the task ended): they are lost, not renewed."""
        ...

    def commit(self, lease: Lease, commit: TickCommit) -> CommitResult: ...

    def release(self, lease: Lease, *, retry_in: float = 0.0, refund_attempt: bool = False) -> bool:
        """Give the lease back; due again in `retry_in` s. `refund_attempt`: this claim did not try the
        step (it only waited, e.g. on an open circuit breaker), so it does not count as an attempt."""
        ...

    def spawn_children(self, lease: Lease, entry: JournalEntry, children: list[NewTask]) -> None:
        """Record the started journal entry of a spawn (kept if it exists) and create the children
        (each under its given task_id, kept if it exists), in one fenced transaction: a zombie
        spawns nothing, a retried spawn spawns nobody twice (agents/subtasks.py)."""
        ...

    def lease_ended(self, task_id: str, *, owner: str, lease_seconds: float) -> Lease | None:
        """A lease on a task that has ended (cancelled or failed), for work done after its end under
        the same fencing as a tick: the compensation of a cancelled task. None if someone holds one."""
        ...


class ApprovalStore(Protocol):
    """Approvals: requested under a lease (fenced like any write of a tick), decided by people."""

    def approval_get(self, task_id: str, key: str) -> ApprovalRecord | None: ...

    def approval_request(self, lease: Lease, approval: ApprovalRecord) -> ApprovalRecord:
        """Record a pending approval; one that exists under the key is returned as it is."""
        ...

    def approval_mark_stale(self, lease: Lease, approval_id: int) -> None:
        """The action under this key changed since it was asked for: its decision no longer applies."""
        ...


class SignalStore(Protocol):
    """The signal inbox: kept until a wait consumes a signal, which happens once (journal_run)."""

    def signal_put(self, task_id: str, name: str, payload: JSON) -> SignalRecord: ...

    def signals_pending(self, task_id: str, names: list[str]) -> list[SignalRecord]: ...

    def signals_consume(self, task_id: str, ids: list[int], key: str) -> None:
        """Mark signals consumed by the wait under journal `key`; called inside journal_run's transaction."""
        ...


class ControlStore(Protocol):
    """Writes outside a tick: new tasks, operators, the sweeper."""

    def create_task(self, new: NewTask) -> str: ...

    def operator_change(self, task_id: str, change: OperatorChange) -> EventRecord:
        """Append the change's event and apply it, or raise InvalidInput (status not allowed)."""
        ...

    def due_tasks(self, *, limit: int) -> list[str]: ...

    def leased_tasks(self) -> list[tuple[str, str]]: ...

    def break_lease(self, task_id: str, *, owner: str) -> bool: ...


class WorkspaceStore(Protocol):
    """The task's durable workspace (files written by tools)."""

    def workspace_read(self, task_id: str, path: str) -> str | None: ...

    def workspace_write(self, task_id: str, path: str, content: str) -> None: ...

    def workspace_list(self, task_id: str) -> list[str]: ...


class MemoryStore(Protocol):
    """Long-term memory (the remember/recall tools, agents/recall/) on the store's database."""

    @property
    def memory(self) -> LongTermMemory | None: ...


class ToolStore(TaskReads, WorkspaceStore, MemoryStore, Protocol):
    """What a tool may use (ToolContext.store): it reads, keeps files and memory, never holds a lease."""


class Store(TaskReads, TickStore, ApprovalStore, SignalStore, ControlStore, WorkspaceStore, MemoryStore, Protocol):
    """Every role: what a full implementation (InMemoryStore, DjangoStore) provides and the runner uses."""


# Every role, for tests/tasks_app/test_store_roles.py (both stores provide each, signature by signature).
ROLES: tuple[type, ...] = (
    JournalReads,
    TaskReads,
    JournalStore,
    TickStore,
    ApprovalStore,
    SignalStore,
    ControlStore,
    WorkspaceStore,
    MemoryStore,
    ToolStore,
)
