"""One conformance suite for every Store: in memory, DjangoStore on SQLite, DjangoStore (its ORM path)
on PostgreSQL, and PostgresStore (PostgreSQL's single statements) on PostgreSQL.

Fencing, claiming, gap-free commits and the journal must behave the same on all four; the
concurrency tests use real threads, each with its own database connection.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

import pytest
from django.db import connections

from agents.errors import LeaseLost, TaskNotFound
from agents.events import TaskState
from agents.inmemory_store import InMemoryStore
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.status import TaskStatus, TransitionError
from agents.store import CommitResult
from agents.types import JournalEntry, LLMResponse, NewEvent, NewTask, TickCommit
from tasks_app.store import DjangoStore, PostgresStore, store_for
from tests.conftest import make_scenario

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])


DATABASE_STORES = ["sqlite", "postgres-orm", "postgres"]


def _database_store(kind: str) -> DjangoStore:
    if kind == "sqlite":
        return DjangoStore(using="sqlite")
    # The base class's ORM path on PostgreSQL too: callers may construct DjangoStore directly.
    return DjangoStore(using="default") if kind == "postgres-orm" else PostgresStore(using="default")


@pytest.fixture(params=["memory", *DATABASE_STORES])
def store(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return InMemoryStore() if request.param == "memory" else _database_store(request.param)


@pytest.fixture(params=DATABASE_STORES)
def database_store(request: pytest.FixtureRequest) -> DjangoStore:
    """The stores that serve several processes: concurrency tests need no in-memory variant."""
    return _database_store(request.param)


def test_the_factory_picks_the_dialects_store_and_observes_whichever_it_picks() -> None:
    from tasks_app.observability.instrument import ObservedStore

    assert type(store_for("default")) is PostgresStore
    assert type(store_for("sqlite")) is DjangoStore
    for using, dialect in (("default", PostgresStore), ("sqlite", DjangoStore)):
        observed = store_for(using, observer=ObservedStore)
        assert isinstance(observed, ObservedStore) and isinstance(observed, dialect) and observed.db == using
        assert type(observed).claim is ObservedStore.claim  # the observer's claim, over the dialect's
        assert type(store_for(using, observer=ObservedStore)) is type(observed)  # one class per pair


def simple_commit(
    base: int, *, checkpoint: int = 0, status: str = TaskStatus.RUNNING, runnable: bool = True, events: int = 1
) -> TickCommit:
    state = TaskState(last_event_seq=base + events).to_json()
    return TickCommit(
        base_event_seq=base,
        base_checkpoint_seq=checkpoint,
        events=tuple(NewEvent(type="task.resumed", payload={"n": i}) for i in range(events)),
        checkpoint_state=state,
        status=status,
        runnable=runnable,
    )


def test_create_writes_the_task_and_its_first_event(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g", context={"k": 1}))
    record = store.get_task(task_id)
    assert (record.goal, record.context, record.status, record.last_event_seq) == ("g", {"k": 1}, "pending", 1)
    [created] = store.events(task_id)
    assert (created.seq, created.type, created.schema_version) == (1, "task.created", 1)
    assert store.due_tasks(limit=10) == [task_id]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.uuid4())])
def test_unknown_task_ids_raise_task_not_found(store, bad_id: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TaskNotFound):
        store.get_task(bad_id)
    with pytest.raises(TaskNotFound):
        store.claim(bad_id, owner="w", lease_seconds=10)


def test_a_leased_task_cannot_be_claimed_again_until_commit(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    lease = store.claim(task_id, owner="a", lease_seconds=60)
    assert lease is not None and lease.epoch == 1 and lease.took_over_from is None
    assert store.claim(task_id, owner="b", lease_seconds=60) is None
    assert store.due_tasks(limit=10) == []
    assert store.commit(lease, simple_commit(1)) is CommitResult.COMMITTED
    again = store.claim(task_id, owner="b", lease_seconds=60)
    assert again is not None and again.epoch == 2
    assert store.get_task(task_id).step_attempts == 1  # a commit resets the attempt counter


def test_concurrent_claims_have_exactly_one_winner(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    barrier = threading.Barrier(8)
    wins: list[object] = []
    errors: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            barrier.wait()
            lease = store.claim(task_id, owner=f"w{n}", lease_seconds=60)
            if lease is not None:
                wins.append(lease)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(wins) == 1
    assert store.get_task(task_id).lease_epoch == 1


def test_a_stale_epoch_writes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    zombie = store.claim(task_id, owner="zombie", lease_seconds=0.2)
    time.sleep(0.3)  # the zombie's lease expires...
    owner = store.claim(task_id, owner="owner", lease_seconds=60)  # ...and is taken over
    assert owner is not None and owner.took_over_from == "zombie" and owner.epoch == zombie.epoch + 1
    assert store.get_task(task_id).resume_count == 1
    before = (store.events(task_id), store.checkpoints(task_id), store.steps(task_id))

    assert store.commit(zombie, simple_commit(1, status=TaskStatus.COMPLETED, runnable=False)) is CommitResult.FENCED
    with pytest.raises(LeaseLost):
        store.journal_complete(
            zombie, JournalEntry(key=f"{task_id}/k", kind="llm", name="m", request_digest="d", status="completed")
        )
    with pytest.raises(LeaseLost):
        store.journal_run(
            zombie, JournalEntry(key=f"{task_id}/k2", kind="tool", name="t", request_digest="d", status="started"), dict
        )
    with pytest.raises(LeaseLost):
        store.journal_begin(
            zombie, JournalEntry(key=f"{task_id}/k3", kind="tool", name="t", request_digest="d", status="started")
        )
    assert store.release(zombie) is False

    assert (store.events(task_id), store.checkpoints(task_id), store.steps(task_id)) == before
    assert all(store.journal_get(f"{task_id}/{k}") is None for k in ("k", "k2", "k3"))
    record = store.get_task(task_id)
    assert (record.status, record.lease_owner, record.lease_epoch) == (TaskStatus.RUNNING, "owner", owner.epoch)
    assert store.commit(owner, simple_commit(1)) is CommitResult.COMMITTED


def test_a_claim_waits_for_a_fenced_transaction_of_the_lease_it_takes_over(database_store: DjangoStore) -> None:
    """The fence holds the task row until its transaction ends: a claim of the expired lease waits,
    so the tool's effect and its journal row commit under the lease they were fenced on."""
    store = database_store
    task_id = store.create_task(NewTask(goal="g"))
    lease = store.claim(task_id, owner="a", lease_seconds=0.2)
    time.sleep(0.3)  # the lease expires: a claim may take it over
    claims: list[object] = []

    def claim() -> None:
        try:
            claims.append(store.claim(task_id, owner="b", lease_seconds=60))
        finally:
            connections.close_all()

    claimer = threading.Thread(target=claim)

    def tool() -> str:
        claimer.start()
        claimer.join(timeout=0.5)
        assert claimer.is_alive(), "the claim did not wait for the fenced transaction"
        return "done"

    entry = JournalEntry(key=f"{task_id}/k", kind="tool", name="t", request_digest="d", status="started")
    assert store.journal_run(lease, entry, tool).result == "done"
    claimer.join()
    assert store.journal_get(entry.key).status == "completed"
    assert len(claims) == 1 and claims[0] is not None and claims[0].epoch == lease.epoch + 1


def test_commits_assign_gap_free_seqs_and_checkpoint_each_tick(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    base = 1
    for checkpoint, n in enumerate((2, 1, 3)):
        lease = store.claim(task_id, owner="w", lease_seconds=60)
        assert store.commit(lease, simple_commit(base, checkpoint=checkpoint, events=n)) is CommitResult.COMMITTED
        base += n
    assert [e.seq for e in store.events(task_id)] == list(range(1, 8))
    assert [(c.seq, c.event_seq) for c in store.checkpoints(task_id)] == [(1, 3), (2, 4), (3, 7)]
    lease = store.claim(task_id, owner="w", lease_seconds=60)
    snapshot = store.load(lease)
    assert snapshot.checkpoint is not None and snapshot.checkpoint.event_seq == 7 and snapshot.events == ()
    assert store.events(task_id, after_seq=5, limit=1)[0].seq == 6


def test_a_commit_on_a_moved_log_is_a_conflict_and_writes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    lease = store.claim(task_id, owner="w", lease_seconds=60)
    assert store.commit(lease, simple_commit(0)) is CommitResult.CONFLICT  # the log is at 1, not 0
    assert [e.seq for e in store.events(task_id)] == [1] and store.checkpoints(task_id) == []


def test_commits_follow_the_state_machine(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    lease = store.claim(task_id, owner="w", lease_seconds=60)
    with pytest.raises(TransitionError):
        store.commit(lease, simple_commit(1, status=TaskStatus.PENDING))
    assert store.commit(lease, simple_commit(1, status=TaskStatus.COMPLETED, runnable=False)) is CommitResult.COMMITTED
    assert store.claim(task_id, owner="w", lease_seconds=60) is None  # a completed task is never claimed
    assert store.due_tasks(limit=10) == []


def test_release_with_a_delay_defers_the_next_claim(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    lease = store.claim(task_id, owner="w", lease_seconds=60)
    assert store.release(lease, retry_in=60) is True
    assert store.claim(task_id, owner="w", lease_seconds=60) is None  # not due for a minute
    assert store.due_tasks(limit=10) == []


def test_a_release_that_refunds_the_attempt_leaves_the_counter_as_it_was(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    for _ in range(3):
        lease = store.claim(task_id, owner="w", lease_seconds=60)
        assert store.get_task(task_id).step_attempts == 1
        assert store.release(lease, refund_attempt=True) is True
    assert store.get_task(task_id).step_attempts == 0
    lease = store.claim(task_id, owner="w", lease_seconds=60)
    store.release(lease)
    assert store.get_task(task_id).step_attempts == 1  # an ordinary release keeps the attempt


def test_break_lease_frees_a_dead_owners_task(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    store.claim(task_id, owner="dead", lease_seconds=600)
    assert store.leased_tasks() == [(task_id, "dead")]
    assert store.break_lease(task_id, owner="someone-else") is False
    assert store.break_lease(task_id, owner="dead") is True
    assert store.claim(task_id, owner="w", lease_seconds=60) is not None


def test_renewing_a_lease_keeps_it_past_its_first_expiry(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    lease = store.claim(task_id, owner="a", lease_seconds=0.5)
    first = store.lease_expires_at(task_id)
    assert store.renew([lease], lease_seconds=60) == []
    assert store.lease_expires_at(task_id) > first
    time.sleep(0.7)  # past the lease it was claimed with
    assert store.claim(task_id, owner="b", lease_seconds=60) is None
    assert store.commit(lease, simple_commit(1)) is CommitResult.COMMITTED  # still the owner


def test_a_lease_taken_over_is_reported_lost_and_never_extended(store) -> None:  # type: ignore[no-untyped-def]
    taken, kept = store.create_task(NewTask(goal="g")), store.create_task(NewTask(goal="h"))
    stale = store.claim(taken, owner="a", lease_seconds=0.3)
    mine = store.claim(kept, owner="a", lease_seconds=60)
    time.sleep(0.4)
    newer = store.claim(taken, owner="b", lease_seconds=5)
    assert newer is not None and newer.epoch == stale.epoch + 1
    expires = store.lease_expires_at(taken)
    # One call for every tick in flight: only the lease that was taken over comes back, as lost.
    assert store.renew([stale, mine], lease_seconds=600) == [stale]
    assert store.lease_expires_at(taken) == expires  # the new owner's lease is as it was
    assert store.commit(stale, simple_commit(1)) is CommitResult.FENCED
    assert store.commit(newer, simple_commit(1)) is CommitResult.COMMITTED
    assert store.renew([newer], lease_seconds=60) == [newer]  # committed: the lease is gone
    assert store.renew([], lease_seconds=60) == []


def test_the_journal_records_once_and_rolls_back_with_a_failed_tool(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))
    lease = store.claim(task_id, owner="w", lease_seconds=60)
    key = f"{task_id}/p1/s0/c0"
    assert store.journal_get(key) is None
    entry = JournalEntry(key=key, kind="tool", name="t", request_digest="d1", status="started")
    store.journal_begin(lease, entry)
    assert store.journal_get(key).status == "started"
    store.journal_complete(
        lease, JournalEntry(key=key, kind="tool", name="t", request_digest="d1", status="completed", result={"ok": 1})
    )
    assert store.journal_get(key).result == {"ok": 1}

    def write_then_fail() -> None:
        store.workspace_write(task_id, "a.txt", "partial")
        raise RuntimeError("tool failed")

    failing = JournalEntry(key=f"{task_id}/p1/s0/c1", kind="tool", name="t", request_digest="d2", status="started")
    with pytest.raises(RuntimeError):
        store.journal_run(lease, failing, write_then_fail)
    assert store.journal_get(failing.key) is None and store.workspace_read(task_id, "a.txt") is None

    def write() -> str:
        store.workspace_write(task_id, "a.txt", "whole")
        return "written"

    assert store.journal_run(lease, failing, write).result == "written"
    assert store.journal_run(lease, failing, write_then_fail).result == "written"  # recorded: not run again
    assert store.workspace_read(task_id, "a.txt") == "whole"
    assert store.workspace_list(task_id) == ["a.txt"]


def test_a_commit_writes_the_model_answers_it_carries_under_its_own_fence(store) -> None:  # type: ignore[no-untyped-def]
    task_id = store.create_task(NewTask(goal="g"))

    def answers(*names: str) -> tuple[JournalEntry, ...]:
        return tuple(
            JournalEntry(
                key=f"{task_id}/p1/s0/{n}",
                kind="llm",
                name="m",
                request_digest=f"d-{n}",
                status="completed",
                result=LLMResponse(content=f"answer {n}", model="m").to_json(),
            )
            for n in names
        )

    zombie = store.claim(task_id, owner="zombie", lease_seconds=0.2)
    time.sleep(0.3)
    owner = store.claim(task_id, owner="owner", lease_seconds=60)
    fenced = replace(simple_commit(1), journal=answers("z"))
    assert store.commit(zombie, fenced) is CommitResult.FENCED
    conflict = replace(simple_commit(0), journal=answers("x"))
    assert store.commit(owner, conflict) is CommitResult.CONFLICT
    assert store.journal_get(f"{task_id}/p1/s0/z") is None and store.journal_get(f"{task_id}/p1/s0/x") is None

    # An entry begun earlier under one of the keys is completed, as journal_complete would.
    store.journal_begin(
        owner, JournalEntry(key=f"{task_id}/p1/s0/c1", kind="tool", name="t", request_digest="old", status="started")
    )
    assert store.commit(owner, replace(simple_commit(1), journal=answers("c0", "c1"))) is CommitResult.COMMITTED
    for name in ("c0", "c1"):
        entry = store.journal_get(f"{task_id}/p1/s0/{name}")
        assert entry is not None and (entry.status, entry.request_digest) == ("completed", f"d-{name}")
        assert LLMResponse.from_json(entry.result).content == f"answer {name}"
    assert [e.key.rsplit("/", 1)[1] for e in store.journal_entries(task_id)] == ["c1", "c0"]  # in order of first write


def test_a_whole_run_replays_to_its_checkpoints(store) -> None:  # type: ignore[no-untyped-def]
    from agents.events import rebuild

    result = Runner(store, ScriptedModel(make_scenario(3))).start("goal")
    assert result.status == "completed"
    assert [s.status for s in store.steps(result.task_id)] == ["completed"] * 3
    checkpoints = store.checkpoints(result.task_id)
    events = store.events(result.task_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for previous, current in zip([None, *checkpoints], checkpoints, strict=False):
        after = previous.event_seq if previous else 0
        between = [e for e in events if after < e.seq <= current.event_seq]
        assert rebuild(previous, between).to_json() == current.state


def append_event_behind_the_runners_back(store, task_id: str) -> None:  # type: ignore[no-untyped-def]
    """What an operator's service does (cancel, signal): append an event without the lease."""
    from dataclasses import replace

    from django.db.models import F

    from agents.types import EventRecord
    from tasks_app.models import AgentTask, Event

    seq = store.get_task(task_id).last_event_seq + 1
    if isinstance(store, InMemoryStore):
        task = store._tasks[task_id]  # noqa: SLF001 - no public append exists yet
        task.events.append(EventRecord(seq=seq, type="task.resumed", payload={"by": "operator"}))
        task.record = replace(task.record, last_event_seq=seq)
    else:
        Event.objects.using(store.db).create(task_id=task_id, seq=seq, type="task.resumed", payload={"by": "operator"})
        AgentTask.objects.using(store.db).filter(pk=task_id).update(last_event_seq=F("last_event_seq") + 1)


def test_a_tick_that_conflicts_with_an_appended_event_redoes_on_fresh_state(store) -> None:  # type: ignore[no-untyped-def]
    scenario = make_scenario(2)

    class Interrupted(ScriptedModel):
        interrupted = False

        def complete(self, request):  # type: ignore[no-untyped-def]
            if request.purpose == "step" and not self.interrupted:
                self.interrupted = True
                append_event_behind_the_runners_back(store, task_id)
            return super().complete(request)

    model = Interrupted(scenario)
    runner = Runner(store, model)
    task_id = runner.create("goal")
    runner.tick(task_id)  # plan
    outcome = runner.tick(task_id)
    assert outcome.committed and outcome.step_index == 0
    assert outcome.journal_hits == 1  # the redo reused the answer the conflicted pass paid for
    assert model.requests == 2  # the plan and one step answer: nothing asked twice
    events = store.events(task_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events][-2:] == ["task.resumed", "step.completed"]
    assert runner.run(task_id).status == "completed"


@pytest.mark.parametrize("new_titles", [["b2"], ["b2", "c2", "d2", "e2"]], ids=["shrinks", "grows"])
def test_a_replan_replaces_the_remaining_steps_in_one_commit(store, new_titles: list[str]) -> None:  # type: ignore[no-untyped-def]
    from agents.profiles import AgentProfile
    from tests.support.queue_model import QueueModel, final, plan

    model = QueueModel(
        plan=[plan("a", "b", "c")],
        step=[final("a done"), LLMResponse(content=None, refusal="no")],
        replan=[plan(*new_titles)],
    )
    profiles = {"default": AgentProfile(name="default")}
    result = Runner(store, model, profiles=profiles).start("goal")
    assert result.status == "completed"
    steps = store.steps(result.task_id)
    assert [(s.index, s.title, s.plan_version, s.status) for s in steps] == [(0, "a", 1, "completed")] + [
        (i + 1, title, 2, "completed") for i, title in enumerate(new_titles)
    ]
    assert steps[1].transcript and steps[1].transcript[-1]["content"] == f"ok: {new_titles[0]}"
    assert rebuild_matches_checkpoint(store, result.task_id)


def rebuild_matches_checkpoint(store, task_id: str) -> bool:  # type: ignore[no-untyped-def]
    from agents.events import rebuild

    return rebuild(None, store.events(task_id)).to_json() == store.latest_checkpoint(task_id).state
