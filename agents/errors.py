"""One error tree for the harness; retry policy keys on these classes, never on SDK or driver errors.

HorizonError
├── InvalidInput            bad goal, bad scenario, bad arguments from a user: nothing was written
│   └── ScenarioError       a scripted-model scenario file that cannot be used
├── TaskNotFound            an unknown task id
├── LeaseLost               this worker no longer owns the task (fenced zombie): write nothing
├── TransientError          worth retrying later (timeouts, a busy endpoint); the lease is released
│   ├── CircuitOpen         the endpoint's breaker is open: reschedule for later, do not call it now
│   └── BuildSuperseded     a newer build has ticked the task: this older worker leaves it alone
└── PermanentError          retrying cannot help; the task escalates to a human with the reason
    ├── PlanInvalid         the model's plan does not parse or break the plan rules
    ├── JournalMismatch     recorded history this build cannot honour (a removed tool, an unreadable answer)
    ├── OutcomeUnknown      a non-idempotent tool was started but its result was never recorded
    ├── StepBudgetExceeded  a step used up its model-call budget without finishing
    ├── BudgetExhausted     the task used up its tokens, cost, steps or model calls
    ├── ModelRejected       the endpoint refused the request (400, 401, 403, 404, context too long)
    └── ModelOutputTooLarge the response body passed the byte cap; an excerpt is kept
"""

from __future__ import annotations

from typing import Any


class HorizonError(Exception):
    """Base of every error the harness raises on purpose."""

    # What the failed (or waiting) unit of work spent on model calls, in the shape of
    # agents.usage.Spent.as_json; attached on the way out so that the event written for it counts it.
    usage: dict[str, Any] | None = None
    # context.compacted payloads of a step that failed after compacting (agents/compaction.py).
    compactions: list[dict[str, Any]] | None = None


class InvalidInput(HorizonError):
    """A caller gave input the harness refuses; nothing was written."""


class ScenarioError(InvalidInput):
    """A scenario file for the scripted model is missing, malformed or inconsistent."""


class TaskNotFound(HorizonError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}")
        self.task_id = task_id


class LeaseLost(HorizonError):
    """The lease epoch moved on: another worker owns the task, so this one must write nothing."""


class TransientError(HorizonError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BuildSuperseded(TransientError):
    """A newer build has ticked this task (a rolling deploy): an older worker never moves it back.
    Nothing was claimed and no attempt was spent; the tick is due again for a newer worker."""


class PermanentError(HorizonError):
    """Escalates the task with this message as the reason."""


class CircuitOpen(TransientError):
    """The endpoint failed repeatedly; callers wait `retry_after` seconds instead of retrying hot."""


class PlanInvalid(PermanentError):
    def __init__(self, message: str, *, raw_output: str | None = None) -> None:
        super().__init__(message)
        self.raw_output = raw_output  # what the model said, attached to the escalation


class JournalMismatch(PermanentError):
    pass


class OutcomeUnknown(PermanentError):
    pass


class StepBudgetExceeded(PermanentError):
    pass


class BudgetExhausted(PermanentError):
    pass


class ModelRejected(PermanentError):
    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code  # e.g. "context_length_exceeded"


class ModelOutputTooLarge(PermanentError):
    def __init__(self, message: str, *, excerpt: str = "", size: int = 0) -> None:
        super().__init__(message)
        self.excerpt = excerpt  # the first bytes of the body, for the human who looks at it
        self.size = size  # bytes read before giving up (at least the cap)
