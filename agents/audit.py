"""The event log's hash chain: each event's hash covers its content and the previous event's hash.

    hash(n) = "k<v>:" + HMAC-SHA256(key v, hash(n-1) + canonical JSON of {task, seq, type,
              schema_version, payload, worker, time})

with hash(0) = "" for a task's first event. The key (HORIZON_AUDIT_KEY, version v) lives in the
environment of the processes that write events, never in the database: the HMAC is computed here,
in the writing process, not by a trigger or any SQL, so someone who can rewrite the database (a
superuser, a restored dump, a disk edit) can change an event and recompute plain hashes but not
the keyed ones. Without a key (development), version 0 is a plain SHA-256 written without prefix,
as every chain was before keys existed; it proves the log is consistent, not who wrote it.
Verification takes each event's version from its hash, so a chain can span a key rotation; a
version never goes back within a chain, and unkeyed events are refused once a key is configured
unless the caller allows them (logs written before the key). Every store computes it where it appends events (the
in-memory store, the ORM path, the one-statement PostgreSQL commit, operator changes and the
sweeper), from the previous event's hash, which the task row keeps beside its last event seq
(`last_event_hash`): the tick reads it with its claim, at no extra cost. Changing, removing or
reordering a stored event breaks the chain from that event on; `verify_chain` names the first one.
On PostgreSQL a trigger also refuses UPDATE and DELETE of event rows (tasks_app migration 0009).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from agents.types import JSON, EventRecord, canonical_json


@dataclass(frozen=True)
class AuditKeys:
    version: int = 0  # the version new events are hashed with; 0: unkeyed (plain SHA-256)
    keys: Mapping[int, bytes] = field(default_factory=dict, repr=False)  # every version that verifies

    def key(self, version: int) -> bytes | None:
        return self.keys.get(version)


_keys = AuditKeys()


def configure_keys(current: bytes | None, version: int = 1, old: Mapping[int, bytes] | None = None) -> AuditKeys:
    """Set the key new events are hashed with, and the older versions kept to verify (settings do)."""
    global _keys
    ring = dict(old or {})
    if current:
        if version < 1:
            raise ValueError(f"the audit key version must be 1 or more, got {version}")
        ring[version] = current
    if any(v < 1 for v in ring):
        raise ValueError("audit key versions are 1 or more")
    _keys = AuditKeys(version=version if current else 0, keys=ring)
    return _keys


def audit_keys() -> AuditKeys:
    return _keys


def hash_version(digest: str) -> int:
    """The key version a stored hash was written with (0: unkeyed; -1: not a hash this module writes)."""
    if digest.startswith("k"):
        head, sep, _ = digest.partition(":")
        return int(head[1:]) if sep and head[1:].isdigit() and int(head[1:]) > 0 else -1
    return 0


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
    key: bytes | None = None,
    version: int = 0,
) -> str:
    body: dict[str, JSON] = {
        "task": str(task_id),
        "seq": int(seq),
        "type": type_,
        "schema_version": int(schema_version),
        "payload": payload,
        "worker": worker,
        "time": event_time(created_at),
    }
    data = (prev_hash + canonical_json(body)).encode()
    if not version:
        return hashlib.sha256(data).hexdigest()
    if not key:
        raise ValueError(f"no audit key of version {version}")
    return f"k{version}:" + hmac.new(key, data, hashlib.sha256).hexdigest()


def record_hash(task_id: str, prev_hash: str, event: EventRecord, *, version: int | None = None) -> str:
    """The event's hash under key `version` (default: the configured current one)."""
    version = _keys.version if version is None else version
    return event_hash(
        prev_hash,
        task_id=task_id,
        seq=event.seq,
        type_=event.type,
        schema_version=event.schema_version,
        payload=event.payload,
        worker=event.worker,
        created_at=event.created_at,
        key=_keys.key(version),
        version=version,
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


def verify_chain(task_id: str, events: Iterable[EventRecord], *, allow_unkeyed: bool | None = None) -> ChainProblem | None:
    """The first event whose seq, link, key version or hash is wrong (None: the chain holds from seq 1).

    `allow_unkeyed` (default: only when no key is configured) accepts plain SHA-256 events, which
    anyone who can write the database can recompute."""
    allow = _keys.version == 0 if allow_unkeyed is None else allow_unkeyed
    prev = ""
    prev_version = 0
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            return ChainProblem(expected_seq, f"event {expected_seq} is missing (found {event.seq} next)")
        if event.prev_hash != prev:
            return ChainProblem(event.seq, "its prev_hash does not match the previous event's hash")
        version = hash_version(event.hash)
        if version < 0:
            return ChainProblem(event.seq, "its hash is not in a format this chain writes")
        if version == 0 and not allow:
            return ChainProblem(
                event.seq, "its hash is not keyed (plain SHA-256: written before HORIZON_AUDIT_KEY, or recomputed without it)"
            )
        if version < prev_version:
            return ChainProblem(event.seq, f"its key version goes back from {prev_version} to {version}")
        if version and _keys.key(version) is None:
            return ChainProblem(event.seq, f"its key version {version} is not configured (HORIZON_AUDIT_OLD_KEYS)")
        computed = record_hash(task_id, prev, event, version=version)
        if not hmac.compare_digest(computed, event.hash):
            return ChainProblem(event.seq, "its content does not match its hash (changed after it was written)")
        prev = event.hash
        prev_version = version
        expected_seq += 1
    return None


def key_versions(events: Iterable[EventRecord]) -> tuple[int, ...]:
    """The key versions a chain's events carry, in order of first use (0: unkeyed)."""
    return tuple(dict.fromkeys(hash_version(e.hash) for e in events))
