"""What a memory item is, and the small protocol a backend keeps (in memory here; the ORM in tasks_app)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from agents.recall.search import top_k
from agents.types import JSON

TASK = "task"
PROFILE = "profile"
SCOPES = (TASK, PROFILE)


@dataclass(frozen=True)
class Scope:
    """Whose memory: one task's (kind "task", the task id) or every task of a profile's (the profile name)."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in SCOPES:
            raise ValueError(f"a memory scope is one of {SCOPES}, got {self.kind!r}")


def pack(vector: list[float]) -> bytes:
    """float32, little-endian: 4 bytes a dimension (a JSON list would take about 20)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def unpack(blob: bytes) -> list[float]:
    return [float(x) for x in np.frombuffer(blob, dtype="<f4")]


@dataclass(frozen=True)
class MemoryRecord:
    scope: Scope
    text: str
    embedding: bytes  # pack()ed
    embedder: str  # the model that made the vector: vectors of different models are never compared
    dim: int
    key: str = ""  # a name the agent gave it; remembering under the same key replaces the item
    metadata: dict[str, JSON] = field(default_factory=dict)
    # The journal key of the call that wrote it: a call repeated after a crash writes the same row.
    source_key: str = ""
    created_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class MemoryHit:
    record: MemoryRecord
    score: float  # cosine similarity, -1..1

    def to_json(self) -> dict[str, JSON]:
        r = self.record
        return {
            "text": r.text,
            "score": round(self.score, 4),
            "scope": r.scope.kind,
            "key": r.key,
            "metadata": r.metadata,
            "created": r.created_at.isoformat() if r.created_at else None,
        }


class MemoryBackend(Protocol):
    """Storage for memory items. Writes are upserts on a natural key, so a repeated call adds nothing:
    (scope, key) when the item has a key, else its source_key."""

    def put(self, record: MemoryRecord) -> MemoryRecord: ...

    def get(self, scope: Scope, key: str) -> MemoryRecord | None: ...

    def keys(self, scope: Scope) -> list[str]: ...

    def search(self, scopes: list[Scope], *, embedder: str, vector: list[float], limit: int) -> list[MemoryHit]:
        """The `limit` items nearest to `vector` (cosine) among the scopes' items made by `embedder`
        with the vector's dimension, best first."""
        ...


class InMemoryBackend:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[MemoryRecord] = []
        self.backend = "numpy"

    def put(self, record: MemoryRecord) -> MemoryRecord:
        with self._lock:
            for i, old in enumerate(self._items):
                same_key = record.key and old.scope == record.scope and old.key == record.key
                same_source = not record.key and record.source_key and old.source_key == record.source_key
                if same_key or same_source:
                    kept = replace(record, id=old.id, created_at=old.created_at if same_source else record.created_at)
                    self._items[i] = kept
                    return kept
            stored = replace(record, id=len(self._items) + 1, created_at=record.created_at or datetime.now(UTC))
            self._items.append(stored)
            return stored

    def get(self, scope: Scope, key: str) -> MemoryRecord | None:
        with self._lock:
            return next((r for r in self._items if r.scope == scope and r.key == key), None)

    def keys(self, scope: Scope) -> list[str]:
        with self._lock:
            return sorted(r.key for r in self._items if r.scope == scope and r.key)

    def search(self, scopes: list[Scope], *, embedder: str, vector: list[float], limit: int) -> list[MemoryHit]:
        with self._lock:
            found = [r for r in self._items if r.scope in scopes and r.embedder == embedder and r.dim == len(vector)]
        ranked = top_k([r.embedding for r in found], vector, limit)
        return [MemoryHit(found[i], score) for i, score in ranked]
