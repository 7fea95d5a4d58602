"""Long-term memory and compaction on PostgreSQL: pgvector detection falling back to numpy, the
embedder chosen from settings, the vector bytes stored, and a scripted task whose remember/recall
tools and compaction go through the real store. (The backend rules: test_recall_conformance.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

from agents.recall import LongTermMemory, Scope
from agents.recall.embedders import HashEmbedder
from agents.scripted import ScriptedModel
from tasks_app import recall_store as orm_memory
from tasks_app.models import AgentTask, Event, JournalEntry, MemoryItem, Step
from tasks_app.recall_store import OrmMemory, pgvector_available
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.conftest import make_scenario

pytestmark = pytest.mark.django_db


@pytest.fixture
def hash_embedder() -> Iterator[None]:
    """The settings' embedder is built once per process: rebuild it under HORIZON_EMBEDDER=hash."""
    orm_memory.embedder.cache_clear()
    orm_memory._memories.clear()
    with override_settings(HORIZON_EMBEDDER="hash"):
        yield
    orm_memory.embedder.cache_clear()
    orm_memory._memories.clear()


def test_pgvector_is_detected_absent_here_and_search_falls_back_to_numpy() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
        (available,) = cursor.fetchone()
    assert available == 0, "this machine's PostgreSQL has pgvector now: the pgvector path can be tested"
    assert pgvector_available() is False
    backend = OrmMemory()
    LongTermMemory(backend, HashEmbedder()).remember(Scope("task", "t"), "a fact")
    assert LongTermMemory(backend, HashEmbedder()).recall([Scope("task", "t")], "fact", limit=1)
    assert backend.backend == "numpy" and backend._pgvector is False
    row = MemoryItem.objects.get(scope="task", scope_id="t")
    assert (row.embedder, row.dim, len(bytes(row.embedding))) == ("hash-ngram-v1:384", 384, 384 * 4)  # float32
    assert pgvector_available("sqlite") is False


def test_the_embedder_comes_from_settings(hash_embedder: None) -> None:
    assert orm_memory.embedder().name == "hash-ngram-v1:384"
    orm_memory.embedder.cache_clear()
    with override_settings(
        HORIZON_EMBEDDER="openai", OPENAI_BASE_URL="http://127.0.0.1:9/v1", HORIZON_EMBEDDING_MODEL="emb-small"
    ):
        assert orm_memory.embedder().name == "openai:emb-small"


def test_a_scripted_task_remembers_recalls_and_compacts_on_postgresql(hash_embedder: None) -> None:
    big = " ".join(f"row {i} of the ledger holds {i * 13} credits" for i in range(60))
    scenario = make_scenario(
        2,
        tool_steps={
            0: [
                {"tool": "remember", "arguments": {"text": "Acme's tenant id is t-42", "scope": "profile"}},
                {"tool": "write_file", "arguments": {"path": "ledger.txt", "content": big}},
                {"tool": "read_file", "arguments": {"path": "ledger.txt"}},
                {"tool": "read_file", "arguments": {"path": "ledger.txt"}},
                {"final": "read the ledger"},
            ],
            1: [{"tool": "recall", "arguments": {"query": "Acme tenant id"}}, {"final": "found it"}],
        },
    )
    with override_settings(HORIZON_PROFILES_FILE=""):
        from tasks_app import runtime

        runtime.profiles.cache_clear()
        try:
            task = agent_task_create(goal="Keep the ledger", profile="default")
            AgentTask.objects.filter(pk=task.id).update(
                profile_config={**task.profile_config, "max_prompt_tokens": 900}  # type: ignore[dict-item]
            )
            agent_task_drive(task_id=str(task.id), model=ScriptedModel(scenario))
        finally:
            runtime.profiles.cache_clear()
    task.refresh_from_db()
    assert task.status == "completed", task.status_reason
    item = MemoryItem.objects.get(scope="profile", scope_id="default")
    assert item.text == "Acme's tenant id is t-42" and item.source_key == f"{task.id}/p1/s0/c1"
    assert JournalEntry.objects.get(key=f"{task.id}/p1/s0/c1").status == "completed"
    recall_result = JournalEntry.objects.get(key=f"{task.id}/p1/s1/c1").result
    assert recall_result["ok"] and recall_result["output"][0]["text"] == "Acme's tenant id is t-42"

    compactions = list(Event.objects.filter(task=task, type="context.compacted").order_by("seq"))
    assert compactions, "step 0 went over its 900-token budget and was not compacted"
    payload = compactions[0].payload
    assert payload["events"] == {"from": 1, "to": 2} and payload["messages"]["from"] == 1
    assert payload["summary"].startswith("Earlier in this step")  # the scripted model's offline summary
    assert JournalEntry.objects.get(key=payload["summary_key"]).status == "completed"
    transcript = Step.objects.get(task=task, index=0).transcript
    assert len(transcript) == 10  # the raw messages, whole: prompt, 4 tool turns, the answer
