"""One conformance suite for every memory backend: in memory, the ORM on SQLite, the ORM on PostgreSQL.

Recall by cosine, scope isolation (a task's items, a profile's items), items of another embedder or
dimension never compared, and writes that are upserts (a key replaces its item; a repeated call,
same source key, adds nothing).
"""

from __future__ import annotations

import pytest

from agents.recall import InMemoryBackend, LongTermMemory, MemoryBackend, Scope
from agents.recall.embedders import HashEmbedder
from tasks_app.recall_store import OrmMemory

pytestmark = pytest.mark.django_db(databases=["default", "sqlite"])

T1, T2, PROFILE = Scope("task", "t1"), Scope("task", "t2"), Scope("profile", "default")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> MemoryBackend:
    if request.param == "memory":
        return InMemoryBackend()
    return OrmMemory(using="sqlite" if request.param == "sqlite" else "default")


def test_recall_ranks_the_scope_items_by_meaning_best_first(backend: MemoryBackend) -> None:
    mem = LongTermMemory(backend, HashEmbedder())
    for fact in (
        "The staging database password rotates every Monday",
        "Acme Corp's tenant id is t-42",
        "Invoices are sent on the first day of each month",
    ):
        mem.remember(T1, fact, metadata={"source": "onboarding"})
    hits = mem.recall([T1], "what is the tenant id of Acme?", limit=2)
    assert [h.record.text for h in hits][0] == "Acme Corp's tenant id is t-42"
    assert len(hits) == 2 and hits[0].score > hits[1].score
    top = hits[0].to_json()
    assert (top["scope"], top["metadata"], top["key"]) == ("task", {"source": "onboarding"}, "")
    assert top["created"] is not None and hits[0].record.embedder == "hash-ngram-v1:384" and hits[0].record.dim == 384


def test_scopes_are_isolated(backend: MemoryBackend) -> None:
    mem = LongTermMemory(backend, HashEmbedder())
    mem.remember(T1, "task one's secret is blue")
    mem.remember(T2, "task two's secret is green")
    mem.remember(PROFILE, "the default profile's secret is red")
    assert [h.record.text for h in mem.recall([T2], "secret", limit=5)] == ["task two's secret is green"]
    assert {h.record.scope for h in mem.recall([T1, PROFILE], "secret", limit=5)} == {T1, PROFILE}
    assert mem.recall([Scope("profile", "researcher")], "secret", limit=5) == []
    assert mem.recall([], "secret", limit=5) == []


def test_items_of_another_embedder_or_dimension_are_never_compared(backend: MemoryBackend) -> None:
    LongTermMemory(backend, HashEmbedder(384)).remember(T1, "the tenant id is t-42")
    other = HashEmbedder(384)
    other.name = "another-model:384"  # same dimension, another model: its vectors mean something else
    new = LongTermMemory(backend, other)
    assert new.recall([T1], "the tenant id is t-42", limit=5) == []
    new.remember(T1, "the tenant id is t-42")
    assert [h.record.embedder for h in new.recall([T1], "tenant id", limit=5)] == ["another-model:384"]
    assert LongTermMemory(backend, HashEmbedder(64)).recall([T1], "tenant", limit=5) == []


def test_writes_are_upserts_on_the_key_or_the_source(backend: MemoryBackend) -> None:
    mem = LongTermMemory(backend, HashEmbedder())
    first = mem.remember(T1, "tenant is t-41", key="tenant")
    again = mem.remember(T1, "tenant is t-42", key="tenant")
    assert again.id == first.id and backend.get(T1, "tenant").text == "tenant is t-42"  # type: ignore[union-attr]
    assert backend.get(T2, "tenant") is None and backend.keys(T1) == ["tenant"] and backend.keys(T2) == []
    one = mem.remember(T1, "a fact", source_key="task/p1/s0/c1")
    two = mem.remember(T1, "a fact", source_key="task/p1/s0/c1")  # the same call, repeated after a crash
    assert one.id == two.id
    assert len(mem.recall([T1], "fact", limit=50)) == 2
    mem.remember(T2, "tenant is t-7", key="tenant")  # the same key in another scope is another item
    assert backend.get(T1, "tenant").text == "tenant is t-42"  # type: ignore[union-attr]
