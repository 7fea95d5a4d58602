"""What the store is given and keeps: tasks, leases, events, checkpoints, steps, the journal,
approvals and signals (agents/store.py), and the plan steps a tick writes.

Frozen; new fields get defaults so that records written by older code still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agents.json_value import JSON, as_list, as_optional_int, as_scalar
from agents.status_names import ApprovalStatusName, JournalStatusName, StepStatusName, TaskStatusName

# --- plans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    index: int
    title: str
    instructions: str
    depends_on: tuple[int, ...] = ()
    expected_minutes: int | None = None
    needs_approval: bool = False

    def to_json(self) -> dict[str, JSON]:
        return {
            "index": self.index,
            "title": self.title,
            "instructions": self.instructions,
            "depends_on": list(self.depends_on),
            "expected_minutes": self.expected_minutes,
            "needs_approval": self.needs_approval,
        }

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> StepSpec:
        return cls(
            index=int(as_scalar(data["index"])),
            title=str(data["title"]),
            instructions=str(data["instructions"]),
            depends_on=tuple(int(as_scalar(i)) for i in as_list(data.get("depends_on", []))),
            expected_minutes=as_optional_int(data.get("expected_minutes")),
            needs_approval=bool(data.get("needs_approval", False)),
        )


# --- storage records -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTask:
    goal: str
    context: dict[str, JSON] = field(default_factory=dict)
    profile: str = "default"
    max_steps: int = 50
    max_attempts: int = 5
    parent_id: str | None = None  # cancelling a parent cancels its children
    # The profile as it was when the task was created (agents.profiles.profile_to_json): changing a
    # profile later does not change the tasks already running under it.
    profile_config: dict[str, JSON] | None = None
    deadline: datetime | None = None  # the sweeper fails the task once this passes
    # A given id (a sub-agent's, derived from its parent's journal key): creating it twice creates one.
    task_id: str | None = None


@dataclass(frozen=True)
class TaskRecord:
    id: str
    goal: str
    context: dict[str, JSON]
    profile: str
    status: TaskStatusName
    status_reason: str
    result: JSON
    max_steps: int
    max_attempts: int
    step_attempts: int
    last_event_seq: int
    checkpoint_seq: int
    lease_owner: str | None
    lease_epoch: int
    resume_count: int
    created_at: datetime
    updated_at: datetime
    profile_config: dict[str, JSON] | None = None
    last_event_hash: str = ""  # the hash of event last_event_seq: the next event chains to it
    parent_id: str | None = None  # a sub-agent's parent, rung when the sub-agent ends
    build_rank: int = 0  # the newest build that has ticked the task (docs/deploys.md); 0: none recorded
    builds: str = ""  # the builds that ticked it, oldest first, space-separated


@dataclass(frozen=True)
class Build:
    """The code a worker runs (docs/deploys.md). `rank` orders builds by when they were first seen:
    a claim refuses a task that a build of a higher rank has ticked. None: unranked, no check (tests,
    a runner outside a deployment)."""

    id: str = ""
    rank: int | None = None


@dataclass(frozen=True)
class Lease:
    """Proof of ownership for one tick. Every write of the tick is guarded by `epoch`."""

    task_id: str
    owner: str
    epoch: int
    took_over_from: str | None = None  # the previous owner whose lease had expired, if any
    task: TaskRecord | None = None  # the task as this claim left it, so that loading need not read it again
    preload: Snapshot | None = None  # a complete snapshot read by the claim itself, when the store can


@dataclass(frozen=True)
class NewEvent:
    type: str
    payload: dict[str, JSON]
    schema_version: int = 1


@dataclass(frozen=True)
class EventRecord:
    seq: int
    type: str
    payload: dict[str, JSON]
    schema_version: int = 1
    worker: str = ""
    created_at: datetime | None = None
    # The hash chain (agents/audit.py): the previous event's hash and this one's.
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class CheckpointRecord:
    seq: int
    event_seq: int  # the last event this state includes
    state: dict[str, JSON]


@dataclass(frozen=True)
class Snapshot:
    task: TaskRecord
    checkpoint: CheckpointRecord | None
    events: tuple[EventRecord, ...]  # every event after the checkpoint, in order
    # The step the checkpoint's cursor points at, when the store could read it in the same round
    # trip; the runner uses it only if it is the step it decides to run.
    next_step: StepRecord | None = None


@dataclass(frozen=True)
class StepRecord:
    index: int
    title: str
    instructions: str
    depends_on: tuple[int, ...]
    plan_version: int
    status: StepStatusName
    attempts: int
    result: JSON
    error: str
    started_at: datetime | None
    finished_at: datetime | None
    requires_approval: bool = False
    expected_minutes: int | None = None
    transcript: tuple[dict[str, JSON], ...] = ()


@dataclass(frozen=True)
class StepUpdate:
    index: int
    status: StepStatusName
    attempts: int
    result: JSON = None
    error: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The step's own conversation (user prompt, model turns, tool results), written once with
    # the step's commit; later steps see a summary of it, never the messages themselves.
    transcript: tuple[dict[str, JSON], ...] = ()


@dataclass(frozen=True)
class TickCommit:
    """Every write of one tick; the store applies it in one transaction guarded by the lease epoch."""

    base_event_seq: int  # the task's last event seq when the tick loaded it; a moved seq is a conflict
    base_checkpoint_seq: int  # the task's checkpoint seq when the tick loaded it; this commit writes the next
    events: tuple[NewEvent, ...]
    checkpoint_state: dict[str, JSON]
    status: TaskStatusName
    status_reason: str = ""
    result: JSON = None
    new_steps: tuple[StepSpec, ...] = ()  # inserted, or replacing the rows at the same indexes (a re-plan)
    plan_version: int = 0
    # A re-plan: steps at this index and beyond that `new_steps` does not replace are deleted.
    truncate_steps_from: int | None = None
    step_update: StepUpdate | None = None
    runnable: bool = False  # sets next_run_at to now, so that a driver or the sweeper finds it
    wake_at: datetime | None = None  # not runnable: next_run_at (a WAITING task's timer; None: a signal wakes it)
    # A new step became current: its deadline (None: it has none). Otherwise the deadline stands.
    new_step_deadline: bool = False
    step_deadline_at: datetime | None = None
    # Journal entries (the tick's last model answers) written with the commit, under its fence and in
    # its transaction, rather than each in a statement of its own (agents/journal.py, Journal.flush).
    journal: tuple[JournalEntry, ...] = ()


@dataclass(frozen=True)
class SignalRecord:
    """A message sent to a task, kept in its inbox until a wait consumes it."""

    id: int
    name: str
    payload: JSON
    created_at: datetime | None = None


@dataclass(frozen=True)
class OperatorChange:
    """A write made outside any tick (an operator, a signal, the sweeper): one event, and maybe a status.

    Applied atomically with the event's append. It bumps the lease epoch whenever it changes the
    status, so a tick in flight is fenced and writes nothing after it.
    """

    event: NewEvent
    from_statuses: frozenset[TaskStatusName]  # refused (InvalidInput) when the task is in any other status
    status: TaskStatusName | None = None  # the new status; None keeps it
    status_reason: str = ""
    wake: bool = False  # make the task due now (next_run_at = now), e.g. a signal for a waiting task
    clear_schedule: bool = False  # next_run_at = NULL: nothing runs until someone acts
    # Wake the task only if it is WAITING when the change is applied (read under the row lock): a
    # sub-agent's end rings its parent this way, without waking a parent that is not waiting.
    wake_if_waiting: bool = False


@dataclass(frozen=True)
class ApprovalRecord:
    """A person's decision about one proposed action: a step the planner flagged, or a tool call.

    `key` is the action's place (a step's `task/p<v>/s<i>/step`, or the tool call's journal key);
    `digest` pins the exact action: a decision about another action under the same key is stale.
    """

    task_id: str
    key: str
    kind: str  # "step" or "tool"
    step_index: int
    plan_version: int
    action: dict[str, JSON]  # what a person reads: {"step": title, "instructions"} or {"tool", "arguments"}
    digest: str
    status: ApprovalStatusName = "pending"
    id: int | None = None
    decided_by: str = ""
    comment: str = ""
    edited_arguments: dict[str, JSON] | None = None  # edit-then-approve: what the tool runs with
    created_at: datetime | None = None


@dataclass(frozen=True)
class JournalEntry:
    key: str
    kind: str  # "llm" or "tool"
    name: str
    request_digest: str
    status: JournalStatusName
    result: JSON = None
