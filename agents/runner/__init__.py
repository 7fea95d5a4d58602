"""The runner by phase. `agents.runner` re-exports the names the rest of the project imports from it.

core.py      Runner: the entry points, one tick (claim, advance, commit, conflict retries), results
decide.py    Decision and `decide`, a pure function of the rebuilt state
planning.py  planning and re-planning (with repair prompts)
step.py      running one step: approval gate, executor rounds, how the step ends
review.py    self-review rounds and the drift check
endings.py   a failed step, a failed (compensated) task, an escalation
tick.py      the tick's frame and its commit: CommitDraft + events -> TickCommit
draft.py     CommitDraft, TickScope, TickOutcome
intake.py    a new task's checks, the worker's identity
limits.py    size limits
"""

from agents.runner.core import Runner, utcnow
from agents.runner.decide import Decision, decide
from agents.runner.draft import CommitDraft, TickOutcome
from agents.runner.intake import validate_new_task, worker_identity
from agents.runner.limits import CONTEXT_MAX_BYTES, EVENT_TEXT_MAX_CHARS, GOAL_MAX_CHARS, STEP_OUTPUT_MAX_CHARS

__all__ = [
    "CONTEXT_MAX_BYTES",
    "EVENT_TEXT_MAX_CHARS",
    "GOAL_MAX_CHARS",
    "STEP_OUTPUT_MAX_CHARS",
    "CommitDraft",
    "Decision",
    "Runner",
    "TickOutcome",
    "decide",
    "utcnow",
    "validate_new_task",
    "worker_identity",
]
