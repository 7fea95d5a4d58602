"""One error tree for the harness; retry policy keys on these classes, never on SDK or driver errors.

Every exception class Horizon raises is defined here (agents/ and tasks_app/ import them from this
module; the modules they came from re-export them for their importers).

HorizonError
├── InvalidInput            bad goal, bad scenario, bad arguments from a user: nothing was written
│   ├── ScenarioError       a scripted-model scenario file that cannot be used
│   └── NotAllowed          the user may not decide approvals (tasks_app/services/approvals.py)
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
    ├── ModelOutputTooLarge the response body passed the byte cap; an excerpt is kept
    ├── EventSchemaError    the log holds an event this code cannot interpret (agents/events.py)
    ├── StepRefused         the model declined to do the step (agents/executor.py)
    ├── ReviewRejected      self-review rejected a step more often than the profile allows (agents/review.py)
    ├── StepRejected        a person rejected a step (agents/approvals.py)
    ├── ReplanLimit         a re-plan was needed but no room is left for one (agents/runner/)
    ├── ChildFailed         a sub-agent failed under the fail_parent policy (agents/subtasks.py)
    └── ChildEscalation     a sub-agent failed under the escalate policy: a person decides

Suspension                  not errors: the tick stops and commits the task as it stands
├── WaitRequested           a step waits for a timer, a signal or its sub-agents: WAITING (agents/waits.py)
└── ApprovalRequired        an action waits for a person's decision: REQUIRES_HUMAN (agents/approvals.py)

Outside the tree, on purpose (none of them may be taken for an error of the task):
ToolError(Exception)        a tool refuses its input: the model hears it as the tool's result (agents/tools)
TransitionError(ValueError) a status change the state machine does not allow: a bug (agents/status.py)
Diverged(Exception)         regression replay met what the recording cannot answer: it ends the replay,
                            never escalates the copy (agents/regression.py)
AppendOnlyError(Exception)  an update or delete of an event row (tasks_app/models/history.py)
ApprovalNotFound(Exception), RateLimited(Exception)   the JSON API's own answers (tasks_app/api/errors.py)
BoundaryError(ValueError)   a value that cannot enter the harness (agents/boundary.py): each entry point
                            turns it into its own answer (a tool error, a command's line, a 400)
TotalTimeout(TimeoutError)  an outbound exchange passed its total timeout (agents/outbound.py)
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.types import JSON, ApprovalRecord


class HorizonError(Exception):
    """Base of every error the harness raises on purpose."""

    # What the failed (or waiting) unit of work spent on model calls, in the shape of
    # agents.usage.Spent.as_json; attached on the way out so that the event written for it counts it.
    usage: dict[str, JSON] | None = None
    # context.compacted payloads of a step that failed after compacting (agents/compaction.py).
    compactions: list[dict[str, JSON]] | None = None


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

    @classmethod
    def stale(cls, task_id: str, epoch: int) -> LeaseLost:
        return cls(f"task {task_id}: lease epoch {epoch} is stale")


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


class NotAllowed(InvalidInput):
    """The user may not decide approvals."""


class EventSchemaError(PermanentError):
    """The log holds an event this code cannot interpret (unknown type or a newer schema)."""


class StepRefused(PermanentError):
    """The model declined to do the step."""


class ReviewRejected(PermanentError):
    """Self-review rejected a step's result more times than the profile allows."""


class StepRejected(PermanentError):
    """A person rejected a step; the reason goes into the re-plan (or the failure)."""


class ReplanLimit(PermanentError):
    """A re-plan was needed but the profile's limit (or the task's max_steps) leaves no room for one."""


class ChildFailed(PermanentError):
    """A sub-agent did not complete and the policy is fail_parent: the parent fails."""


class ChildEscalation(PermanentError):
    """A sub-agent did not complete and the policy is escalate: a person decides for the parent."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        # Recorded on the escalation event: the reducer remembers that a person saw this spawn's
        # failures, so that the resumed step goes on with them as data instead of escalating again.
        self.escalation_payload: dict[str, JSON] = {"children_key": key}


# --- suspensions: not errors -------------------------------------------------------------------


class Suspension(Exception):
    """The tick stops here and commits the task as it stands; nothing failed."""


class WaitRequested(Suspension):
    """Not a failure: the step cannot go on before `until` (or a signal). The tick commits WAITING."""

    def __init__(self, key: str, spec: dict[str, JSON], until: datetime | None) -> None:
        super().__init__(f"waiting ({spec['kind']}) until {until.isoformat() if until else 'a signal arrives'}")
        self.key = key
        self.spec = spec
        self.until = until


class ApprovalRequired(Suspension):
    """Not a failure: the tick stops until a person decides."""

    def __init__(self, approval: ApprovalRecord) -> None:
        what = approval.action.get("tool") or approval.action.get("step")
        super().__init__(f"{approval.kind} {what!r} at step {approval.step_index + 1} needs approval (#{approval.id})")
        self.approval = approval


# --- outside the tree, on purpose ----------------------------------------------------------------


class ToolError(Exception):
    """A tool refused its input or failed in a way the model should hear about (not a crash)."""


class TransitionError(ValueError):
    pass


class Diverged(Exception):
    """The new run did something the recording cannot answer. Deliberately not a HorizonError: the
    runner must not turn it into an escalation of the copy; it ends the replay."""

    def __init__(self, message: str, *, kind: str, key: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key


class AppendOnlyError(Exception):
    pass


class ApprovalNotFound(Exception):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class BoundaryError(ValueError):
    """A value that cannot enter: the message says what and where, in one line."""


class TotalTimeout(TimeoutError):
    """The exchange did not finish within its total timeout."""
