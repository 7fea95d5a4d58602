"""LongTermMemory: a backend plus an embedder. What the remember and recall tools talk to."""

from __future__ import annotations

from agents.recall.embedders import Embedder
from agents.recall.records import MemoryBackend, MemoryHit, MemoryRecord, Scope, pack
from agents.types import JSON

MAX_ITEM_CHARS = 10_000
MAX_RECALL = 50


class LongTermMemory:
    def __init__(self, backend: MemoryBackend, embedder: Embedder) -> None:
        self.backend = backend
        self.embedder = embedder

    def remember(
        self, scope: Scope, text: str, *, key: str = "", metadata: dict[str, JSON] | None = None, source_key: str = ""
    ) -> MemoryRecord:
        if not text.strip():
            raise ValueError("there is nothing to remember: the text is empty")
        if len(text) > MAX_ITEM_CHARS:
            raise ValueError(f"the text is {len(text)} characters; the limit is {MAX_ITEM_CHARS}")
        (vector,) = self.embedder.embed([text])
        record = MemoryRecord(
            scope=scope,
            text=text,
            embedding=pack(vector),
            embedder=self.embedder.name,
            dim=len(vector),
            key=key,
            metadata=dict(metadata or {}),
            source_key=source_key,
        )
        return self.backend.put(record)

    def recall(self, scopes: list[Scope], query: str, *, limit: int = 5) -> list[MemoryHit]:
        if not query.strip():
            raise ValueError("the query is empty")
        if not 1 <= limit <= MAX_RECALL:
            raise ValueError(f"limit must be between 1 and {MAX_RECALL}")
        (vector,) = self.embedder.embed([query])
        return self.backend.search(scopes, embedder=self.embedder.name, vector=vector, limit=limit)
