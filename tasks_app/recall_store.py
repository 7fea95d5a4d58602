"""Long-term memory on the database: the ORM backend of agents.recall, and the embedder from settings.

Search is exact cosine in numpy over the scope's vectors. When the connected PostgreSQL offers the
`vector` extension (pgvector), vectors are mirrored into a side table with a `vector` column and the
search runs in SQL (`<=>`, cosine distance). Debian's PostgreSQL 15 ships no pgvector, so on these
machines the extension is absent and numpy searches: the pgvector path is written but untested here.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import Q, QuerySet

from agents.recall import LongTermMemory, MemoryHit, MemoryRecord, Scope
from agents.recall.embedders import MEMORY_EXTRA_HINT, Embedder, HashEmbedder, select_embedder
from agents.recall.records import unpack
from agents.recall.search import top_k
from tasks_app.conf import settings
from tasks_app.models import MemoryItem
from tasks_app.store.records import RowMapper

logger = logging.getLogger("horizon.memory")

VECTOR_TABLE = "tasks_app_memoryvector"
MEMORIES = RowMapper(
    MemoryRecord,
    read={"scope": lambda m: Scope(m.scope, m.scope_id), "embedding": lambda m: bytes(m.embedding)},
)


def pgvector_available(using: str = "default") -> bool:
    """Whether this database can run pgvector: PostgreSQL with `vector` in pg_available_extensions."""
    conn = connections[using]
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        return cursor.fetchone() is not None


def _scope_filter(scopes: list[Scope]) -> Q:
    q = Q(pk__in=[])
    for scope in scopes:
        q |= Q(scope=scope.kind, scope_id=scope.id)
    return q


class OrmMemory:
    def __init__(self, using: str = "default") -> None:
        self.db = using
        self._pgvector: bool | None = None  # decided on first use
        self.backend = ""  # "numpy" or "pgvector": what the last search used

    def _items(self) -> QuerySet[MemoryItem]:
        return MemoryItem.objects.using(self.db)

    def put(self, record: MemoryRecord) -> MemoryRecord:
        values = {
            "text": record.text,
            "embedding": record.embedding,
            "embedder": record.embedder,
            "dim": record.dim,
            "metadata": record.metadata,
            "source_key": record.source_key,
        }
        scope: dict[str, Any] = {"scope": record.scope.kind, "scope_id": record.scope.id}
        with transaction.atomic(using=self.db):
            if record.key:
                row, _ = self._items().update_or_create(**scope, key=record.key, defaults=values)
            else:
                existing = self._items().filter(key="", source_key=record.source_key).first() if record.source_key else None
                if existing is not None:
                    return MEMORIES.from_row(existing)  # the same call, repeated after a crash
                try:
                    with transaction.atomic(using=self.db):
                        row = self._items().create(**scope, key="", **values)
                except IntegrityError:  # a concurrent repeat of the same call won the insert
                    return MEMORIES.from_row(self._items().get(key="", source_key=record.source_key))
            if self._use_pgvector():
                self._mirror([row])
        return MEMORIES.from_row(row)

    def get(self, scope: Scope, key: str) -> MemoryRecord | None:
        row = self._items().filter(scope=scope.kind, scope_id=scope.id, key=key).first()
        return MEMORIES.from_row(row) if row else None

    def keys(self, scope: Scope) -> list[str]:
        rows = self._items().filter(scope=scope.kind, scope_id=scope.id).exclude(key="")
        return sorted(rows.values_list("key", flat=True))

    def search(self, scopes: list[Scope], *, embedder: str, vector: list[float], limit: int) -> list[MemoryHit]:
        if not scopes:
            return []
        if self._use_pgvector():
            self.backend = "pgvector"
            return self._search_pgvector(scopes, embedder=embedder, vector=vector, limit=limit)
        self.backend = "numpy"
        # Only ids and vectors for the ranking; the texts of the few winners are read afterwards.
        candidates = list(
            self._items()
            .filter(_scope_filter(scopes), embedder=embedder, dim=len(vector))
            .order_by("id")
            .values_list("id", "embedding")
        )
        ranked = top_k([bytes(blob) for _, blob in candidates], vector, limit)
        rows = self._items().in_bulk([candidates[i][0] for i, _ in ranked])
        return [MemoryHit(MEMORIES.from_row(rows[candidates[i][0]]), score) for i, score in ranked]

    # --- pgvector (untested on these machines: Debian's PostgreSQL 15 has no pgvector) ------------

    def _use_pgvector(self) -> bool:
        if self._pgvector is None:
            self._pgvector = pgvector_available(self.db) and self._prepare_pgvector()
        return self._pgvector

    def _prepare_pgvector(self) -> bool:
        """Create the extension and the side table once, and mirror the vectors written before it."""
        try:
            with transaction.atomic(using=self.db), connections[self.db].cursor() as cursor:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {VECTOR_TABLE} ("
                    f"item_id bigint PRIMARY KEY REFERENCES {MemoryItem._meta.db_table}(id) ON DELETE CASCADE, "
                    "embedding vector NOT NULL)"
                )
                cursor.execute(
                    f"SELECT id FROM {MemoryItem._meta.db_table} m WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {VECTOR_TABLE} v WHERE v.item_id = m.id)"
                )
                missing = [row[0] for row in cursor.fetchall()]
            for start in range(0, len(missing), 500):
                self._mirror(list(self._items().filter(id__in=missing[start : start + 500])))
        except Exception:  # noqa: BLE001 - no privilege to create the extension, say: numpy still works
            logger.warning("pgvector is available but could not be set up; memory search uses numpy", exc_info=True)
            return False
        return True

    def _mirror(self, rows: list[MemoryItem]) -> None:
        with connections[self.db].cursor() as cursor:
            for row in rows:
                literal = "[" + ",".join(repr(x) for x in unpack(bytes(row.embedding))) + "]"
                cursor.execute(
                    f"INSERT INTO {VECTOR_TABLE} (item_id, embedding) VALUES (%s, %s::vector) "
                    "ON CONFLICT (item_id) DO UPDATE SET embedding = EXCLUDED.embedding",
                    [row.id, literal],
                )

    def _search_pgvector(self, scopes: list[Scope], *, embedder: str, vector: list[float], limit: int) -> list[MemoryHit]:
        literal = "[" + ",".join(repr(float(x)) for x in vector) + "]"
        where = " OR ".join("(m.scope = %s AND m.scope_id = %s)" for _ in scopes)
        params: list[Any] = [literal]
        for scope in scopes:
            params += [scope.kind, scope.id]
        params += [embedder, len(vector), literal, limit]
        sql = (
            f"SELECT m.id, 1 - (v.embedding <=> %s::vector) FROM {MemoryItem._meta.db_table} m "
            f"JOIN {VECTOR_TABLE} v ON v.item_id = m.id WHERE ({where}) AND m.embedder = %s AND m.dim = %s "
            "ORDER BY v.embedding <=> %s::vector, m.id LIMIT %s"
        )
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, params)
            scored = cursor.fetchall()
        rows = self._items().in_bulk([item_id for item_id, _ in scored])
        return [MemoryHit(MEMORIES.from_row(rows[item_id]), float(score)) for item_id, score in scored]


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    """The embedder this process uses, from HORIZON_EMBEDDER (agents.recall.embedders.select_embedder)."""
    from tasks_app.llm_endpoints import endpoint_config, llm_configured

    config = None
    wanted = settings.HORIZON_EMBEDDER == "openai" or (settings.HORIZON_EMBEDDER == "auto" and settings.HORIZON_EMBEDDING_MODEL)
    if wanted and llm_configured():
        config = endpoint_config(settings.HORIZON_EMBEDDING_MODEL or "text-embedding-3-small")
    chosen = select_embedder(settings.HORIZON_EMBEDDER, openai_config=config)
    if isinstance(chosen, HashEmbedder) and settings.HORIZON_EMBEDDER == "auto":
        logger.warning(
            "long-term memory uses the hashing embedder (shared words, not meaning): set HORIZON_EMBEDDING_MODEL "
            "for the endpoint's embeddings, or %s",
            MEMORY_EXTRA_HINT,
        )
    return chosen


_memories: dict[str, LongTermMemory] = {}


def memory_for(using: str = "default") -> LongTermMemory:
    """One LongTermMemory per database alias and process (the embedder's model loads once)."""
    if using not in _memories:
        _memories[using] = LongTermMemory(OrmMemory(using), embedder())
    return _memories[using]
