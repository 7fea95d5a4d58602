"""The long-horizon pattern's interface, as a library: LongHorizonRunner and LongHorizonResult.

A thin facade over the machinery the Django side runs (agents.runner.Runner over a Store): no
Django needed with the in-memory store, and the same object drives a task in PostgreSQL when it is
given tasks_app.store.DjangoStore. docs/library.md shows it end to end.

- `task_id` is the caller's name for the task. Stores key tasks by UUID, so a name that is not a
  UUID maps to a fixed uuid5 of it (`store_task_id`): the same name finds the same task anywhere.
- `checkpoint_store` and `event_log` are one Store: Horizon commits a tick's events and its
  checkpoint in one transaction, which two separate stores could not do. `event_log` may be
  omitted; any other object than the checkpoint store is refused.
- `plan_model` answers planning and re-planning requests; `step_executor` says how steps run:
  Horizon's tool loop (agents.executor) with a model and a tool registry (`ToolLoop`), or just a
  model (the default tools). Sub-agents are a tool of that loop (spawn_subtasks), not an executor.
- `max_step_duration_seconds`: a step still current that long after it became current, while the
  task works on its own, escalates to a person (requires_human). `overall_deadline_seconds`,
  counted from the task's creation: the task fails (aborted). tick() checks both before it claims,
  so they hold without a sweeper; on the Django store the task row also carries them, rounded up
  to minutes for the step (the profile's step_deadline_minutes), and the sweeper enforces them too.
- start() records the goal (once: a second start of the same task returns its current result);
  tick() advances one unit of work (a plan, or one step) from wherever the last checkpoint left
  it; run() ticks until the task ends, waits, needs a person or cannot be claimed now.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from agents.deadlines import step_deadline_change, task_deadline_change
from agents.errors import InvalidInput, TaskNotFound
from agents.events import rebuild
from agents.json_value import as_scalar
from agents.model import Model
from agents.profiles import BUILTIN_PROFILES, AgentProfile, profile_to_json
from agents.runner import Runner, TickOutcome, utcnow, validate_new_task
from agents.status import StepStatus, TaskStatus
from agents.store import Store
from agents.tools.registry import ToolRegistry, default_registry
from agents.types import JSON, CheckpointRef, LLMRequest, LLMResponse, NewTask, OperatorChange, StepLogEntry, TaskRecord

# Names that are not UUIDs map into this namespace (uuid5), identically in every process.
TASK_NAMESPACE = uuid.UUID("5b0c6a52-3f0e-4d6e-9a43-6f2b1c0d7e11")
PLANNING_PURPOSES = frozenset({"plan", "replan"})
FINAL_STATUSES = frozenset({"completed", "aborted", "requires_human"})


def store_task_id(task_id: str) -> str:
    """The id a store keeps the task under: the UUID itself, or the uuid5 of a name."""
    if not isinstance(task_id, str) or not task_id.strip():
        raise InvalidInput("task_id must be a non-empty string")
    try:
        return str(uuid.UUID(task_id))
    except ValueError:
        return str(uuid.uuid5(TASK_NAMESPACE, task_id))


@dataclass(frozen=True)
class ToolLoop:
    """How each step runs: Horizon's tool loop with this model (None: the plan model) and these tools."""

    model: Model | None = None
    tools: ToolRegistry = field(default_factory=lambda: default_registry)


@dataclass(frozen=True)
class LongHorizonResult:
    """Where a task stands: its final status once `done`, else the live one.

    status: "completed", "aborted" (failed or cancelled), "requires_human" (escalated: a person
    must approve, decide or resume), or while it is not final the task's own status ("pending",
    "running", "waiting" for a timer, signal or sub-agents, "paused" by an operator).
    """

    task_id: str  # the caller's id
    store_task_id: str  # the id the store keeps it under
    status: str
    reason: str  # why it failed, was aborted or needs a person
    result: JSON  # what finish_task reported, if the agent ended the task that way
    steps: tuple[StepLogEntry, ...]  # the executed steps (completed, failed, or started), in plan order
    duration_s: float  # wall-clock from the task's creation to its end (or to now, while it is not final)
    checkpoint: CheckpointRef | None  # the latest checkpoint: task id, checkpoint seq, last event seq
    ticks: int = 0  # ticks that committed progress in the call that returned this

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


class _ByPurpose:
    """One Model for the Runner: planning requests go to the plan model, the rest to the step model."""

    def __init__(self, plan: Model, step: Model) -> None:
        self.plan, self.step = plan, step
        self.name = plan.name if plan is step else f"{plan.name}+{step.name}"

    def complete(self, request: LLMRequest) -> LLMResponse:
        return (self.plan if request.purpose in PLANNING_PURPOSES else self.step).complete(request)


def _seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{name} must be a positive number of seconds or None")
    return float(value)


class LongHorizonRunner:
    def __init__(
        self,
        *,
        task_id: str,
        goal: str,
        checkpoint_store: Store,
        event_log: Store | None = None,
        plan_model: Model,
        step_executor: ToolLoop | Model | None = None,
        max_step_duration_seconds: float | None = None,
        overall_deadline_seconds: float | None = None,
        profile: AgentProfile | None = None,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
        lease_seconds: float = 300.0,
    ) -> None:
        if event_log is not None and event_log is not checkpoint_store:
            raise InvalidInput("event_log must be the checkpoint store: a tick commits its events and checkpoint together")
        self.task_id = task_id
        self.store_task_id = store_task_id(task_id)
        self.goal = goal
        self.store = checkpoint_store
        self.max_step_duration_seconds = _seconds("max_step_duration_seconds", max_step_duration_seconds)
        self.overall_deadline_seconds = _seconds("overall_deadline_seconds", overall_deadline_seconds)
        loop = step_executor if isinstance(step_executor, ToolLoop) else ToolLoop(model=step_executor)
        step_minutes = math.ceil(self.max_step_duration_seconds / 60) if self.max_step_duration_seconds else 0
        self.profile = replace(profile or BUILTIN_PROFILES["default"], step_deadline_minutes=step_minutes)
        self.clock = clock
        self.runner = Runner(
            checkpoint_store,
            _ByPurpose(plan_model, loop.model or plan_model),
            loop.tools,
            worker_id=worker_id,
            lease_seconds=lease_seconds,
            profiles={**BUILTIN_PROFILES, self.profile.name: self.profile},
            clock=clock,
        )

    @classmethod
    def resume(
        cls,
        *,
        task_id: str,
        checkpoint_store: Store,
        plan_model: Model,
        **options: object,
    ) -> LongHorizonRunner:
        """A runner for a task that exists, in this or any other process: it picks up from the last checkpoint.

        The goal is read from the store. Stores, models and limits are this worker's configuration,
        not the task's: pass them as keywords, as to the constructor (the same limits you started
        it with; the Django store keeps the deadlines on the task row whatever a runner says).
        Raises TaskNotFound for a task that was never started.
        """
        record = checkpoint_store.get_task(store_task_id(task_id))
        return cls(task_id=task_id, goal=record.goal, checkpoint_store=checkpoint_store, plan_model=plan_model, **options)  # type: ignore[arg-type]

    def start(self, initial_context: dict[str, JSON] | None = None) -> LongHorizonResult:
        """Record the goal and its context as a new task, due at once; a task started before is left as it is."""
        try:
            existing = self.store.get_task(self.store_task_id)
        except TaskNotFound:
            existing = None
        if existing is not None:
            if existing.goal != validate_new_task(NewTask(goal=self.goal)).goal:
                raise InvalidInput(f"task {self.task_id!r} exists with another goal")
            return self.result()
        deadline = self.clock() + timedelta(seconds=self.overall_deadline_seconds) if self.overall_deadline_seconds else None
        new = NewTask(
            goal=self.goal,
            context=initial_context or {},
            profile=self.profile.name,
            task_id=self.store_task_id,
            deadline=deadline,
        )
        new = validate_new_task(new, self.runner.profiles)
        self.store.create_task(replace(new, profile_config=profile_to_json(self.profile)))
        return self.result()

    def tick(self) -> LongHorizonResult:
        """Advance one unit of work (plan, or one step) from the last checkpoint; safe from a cron, a queue or a signal.

        Does nothing when another worker holds the lease or the task is not due (waiting, ended,
        with a person). A TransientError (an endpoint busy) leaves the task due again later.
        """
        return self.result(ticks=int(self._tick().committed))

    def run(self, *, max_ticks: int | None = None) -> LongHorizonResult:
        """Tick until the task ends, waits, needs a person, cannot be claimed now, or max_ticks ticks."""
        ticks = 0
        while max_ticks is None or ticks < max_ticks:
            outcome = self._tick()
            ticks += int(outcome.committed)
            if outcome.retry_in:
                time.sleep(min(outcome.retry_in, 60.0))  # an open circuit breaker: the runner deferred the tick
                continue
            if not (outcome.claimed and outcome.runnable):
                break
        return self.result(ticks=ticks)

    def result(self, *, ticks: int = 0) -> LongHorizonResult:
        record = self.store.get_task(self.store_task_id)
        ended = record.status in TaskStatus.TERMINAL or record.status == TaskStatus.REQUIRES_HUMAN
        duration = ((record.updated_at if ended else self.clock()) - record.created_at).total_seconds()
        # The runner's own result maps the statuses: failed and cancelled are "aborted".
        run = self.runner.result(self.store_task_id, duration_s=max(duration, 0.0), ticks=ticks)
        return LongHorizonResult(
            task_id=self.task_id,
            store_task_id=self.store_task_id,
            status=run.status,
            reason=run.reason,
            result=run.result,
            steps=tuple(s for s in run.steps if s.status != StepStatus.PENDING),
            duration_s=run.duration_s,
            checkpoint=run.checkpoint,
            ticks=ticks,
        )

    # --- internals ---------------------------------------------------------------------------

    def _tick(self) -> TickOutcome:
        change = self._overdue(self.store.get_task(self.store_task_id))
        if change is not None:
            # InvalidInput: the task moved on meanwhile (ended, or stopped working): nothing is overdue now.
            with contextlib.suppress(InvalidInput):
                self.store.operator_change(self.store_task_id, change)
            return TickOutcome(task_id=self.store_task_id, claimed=False)
        return self.runner.tick(self.store_task_id)

    def _overdue(self, record: TaskRecord) -> OperatorChange | None:
        """The deadline change due now, if a deadline passed (the sweeper's rules, checked by this runner)."""
        now = self.clock()
        if self.overall_deadline_seconds and record.status in TaskStatus.ACTIVE:
            deadline = record.created_at + timedelta(seconds=self.overall_deadline_seconds)
            if now >= deadline:
                return task_deadline_change(deadline)
        if self.max_step_duration_seconds and record.status in TaskStatus.WORKING:
            current = self._step_current_since(record.id)
            if current is not None:
                index, since = current
                deadline = since + timedelta(seconds=self.max_step_duration_seconds)
                if now >= deadline:
                    return step_deadline_change(index, deadline)
        return None

    def _step_current_since(self, task_id: str) -> tuple[int, datetime] | None:
        """The current step's index and when it became current: when its plan was made, or its predecessor ended."""
        checkpoint = self.store.latest_checkpoint(task_id)
        state = rebuild(checkpoint, self.store.events(task_id, after_seq=checkpoint.event_seq if checkpoint else 0))
        if not state.plan_version or state.next_step >= state.step_count:
            return None  # planning, or about to complete: no step is current
        plan = self.store.event(task_id, state.plan_event_seq)
        first = int(as_scalar(plan.payload.get("from_index", 0)))
        if state.next_step <= first:
            return (state.next_step, plan.created_at) if plan.created_at else None
        previous = self.store.step(task_id, state.next_step - 1)
        return (state.next_step, previous.finished_at) if previous.finished_at else None


__all__ = ["LongHorizonResult", "LongHorizonRunner", "ToolLoop", "store_task_id"]
