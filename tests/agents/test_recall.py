"""Long-term memory without a database: the embedders and their selection, cosine ranking, bad input, and
the remember/recall tools driven by a model through the runner. The backends' own rules (scopes,
embedders kept apart, upserts) are the conformance suite in tests/tasks_app/test_recall_conformance.py."""

from __future__ import annotations

import json
import math

import pytest

from agents.errors import InvalidInput
from agents.inmemory_store import InMemoryStore
from agents.llm.config import EndpointConfig
from agents.profiles import AgentProfile
from agents.recall import InMemoryBackend, LongTermMemory, Scope
from agents.recall.embedders import HashEmbedder, LocalEmbedder, OpenAIEmbeddings, local_model_available, select_embedder
from agents.recall.records import pack
from agents.recall.search import top_k
from agents.runner import Runner
from tests.support.fake_openai import FakeOpenAI
from tests.support.queue_model import QueueModel, call, final, plan

FACTS = [
    "The staging database password rotates every Monday",
    "Acme Corp's tenant id is t-42",
    "Invoices are sent on the first day of each month",
    "The deploy pipeline needs two approvals",
]


def memory() -> LongTermMemory:
    return LongTermMemory(InMemoryBackend(), HashEmbedder())


def test_the_hash_embedder_is_deterministic_normalised_and_of_a_fixed_dimension() -> None:
    a, b = HashEmbedder(64).embed(["tenant id for Acme", "tenant id for Acme"])
    assert a == b and len(a) == 64
    assert math.isclose(math.sqrt(sum(x * x for x in a)), 1.0, rel_tol=1e-9)
    assert HashEmbedder(64).embed([""]) == [[0.0] * 64]  # nothing to hash: a zero vector, not a division by zero
    assert HashEmbedder(64).name == "hash-ngram-v1:64" != HashEmbedder(384).name


def test_top_k_ranks_by_cosine_and_ignores_length() -> None:
    blobs = [pack([1.0, 0.0]), pack([0.0, 3.0]), pack([2.0, 2.0]), pack([0.0, 0.0])]
    ranked = top_k(blobs, [0.0, 1.0], 3)
    assert [i for i, _ in ranked] == [1, 2, 0]
    assert ranked[0][1] == pytest.approx(1.0) and ranked[1][1] == pytest.approx(math.sqrt(0.5))
    assert top_k([], [1.0], 3) == [] and top_k(blobs, [1.0, 0.0], 0) == []


def test_bad_input_is_refused_with_a_reason() -> None:
    mem = memory()
    with pytest.raises(ValueError, match="empty"):
        mem.remember(Scope("task", "t"), "   ")
    with pytest.raises(ValueError, match="limit"):
        mem.recall([Scope("task", "t")], "x", limit=0)
    with pytest.raises(ValueError, match="scope"):
        Scope("team", "x")


def test_the_embedder_is_chosen_in_one_place() -> None:
    assert isinstance(select_embedder("hash"), HashEmbedder)
    with pytest.raises(InvalidInput, match="HORIZON_EMBEDDER must be one of"):
        select_embedder("bert")
    with pytest.raises(InvalidInput, match="needs an endpoint"):
        select_embedder("openai")
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", api_key="k", model="text-embedding-3-small")
    chosen = select_embedder("auto", openai_config=config)
    assert isinstance(chosen, OpenAIEmbeddings) and chosen.name == "openai:text-embedding-3-small"
    # Without an endpoint, auto takes the local model when the memory extra is installed (not loaded yet).
    auto = select_embedder("auto")
    assert isinstance(auto, LocalEmbedder if local_model_available() else HashEmbedder)


def test_the_openai_embedder_goes_through_the_llm_client() -> None:
    with FakeOpenAI() as server:
        config = EndpointConfig(base_url=server.url, api_key="k", model="text-embedding-3-small")
        mem = LongTermMemory(InMemoryBackend(), select_embedder("openai", openai_config=config))
        mem.remember(Scope("task", "t"), "Acme's tenant id is t-42")
        hits = mem.recall([Scope("task", "t")], "Acme's tenant id is t-42", limit=1)
        assert hits[0].score == pytest.approx(1.0) and hits[0].record.embedder == "openai:text-embedding-3-small"
        assert server.count("/v1/embeddings") == 2


# --- the tools, driven by a model through the runner -------------------------------------------


def run(model: QueueModel, store: InMemoryStore, profile: str = "default") -> str:
    profiles = {name: AgentProfile(name=name) for name in ("default", "other")}
    result = Runner(store, model, profiles=profiles).start("ship the thing", profile=profile)
    assert result.status == "completed", result.reason
    return result.task_id


def tool_results(model: QueueModel) -> list[object]:
    return [json.loads(r.messages[-1]["content"]) for r in model.requests if r.messages[-1]["role"] == "tool"]


def test_profile_memory_carries_over_to_later_tasks_of_the_profile_only() -> None:
    store = InMemoryStore()
    first = QueueModel(
        plan=[plan("learn")],
        step=[
            call("remember", {"text": "Acme Corp's tenant id is t-42", "scope": "profile"}),
            call("remember", {"text": "this task used the blue build", "metadata": {"source": "ci"}}),
            final("noted"),
        ],
    )
    task1 = run(first, store)
    assert tool_results(first) == ["remembered (profile memory)", "remembered (task memory)"]

    second = QueueModel(plan=[plan("use")], step=[call("recall", {"query": "tenant id of Acme"}), final("used")])
    run(second, store)
    (hits,) = tool_results(second)
    assert hits[0]["text"] == "Acme Corp's tenant id is t-42" and hits[0]["scope"] == "profile"
    assert all(h["text"] != "this task used the blue build" for h in hits)  # task 1's own memory stays with it

    other = QueueModel(plan=[plan("use")], step=[call("recall", {"query": "tenant id of Acme"}), final("used")])
    run(other, store, profile="other")
    assert tool_results(other) == [[]]

    # The write is journaled like any tool call with a side effect.
    entries = [e for e in store.journal_entries(task1) if e.name == "remember"]
    assert len(entries) == 2 and all(e.status == "completed" and e.kind == "tool" for e in entries)


def test_recall_by_key_and_the_list_of_keys() -> None:
    store = InMemoryStore()
    model = QueueModel(
        plan=[plan("a")],
        step=[
            call("remember", {"key": "tenant-id", "text": "t-42"}),
            call("remember", {"key": "region", "text": "eu-west-1", "scope": "profile"}),
            call("recall", {"key": "region"}),
            call("recall", {}),
            call("recall", {"key": "nope"}),
            call("recall", {"key": "tenant-id", "query": "x"}),
            final("done"),
        ],
    )
    task_id = run(model, store)
    results = tool_results(model)
    assert results[2:4] == ["eu-west-1", ["region", "tenant-id"]]
    assert results[4] == {"error": "no note 'nope'"} and results[5] == {"error": "give a query or a key, not both"}
    assert store.workspace_list(task_id) == [".notes/tenant-id"]  # task-scoped named facts are notes too
