"""The metrics processes record (counters and histograms), and the two functions that record them.

Celery's prefork pool runs ticks in child processes, while /metrics is served by the web process.
prometheus-client's multiprocess mode joins them: with PROMETHEUS_MULTIPROC_DIR set in every
process's environment *before this module is imported*, each process writes its values to memory-
mapped files in that directory and the web process adds them up at scrape time
(views.metrics_view). Without it (one process: `manage.py drive`, tests) values live in this
process's default registry.

Only counters and histograms are recorded here: in multiprocess mode they add up correctly across
processes, dead ones included. Gauges that describe the database (tasks by status, pending
approvals) are computed at scrape time by collector.DatabaseCollector instead, so no process has
to keep them right.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from agents.runner import TickOutcome
    from tasks_app.services.sweep_report import SweepReport

# Ticks are mostly tens of milliseconds of harness plus model calls of seconds.
_TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

TICKS = Counter(
    "horizon_ticks",
    "Ticks run, by what the tick decided and how it ended (committed, fenced, not_claimed, deferred, retried, error)",
    ["decision", "result"],
)
STEP_DURATION = Histogram(
    "horizon_step_duration_seconds",
    "Wall time of ticks that executed a step (model and tool calls included)",
    buckets=_TICK_BUCKETS,
)
TICK_OVERHEAD = Histogram(
    "horizon_tick_overhead_seconds",
    "Wall time of a claimed tick outside model calls: lease, load, journal, tools, commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RESUMES = Counter(
    "horizon_resumes",
    "Tasks taken over from a dead lease owner: by a claim of an expired lease, or by the sweeper (task.stalled)",
    ["via"],
)
STALLED = Counter("horizon_stalled_detections", "Expired leases the sweeper found (task.stalled)")
STUCK = Counter("horizon_stuck_detections", "Tasks the sweeper flagged without progress (task.stuck)")
JOURNAL_HITS = Counter(
    "horizon_journal_hits", "Model and tool calls answered from the journal instead of being made again (saved by resume)"
)
MODEL_TOKENS = Counter("horizon_model_tokens", "Tokens of model calls actually made, by model and kind", ["model", "kind"])
MODEL_COST = Counter("horizon_model_cost_usd", "Cost in USD of model calls actually made, by model", ["model"])
MODEL_CALLS = Counter("horizon_model_calls", "Model calls actually made (journal hits excluded), by model", ["model"])


@cache
def _child(metric: Any, *values: str) -> Any:
    """A labelled series, looked up once per process: labels() takes a lock and builds a key on every call."""
    return metric.labels(*values)


def record_tick(outcome: TickOutcome | None, *, seconds: float, model_seconds: float, result: str = "") -> None:
    """One tick's figures; `outcome` is None when the tick raised (`result` says how)."""
    if outcome is None:
        _child(TICKS, "", result or "error").inc()
        return
    if not outcome.claimed:
        _child(TICKS, "", "not_claimed").inc()
        return
    if outcome.fenced:
        kind = "fenced"
    elif outcome.retry_in:
        kind = "deferred"
    elif outcome.committed:
        kind = "committed"
    else:
        kind = "released"  # a commit conflict that ran out of redos: released to run again
    _child(TICKS, outcome.decision, kind).inc()
    TICK_OVERHEAD.observe(max(0.0, seconds - model_seconds))
    if outcome.decision == "step":
        STEP_DURATION.observe(seconds)
    if outcome.journal_hits:
        JOURNAL_HITS.inc(outcome.journal_hits)


def record_model_call(model: str, *, prompt_tokens: int, completion_tokens: int, cost_usd: float) -> None:
    _child(MODEL_CALLS, model).inc()
    _child(MODEL_TOKENS, model, "prompt").inc(prompt_tokens)
    _child(MODEL_TOKENS, model, "completion").inc(completion_tokens)
    _child(MODEL_COST, model).inc(cost_usd)  # even 0 (an unpriced model): the series exists


def record_claim_takeover() -> None:
    _child(RESUMES, "claim").inc()


def record_sweep(report: SweepReport) -> None:
    if report.stalled:
        STALLED.inc(len(report.stalled))
        _child(RESUMES, "sweep").inc(len(report.stalled))
    if report.stuck:
        STUCK.inc(len(report.stuck))
