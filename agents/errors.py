"""One error tree for the harness; retry policy keys on these classes, never on SDK or driver errors.

HorizonError
├── InvalidInput            bad goal, bad scenario, bad arguments from a user: nothing was written
│   └── ScenarioError       a scripted-model scenario file that cannot be used
├── TaskNotFound            an unknown task id
├── LeaseLost               this worker no longer owns the task (fenced zombie): write nothing
├── TransientError          worth retrying later (timeouts, a busy endpoint); the lease is released
└── PermanentError          retrying cannot help; the task escalates to a human with the reason
    ├── PlanInvalid         the model's plan does not parse or break the plan rules
    ├── JournalMismatch     a journaled call was replayed with a different request (non-determinism)
    ├── OutcomeUnknown      a non-idempotent tool was started but its result was never recorded
    └── StepBudgetExceeded  a step used up its model-call budget without finishing
"""

from __future__ import annotations


class HorizonError(Exception):
    """Base of every error the harness raises on purpose."""


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


class PermanentError(HorizonError):
    """Escalates the task with this message as the reason."""


class PlanInvalid(PermanentError):
    pass


class JournalMismatch(PermanentError):
    pass


class OutcomeUnknown(PermanentError):
    pass


class StepBudgetExceeded(PermanentError):
    pass
