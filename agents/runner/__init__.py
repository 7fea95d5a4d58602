"""The runner by phase: `decide` (pure), planning and re-planning, running one step, reviewing, the tick's commit.

`agents.runner` re-exports the names the rest of the project imports from it.
"""

from agents.runner.core import (
    CONTEXT_MAX_BYTES,
    GOAL_MAX_CHARS,
    Decision,
    Runner,
    TickOutcome,
    decide,
    utcnow,
    validate_new_task,
    worker_identity,
)

__all__ = [
    "CONTEXT_MAX_BYTES",
    "GOAL_MAX_CHARS",
    "Decision",
    "Runner",
    "TickOutcome",
    "decide",
    "utcnow",
    "validate_new_task",
    "worker_identity",
]
