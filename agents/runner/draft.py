"""The typed state a tick's phases share: its commit draft, its scope, and what the tick reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agents.events import TaskState
from agents.executor import StepExecutor
from agents.journal import Journal
from agents.model import Model
from agents.profiles import AgentProfile
from agents.store import ApprovalStore, TaskReads
from agents.tools.registry import ToolRegistry
from agents.types import JSON, StepSpec, StepUpdate, TaskRecord


@dataclass(slots=True)
class CommitDraft:
    """What the phases decided beyond the tick's events: the parts of its TickCommit and TickOutcome they set.

    The defaults are the TickCommit's and TickOutcome's: a phase sets only what it changes.
    """

    result: JSON = None  # the task's result, when this tick completes it
    new_steps: tuple[StepSpec, ...] = ()
    plan_version: int = 0
    truncate_steps_from: int | None = None  # a re-plan replaces the steps from here on
    step_update: StepUpdate | None = None
    wake_at: datetime | None = None  # a waiting step's timer
    spawned: tuple[str, ...] = ()  # sub-agents the step waits for
    step_title: str = ""
    output: str = ""

    def new_plan(self, steps: tuple[StepSpec, ...], version: int, *, truncate_from: int | None = None) -> None:
        self.new_steps = steps
        self.plan_version = version
        self.truncate_steps_from = truncate_from


class DraftStore(TaskReads, ApprovalStore, Protocol):
    """What a tick's phases use of the store directly: the steps they run and the approvals they
    wait for; the journal (TickScope.journal) carries every fenced write."""


@dataclass(frozen=True)
class TickScope:
    """What a phase of one tick works with: the runner's parts, the task as loaded, and the draft it fills."""

    store: DraftStore
    tools: ToolRegistry
    executor: StepExecutor
    clock: Callable[[], datetime]
    model_for: Callable[[AgentProfile], Model]
    task: TaskRecord
    state: TaskState
    journal: Journal
    profile: AgentProfile
    draft: CommitDraft

    def model(self) -> Model:
        # Asked at each call, as the runner always has: model_for may wrap a fresh metered model.
        return self.model_for(self.profile)


@dataclass(frozen=True)
class TickOutcome:
    task_id: str
    claimed: bool
    committed: bool = False
    fenced: bool = False
    status: str = ""
    runnable: bool = False
    decision: str = ""
    step_index: int | None = None
    step_title: str = ""
    output: str = ""
    journal_hits: int = 0
    step_count: int = 0  # steps in the current plan, after this tick
    retry_in: float = 0.0  # deferred (an open circuit breaker): due again in this many seconds
    spawned: tuple[str, ...] = ()  # sub-agents this tick's step waits for: the caller rings them
    rang_parent: str = ""  # this task ended and woke this parent: the caller rings it
