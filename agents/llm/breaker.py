"""A per-endpoint circuit breaker whose state lives in a shared store, and GuardedModel.

    closed --N consecutive transient failures--> open --cool-down elapsed--> half_open (one trial call)
    half_open --trial succeeds--> closed        half_open --trial fails--> open (cool-down starts again)

The state sits behind `BreakerState` so that every worker process sees one breaker per endpoint and an
operator can read it; `InMemoryBreakerState` serves one process and tests, the Django store serves the
fleet. Times are wall-clock seconds (an injectable clock) because records are compared across processes,
where monotonic clocks mean nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from agents.errors import CircuitOpen, PermanentError, TransientError
from agents.model import Model
from agents.types import LLMRequest, LLMResponse

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerRecord:
    state: str = CLOSED
    failures: int = 0  # consecutive transient failures
    opened_at: float | None = None  # when it last opened
    trial_started_at: float | None = None  # when the half-open trial call was let through


class BreakerState(Protocol):
    """Where breaker records live. `update` must apply `change` atomically for one key (e.g. a row
    locked with SELECT ... FOR UPDATE), since workers race to take the half-open trial."""

    def get(self, key: str) -> BreakerRecord: ...

    def update(self, key: str, change: Callable[[BreakerRecord], BreakerRecord]) -> BreakerRecord: ...


class InMemoryBreakerState:
    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> BreakerRecord:
        with self._lock:
            return self._records.get(key, BreakerRecord())

    def update(self, key: str, change: Callable[[BreakerRecord], BreakerRecord]) -> BreakerRecord:
        with self._lock:
            record = change(self._records.get(key, BreakerRecord()))
            self._records[key] = record
            return record


@dataclass(frozen=True)
class Admission:
    allowed: bool
    retry_after: float = 0.0  # when refused: seconds until a call may be let through
    trial: bool = False  # this call is the half-open trial


class CircuitBreaker:
    def __init__(
        self,
        store: BreakerState,
        key: str,
        *,
        failure_threshold: int = 5,
        cool_down: float = 30.0,
        trial_timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if failure_threshold < 1 or cool_down <= 0:
            raise ValueError("failure_threshold must be >= 1 and cool_down positive")
        self.store = store
        self.key = key
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        # A trial whose caller died (a killed worker) would hold the breaker half-open for ever;
        # after this long another caller may take the trial.
        self.trial_timeout = trial_timeout if trial_timeout is not None else cool_down
        self.clock = clock

    def admit(self) -> Admission:
        now = self.clock()
        decision = Admission(allowed=True)

        def change(record: BreakerRecord) -> BreakerRecord:
            nonlocal decision
            if record.state == CLOSED:
                decision = Admission(allowed=True)
                return record
            if record.state == OPEN:
                reopens_at = (record.opened_at or now) + self.cool_down
            else:
                reopens_at = (record.trial_started_at or now) + self.trial_timeout
            if now < reopens_at:
                decision = Admission(allowed=False, retry_after=reopens_at - now)
                return record
            decision = Admission(allowed=True, trial=True)
            return replace(record, state=HALF_OPEN, trial_started_at=now)

        self.store.update(self.key, change)
        return decision

    def record_success(self) -> None:
        self.store.update(self.key, lambda record: BreakerRecord() if record != BreakerRecord() else record)

    def record_failure(self) -> None:
        now = self.clock()

        def change(record: BreakerRecord) -> BreakerRecord:
            if record.state == HALF_OPEN:
                return BreakerRecord(state=OPEN, failures=record.failures + 1, opened_at=now)
            if record.state == OPEN:
                # A call admitted before the breaker opened finished late: the cool-down stands.
                return replace(record, failures=record.failures + 1)
            failures = record.failures + 1
            if failures >= self.failure_threshold:
                return BreakerRecord(state=OPEN, failures=failures, opened_at=now)
            return replace(record, failures=failures)

        self.store.update(self.key, change)

    def status(self) -> BreakerRecord:
        return self.store.get(self.key)


class GuardedModel:
    """A Model behind a breaker: while the breaker is open, the fallback answers (if any) or CircuitOpen
    is raised with the remaining cool-down, and the endpoint is not called."""

    def __init__(self, primary: Model, breaker: CircuitBreaker, fallback: Model | None = None) -> None:
        self.primary = primary
        self.breaker = breaker
        self.fallback = fallback
        self.name = primary.name

    def complete(self, request: LLMRequest) -> LLMResponse:
        admission = self.breaker.admit()
        if not admission.allowed:
            if self.fallback is not None:
                return self.fallback.complete(request)
            raise CircuitOpen(
                f"{self.primary.name}: the circuit is open after repeated failures", retry_after=admission.retry_after
            )
        try:
            response = self.primary.complete(request)
        except CircuitOpen:
            raise  # a nested breaker's verdict says nothing new about this endpoint
        except TransientError:
            self.breaker.record_failure()
            raise
        except PermanentError:
            # The endpoint answered (a refusal, a too-large body): it is up, so this counts as a success
            # for the breaker; retrying cannot help, which is the caller's business, not the breaker's.
            self.breaker.record_success()
            raise
        self.breaker.record_success()
        return response
