"""The event log's hash chain: each event's hash covers its content and the previous event's hash.

    hash(n) = sha256(hash(n-1) + canonical JSON of {task, seq, type, schema_version, payload, worker, time})

with hash(0) = "" for a task's first event. Every store computes it where it appends events (the
in-memory store, the ORM path, the one-statement PostgreSQL commit, operator changes and the
sweeper), from the previous event's hash, which the task row keeps beside its last event seq
(`last_event_hash`): the tick reads it with its claim, at no extra cost. Changing, removing or
reordering a stored event breaks the chain from that event on; `verify_chain` names the first one.
On PostgreSQL a trigger also refuses UPDATE and DELETE of event rows (tasks_app migration 0009).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from agents.types import JSON, EventRecord, canonical_json


def event_time(when: datetime | None) -> str:
    """The time as the chain hashes it: UTC, microseconds (what PostgreSQL and SQLite keep)."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    prev_hash: str,
    *,
    task_id: str,
    seq: int,
    type_: str,
    schema_version: int,
    payload: JSON,
    worker: str,
    created_at: datetime | None,
) -> str:
    body = {
        "task": str(task_id),
        "seq": int(seq),
        "type": type_,
        "schema_version": int(schema_version),
        "payload": payload,
        "worker": worker,
        "time": event_time(created_at),
    }
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


def record_hash(task_id: str, prev_hash: str, event: EventRecord) -> str:
    return event_hash(
        prev_hash,
        task_id=task_id,
        seq=event.seq,
        type_=event.type,
        schema_version=event.schema_version,
        payload=event.payload,
        worker=event.worker,
        created_at=event.created_at,
    )


def chain(task_id: str, prev_hash: str, events: Iterable[EventRecord]) -> list[EventRecord]:
    """The events with their hash chain filled in (prev_hash, hash), continuing from `prev_hash`."""
    out = []
    for event in events:
        digest = record_hash(task_id, prev_hash, event)
        out.append(replace(event, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    return out


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


def verify_chain(task_id: str, events: Iterable[EventRecord]) -> ChainProblem | None:
    """The first event whose seq, link or hash is wrong (None: the chain holds from seq 1)."""
    prev = ""
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            return ChainProblem(expected_seq, f"event {expected_seq} is missing (found {event.seq} next)")
        if event.prev_hash != prev:
            return ChainProblem(event.seq, "its prev_hash does not match the previous event's hash")
        computed = record_hash(task_id, prev, event)
        if computed != event.hash:
            return ChainProblem(event.seq, "its content does not match its hash (changed after it was written)")
        prev = event.hash
        expected_seq += 1
    return None
