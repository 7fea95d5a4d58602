"""The claim and a model's journaled answer commit without waiting for their WAL flush; the tick's
commit waits (tasks_app.store.prepared.async_commit). These tests show that the shortcut is real, and that
the one thing it can cost, a claim undone by a database crash, still fences its holder."""

from __future__ import annotations

import pytest
from django.db import connection

from agents.store import CommitResult
from agents.types import JournalEntry, LLMResponse, NewTask
from tasks_app.models import AgentTask
from tasks_app.store import PostgresStore
from tests.tasks_app.test_store_conformance import simple_commit

# Statistics are flushed for this test's session only: its statements must all run in it.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("one_pooled_connection")]

ROUNDS = 30


def wal_flushes() -> int:
    """WAL flushes (fsync/fdatasync) of the whole cluster since its statistics were reset.

    A backend reports its counts to the shared statistics at most once a second, unless asked to
    do so when it is next idle: this test's writes all run on this connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT wal_sync FROM pg_stat_wal")
        return int(cursor.fetchone()[0])


def llm_entry(key: str) -> JournalEntry:
    answer = LLMResponse(content="done", model="m").to_json()
    return JournalEntry(key=key, kind="llm", name="m", request_digest="d", status="completed", result=answer)


def test_claims_and_model_answers_do_not_wait_for_a_flush_but_commits_do() -> None:
    store = PostgresStore()
    task_ids = [store.create_task(NewTask(goal=f"g{i}")) for i in range(ROUNDS)]
    before = wal_flushes()
    leases = []
    for i, task_id in enumerate(task_ids):
        lease = store.claim(task_id, owner="w", lease_seconds=60)
        assert lease is not None
        store.journal_complete(lease, llm_entry(f"{task_id}/p1/s0/c{i}"))
        leases.append(lease)
    unflushed = wal_flushes() - before
    # 60 asynchronous commits: at most the WAL writer's own periodic flushes (every 200 ms) happen
    # meanwhile, against one per commit if they waited.
    assert unflushed < ROUNDS // 3, f"{unflushed} WAL flushes for {2 * ROUNDS} claims and answers"

    before = wal_flushes()
    for lease in leases:
        assert store.commit(lease, simple_commit(1)) is CommitResult.COMMITTED
    assert wal_flushes() - before >= ROUNDS  # each tick's commit waits for its own flush
    # What was committed asynchronously is there for everyone at once.
    assert store.journal_get(f"{task_ids[0]}/p1/s0/c0") is not None


def test_a_claim_undone_by_a_database_crash_still_fences_its_holder() -> None:
    """A crash can undo an unflushed claim; the next claim then gets the same epoch number, under
    another owner. The first holder, if it ever writes again, is fenced by the owner check."""
    store = PostgresStore()
    task_id = store.create_task(NewTask(goal="g"))
    lost = store.claim(task_id, owner="host:1:aaaa", lease_seconds=60)
    assert lost is not None
    # What recovery leaves when the claim's WAL never reached the disk: the row as it was before.
    AgentTask.objects.filter(pk=task_id).update(
        lease_owner=None, lease_expires_at=None, lease_epoch=lost.epoch - 1, status="pending", step_attempts=0
    )
    winner = store.claim(task_id, owner="host:2:bbbb", lease_seconds=60)
    assert winner is not None and winner.epoch == lost.epoch

    with pytest.raises(Exception, match="stale"):
        store.journal_complete(lost, llm_entry(f"{task_id}/p1/s0/c0"))
    assert store.commit(lost, simple_commit(1)) is CommitResult.FENCED
    assert store.journal_get(f"{task_id}/p1/s0/c0") is None and len(store.events(task_id)) == 1
    assert store.commit(winner, simple_commit(1)) is CommitResult.COMMITTED
