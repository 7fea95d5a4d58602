"""The one place a tick is observed: its duration, outcome, model spend and log context.

`build_runner` (tasks_app/runtime.py) builds an `ObservedRunner` over the database's store observed by
`ObservedStore` (tasks_app/store/factory.py: store_for's observer) and wraps
models in `MeteredModel`, so every way a tick runs (a Celery worker, `manage.py drive`, `run_goal`)
records the same metrics; nothing in agents/ knows about it.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from agents.errors import TransientError
from agents.runner import Runner, TickOutcome
from agents.types import Build, Lease, LLMRequest, LLMResponse, Snapshot
from tasks_app.db_pool import give_back
from tasks_app.observability import logs, metrics
from tasks_app.store import DjangoStore

logger = logging.getLogger("horizon.tick")

# Seconds the current tick spent inside model calls, to separate harness overhead from the model.
_model_seconds: ContextVar[float] = ContextVar("horizon_model_seconds", default=0.0)


class MeteredModel:
    """A model that records the tokens and cost of each call it actually makes (journal hits never reach it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:  # offline, scenario...: whatever the wrapped model offers
        return getattr(self.inner, name)

    def complete(self, request: LLMRequest) -> LLMResponse:
        # Whatever the tick read last, its connection goes back to the pool before the call waits.
        give_back()
        started = time.perf_counter()
        try:
            response: LLMResponse = self.inner.complete(request)
        finally:
            _model_seconds.set(_model_seconds.get() + time.perf_counter() - started)
        metrics.record_model_call(
            response.model or self.name,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            cost_usd=response.cost_usd,
        )
        return response


def _next_step(snapshot: Snapshot) -> int | None:
    """The step the checkpoint's cursor points at (the step this tick works on, unless it plans)."""
    if snapshot.next_step is not None:
        return snapshot.next_step.index
    if snapshot.checkpoint is not None:
        step = snapshot.checkpoint.state.get("next_step")
        return step if isinstance(step, int) else None
    return None


class ObservedStore(DjangoStore):
    """Logs and counts claims and loads; store_for puts it over whichever dialect's store serves the database."""

    def claim(self, task_id: str, *, owner: str, lease_seconds: float, build: Build | None = None) -> Lease | None:
        lease = super().claim(task_id, owner=owner, lease_seconds=lease_seconds, build=build)
        if lease is not None:
            logs.bind(epoch=lease.epoch)
            if lease.took_over_from:
                metrics.record_claim_takeover()
        return lease

    def load(self, lease: Lease) -> Snapshot:
        snapshot = super().load(lease)
        logs.bind(step=_next_step(snapshot))
        return snapshot


class ObservedRunner(Runner):
    def tick(self, task_id: str) -> TickOutcome:
        with logs.tick_context(task_id=str(task_id), worker=self.worker_id):
            token = _model_seconds.set(0.0)
            started = time.perf_counter()
            outcome: TickOutcome | None = None
            failure = ""
            try:
                outcome = super().tick(task_id)
                if outcome.step_index is not None:
                    logs.bind(step=outcome.step_index)
                return outcome
            except TransientError:
                failure = "retried"
                raise
            except Exception:
                failure = "error"
                raise
            finally:
                seconds = time.perf_counter() - started
                metrics.record_tick(outcome, seconds=seconds, model_seconds=_model_seconds.get(), result=failure)
                _model_seconds.reset(token)
                if logger.isEnabledFor(logging.DEBUG):  # one line a tick: only when asked for
                    logger.debug(
                        "tick %s: decision=%s status=%s in %.1f ms",
                        failure or ("committed" if outcome and outcome.committed else "not committed"),
                        outcome.decision if outcome else "",
                        outcome.status if outcome else "",
                        seconds * 1000,
                    )
