"""The circuit breaker and GuardedModel, over OpenAIModel and the fake server, with a test clock."""

from __future__ import annotations

import pytest

from agents.errors import CircuitOpen, ModelRejected, TransientError
from agents.llm.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, GuardedModel, InMemoryBreakerState
from agents.llm.client import OpenAIModel
from agents.types import LLMRequest
from tests.support.fake_openai import FakeOpenAI

REQUEST = LLMRequest(purpose="step", messages=({"role": "user", "content": "Step 1 of 1: Ping"},))
BOOM = {"status": 500, "body": {"error": {"message": "boom"}}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock) -> CircuitBreaker:
    return CircuitBreaker(InMemoryBreakerState(), "fake/gpt-4o", failure_threshold=3, cool_down=30.0, clock=clock)


def test_opens_after_n_failures_then_refuses_without_calling(fake_openai, model, breaker):
    guarded = GuardedModel(model, breaker)
    fake_openai.script(BOOM, BOOM, BOOM)
    for _ in range(3):
        with pytest.raises(TransientError) as caught:
            guarded.complete(REQUEST)
        assert not isinstance(caught.value, CircuitOpen)
    assert breaker.status().state == OPEN
    assert fake_openai.count() == 3

    with pytest.raises(CircuitOpen) as refused:
        guarded.complete(REQUEST)

    assert refused.value.retry_after == 30.0
    assert isinstance(refused.value, TransientError)  # callers that retry transients reschedule it
    assert fake_openai.count() == 3  # the endpoint was not called


def test_a_success_resets_the_consecutive_count(fake_openai, model, breaker):
    guarded = GuardedModel(model, breaker)
    fake_openai.script(BOOM, BOOM, {"content": "ok"}, BOOM, BOOM)
    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(guarded.complete(REQUEST).content)
        except TransientError:
            outcomes.append("failed")
    assert outcomes == ["failed", "failed", "ok", "failed", "failed"]
    assert breaker.status().state == CLOSED and breaker.status().failures == 2
    assert fake_openai.count() == 5


def test_half_open_trial_failure_reopens_and_success_closes(fake_openai, model, breaker, clock):
    guarded = GuardedModel(model, breaker)
    fake_openai.script(BOOM, BOOM, BOOM)
    for _ in range(3):
        with pytest.raises(TransientError):
            guarded.complete(REQUEST)

    clock.now += 20
    with pytest.raises(CircuitOpen) as refused:
        guarded.complete(REQUEST)
    assert refused.value.retry_after == pytest.approx(10.0)
    assert fake_openai.count() == 3

    clock.now += 10  # cool-down over: one trial goes through, and fails
    fake_openai.script(BOOM)
    with pytest.raises(TransientError) as trial:
        guarded.complete(REQUEST)
    assert not isinstance(trial.value, CircuitOpen)
    assert fake_openai.count() == 4
    assert breaker.status().state == OPEN
    with pytest.raises(CircuitOpen) as reopened:
        guarded.complete(REQUEST)
    assert reopened.value.retry_after == 30.0  # the cool-down started again at the failed trial
    assert fake_openai.count() == 4

    clock.now += 30  # the next trial succeeds (the fake's default answer) and closes the breaker
    assert guarded.complete(REQUEST).content == "done: Ping"
    assert breaker.status().state == CLOSED and breaker.status().failures == 0
    assert guarded.complete(REQUEST).content == "done: Ping"
    assert fake_openai.count() == 6


def test_half_open_lets_one_trial_through_at_a_time(breaker, clock):
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30

    first, second = breaker.admit(), breaker.admit()

    assert first.allowed and first.trial
    assert not second.allowed and second.retry_after == 30.0
    assert breaker.status().state == HALF_OPEN
    # A trial whose caller died never reports; after trial_timeout another caller may try.
    clock.now += 30
    assert breaker.admit().trial


def test_permanent_errors_do_not_trip_it(fake_openai, model, breaker):
    guarded = GuardedModel(model, breaker)
    fake_openai.script(*[{"status": 401, "body": {"error": {"message": "bad key"}}}] * 5)
    for _ in range(5):
        with pytest.raises(ModelRejected):
            guarded.complete(REQUEST)
    assert breaker.status().state == CLOSED and breaker.status().failures == 0
    assert fake_openai.count() == 5


def test_fallback_answers_while_open(fake_openai, model, breaker, endpoint):
    with FakeOpenAI() as backup_server:
        backup = OpenAIModel(endpoint(base_url=backup_server.url, model="backup-model", name="backup"))
        guarded = GuardedModel(model, breaker, fallback=backup)
        fake_openai.script(BOOM, BOOM, BOOM)
        for _ in range(3):
            with pytest.raises(TransientError):
                guarded.complete(REQUEST)
        assert backup_server.count() == 0  # the fallback is for an open breaker, not for each failure

        response = guarded.complete(REQUEST)

        assert response.content == "done: Ping"
        assert response.model == "backup-model"
        assert backup_server.count() == 1
        assert fake_openai.count() == 3


def test_the_state_is_shared_through_the_store(fake_openai, model, clock):
    # Two workers, each with its own breaker object over one store: one opens it, both see it open.
    store = InMemoryBreakerState()
    worker_a = GuardedModel(model, CircuitBreaker(store, "ep", failure_threshold=2, cool_down=60, clock=clock))
    worker_b = GuardedModel(model, CircuitBreaker(store, "ep", failure_threshold=2, cool_down=60, clock=clock))
    other_endpoint = GuardedModel(model, CircuitBreaker(store, "other", failure_threshold=2, cool_down=60, clock=clock))
    fake_openai.script(BOOM, BOOM)
    for _ in range(2):
        with pytest.raises(TransientError):
            worker_a.complete(REQUEST)

    with pytest.raises(CircuitOpen):
        worker_b.complete(REQUEST)
    assert other_endpoint.complete(REQUEST).content == "done: Ping"
    assert store.get("ep").state == OPEN
    assert fake_openai.count() == 3


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        CircuitBreaker(InMemoryBreakerState(), "k", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(InMemoryBreakerState(), "k", cool_down=0)
