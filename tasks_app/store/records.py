"""Row <-> record: one field-driven mapper per record type (agents/types.py's dataclasses)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cached_property
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from agents.audit import chain
from agents.errors import TaskNotFound
from agents.types import (
    ApprovalRecord,
    CheckpointRecord,
    EventRecord,
    JournalEntry,
    NewEvent,
    SignalRecord,
    StepRecord,
    TaskRecord,
)
from tasks_app.models import Event

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


@dataclass(frozen=True)
class RowMapper(Generic[R]):
    """A record from a row: each field is the row's attribute of the same name, unless `read`
    computes it from the row (a rename, a conversion, two columns in one)."""

    record: type[R]
    read: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)

    @cached_property
    def names(self) -> tuple[str, ...]:
        # Once per mapper, not per row: every record a tick reads goes through from_row.
        return tuple(f.name for f in fields(self.record))

    def from_row(self, row: object) -> R:
        values = {name: self.read[name](row) if name in self.read else getattr(row, name) for name in self.names}
        return self.record(**values)

    def from_values(self, values: Mapping[str, Any]) -> R:
        """A record from a mapping of field names (a plain cursor's row)."""
        return self.from_row(SimpleNamespace(**values))

    def row_values(self, record: R) -> dict[str, Any]:
        """The row's attributes for a record whose fields are all plain columns."""
        return {name: getattr(record, name) for name in self.names}


def _user_name(user: Any) -> str:
    return str(user.get_username()) if user else ""


TASKS = RowMapper(
    TaskRecord,
    read={"id": lambda t: str(t.id), "parent_id": lambda t: str(t.parent_id) if t.parent_id else None},
)
EVENTS = RowMapper(EventRecord)
CHECKPOINTS = RowMapper(CheckpointRecord)
JOURNAL = RowMapper(JournalEntry)
SIGNALS = RowMapper(SignalRecord)
STEPS = RowMapper(
    StepRecord,
    read={"depends_on": lambda s: tuple(s.depends_on or ()), "transcript": lambda s: tuple(s.transcript or ())},
)
APPROVALS = RowMapper(
    ApprovalRecord,
    read={
        "task_id": lambda a: str(a.task_id),
        "id": lambda a: a.pk,
        "decided_by": lambda a: _user_name(a.decided_by),
        "created_at": lambda a: a.requested_at,
    },
)


def task_pk(task_id: str) -> uuid.UUID:
    """The primary key for a task id; a malformed id is an unknown task."""
    try:
        return uuid.UUID(str(task_id))
    except ValueError:
        raise TaskNotFound(task_id) from None


def approval_record(row: Any) -> ApprovalRecord:
    return APPROVALS.from_row(row)


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


def event_row(task_id: str | uuid.UUID, event: EventRecord) -> Event:
    return Event(task_id=task_id, **EVENTS.row_values(event))
