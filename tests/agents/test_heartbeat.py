"""The lease heartbeat (agents/heartbeat.py): a tick keeps a short lease for as long as it lives, a
lease taken over meanwhile stops the tick before its commit, and a tick past its limit lets it go."""

from __future__ import annotations

import threading
import time
from typing import Any

from agents.inmemory_store import InMemoryStore
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.types import LLMRequest, LLMResponse
from tests.conftest import make_scenario

LEASE = 0.6  # the heartbeat renews every 0.15 s


class SlowModel(ScriptedModel):
    """Answers like the scripted model, after `delay` seconds (a long model call)."""

    def __init__(self, scenario: dict, delay: float) -> None:  # type: ignore[type-arg]
        super().__init__(scenario)
        self.delay = delay
        self.calling = threading.Event()

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.calling.set()
        time.sleep(self.delay)
        return super().complete(request)


def in_thread(fn):  # type: ignore[no-untyped-def]
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    return thread, result


def tick_in_a_slow_call(delay: float, **runner_options: Any) -> tuple[InMemoryStore, Runner, str, threading.Thread, list[object]]:
    """A one-step task's tick on its own thread, returned once the tick's model call (`delay` s) has begun."""
    store = InMemoryStore()
    model = SlowModel(make_scenario(1), delay=delay)
    runner = Runner(store, model, lease_seconds=LEASE, **runner_options)
    task_id = runner.create("goal")
    thread, outcome = in_thread(lambda: runner.tick(task_id))
    model.calling.wait(5)
    return store, runner, task_id, thread, outcome


def test_a_long_call_keeps_its_short_lease_and_commits() -> None:
    store, runner, task_id, thread, outcome = tick_in_a_slow_call(4 * LEASE)
    for _ in range(int(4 * LEASE / 0.1)):  # well past the lease it was claimed with
        assert store.claim(task_id, owner="other", lease_seconds=LEASE) is None
        time.sleep(0.1)
    thread.join(10)
    assert outcome[0].committed  # type: ignore[attr-defined]
    assert runner.heartbeat.renewals >= 3


def test_a_tick_whose_lease_was_taken_over_during_its_call_writes_nothing() -> None:
    store, _, task_id, thread, outcome = tick_in_a_slow_call(4 * LEASE)
    # What a frozen or partitioned worker looks like from outside: its lease expires and another
    # worker claims the task (break_lease stands in for the expiry).
    owner = store.get_task(task_id).lease_owner
    assert store.break_lease(task_id, owner=owner)
    other = store.claim(task_id, owner="other", lease_seconds=60)
    assert other is not None
    events_before = len(store.events(task_id))
    thread.join(10)
    assert outcome[0].fenced and not outcome[0].committed  # type: ignore[attr-defined]
    assert len(store.events(task_id)) == events_before
    assert store.journal_entries(task_id) == []  # not even the model's answer
    assert store.get_task(task_id).lease_owner == "other"


def test_a_tick_past_its_limit_loses_its_lease_to_another_worker() -> None:
    store, _, task_id, thread, outcome = tick_in_a_slow_call(6 * LEASE, tick_limit=lambda task: LEASE)
    deadline = time.monotonic() + 4 * LEASE
    taken = None
    while taken is None and time.monotonic() < deadline:
        taken = store.claim(task_id, owner="other", lease_seconds=60)
        time.sleep(0.05)
    assert taken is not None  # the stuck tick stopped renewing: its lease expired
    thread.join(10)
    assert outcome[0].fenced  # type: ignore[attr-defined]
