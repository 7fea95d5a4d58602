"""The runner: start a goal, advance it one tick at a time, drive it to an end, resume it anywhere.

A tick is one unit of progress (plan, or execute one step):
  1. claim the lease (one conditional write; None means another owner or nothing due);
  2. load the latest checkpoint plus the events after it and rebuild the state;
  3. decide what comes next (`decide`, a pure function of the state) and do it, every model and
     tool call going through the journal;
  4. commit events, step row, checkpoint, status and lease release in one transaction guarded
     by the lease epoch. A fenced commit writes nothing; the tick's work is discarded.
Any process can run a tick: a Celery worker, the in-process driver, a test.

The phases live beside this module: decide.py, planning.py, step.py, review.py, endings.py, and
tick.py, which turns a tick's events and CommitDraft into its TickCommit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from agents import events as ev
from agents.errors import BuildSuperseded, CircuitOpen, LeaseLost, PermanentError, TransientError
from agents.events import TaskState, rebuild
from agents.executor import StepExecutor
from agents.heartbeat import Heartbeat, Kept
from agents.journal import Journal
from agents.model import Model
from agents.profiles import BUILTIN_PROFILES, AgentProfile, profile_to_json
from agents.runner.decide import Decision
from agents.runner.draft import CommitDraft, TickOutcome, TickScope
from agents.runner.endings import escalation
from agents.runner.intake import validate_new_task, worker_identity
from agents.runner.limits import MAX_CONFLICT_RETRIES
from agents.runner.planning import plan
from agents.runner.step import run_step
from agents.runner.tick import choose, note_code_changes, opening_events, seal, task_profile
from agents.status import TaskStatus
from agents.store import CommitResult, Store
from agents.subtasks import ring_parent
from agents.tools.registry import ToolRegistry, default_registry
from agents.types import (
    JSON,
    Build,
    CheckpointRef,
    Lease,
    NewEvent,
    NewTask,
    RunResult,
    Snapshot,
    StepLogEntry,
    TaskRecord,
    TickCommit,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runner:
    def __init__(
        self,
        store: Store,
        model: Model,
        tools: ToolRegistry = default_registry,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 300.0,
        profiles: Mapping[str, AgentProfile] | None = None,
        model_for: Callable[[AgentProfile], Model] | None = None,
        clock: Callable[[], datetime] = utcnow,
        children_recheck: float = 60.0,
        build: Build | None = None,
        heartbeat: Heartbeat | None = None,
        tick_limit: Callable[[TaskRecord], float | None] | None = None,
    ) -> None:
        self.store = store
        # The code this runner is (docs/deploys.md): recorded by every claim, named by code.changed
        # and by the worker id every event of its ticks carries.
        self.build = build or Build()
        self.tools = tools
        self.worker_id = worker_id or worker_identity(self.build.id)
        self.lease_seconds = lease_seconds
        self.profiles = dict(profiles) if profiles is not None else dict(BUILTIN_PROFILES)
        # Which model answers a profile (its own model and fallback); by default the one model.
        self.model_for: Callable[[AgentProfile], Model] = model_for or (lambda _profile: model)
        self.clock = clock
        self.executor = StepExecutor(tools, clock, profiles=self.profiles, children_recheck=children_recheck)
        # Renews the lease of every tick in flight (one per process when the caller shares it).
        self.heartbeat = heartbeat or Heartbeat(store, lease_seconds=lease_seconds)
        # How long a tick of this task may run before its lease is left to expire (None: no limit).
        self.tick_limit = tick_limit

    # --- entry points --------------------------------------------------------------------------

    def create(self, goal: str, context: dict[str, JSON] | None = None, **options: JSON) -> str:
        new = validate_new_task(NewTask(goal=goal, context=context or {}, **options), self.profiles)  # type: ignore[arg-type]
        return self.store.create_task(replace(new, profile_config=profile_to_json(self.profiles[new.profile])))

    def start(self, goal: str, context: dict[str, JSON] | None = None, **options: JSON) -> RunResult:
        return self.run(self.create(goal, context, **options))

    def resume(self, task_id: str, *, max_ticks: int | None = None) -> RunResult:
        """Drive an existing task on from wherever its last checkpoint left it."""
        return self.run(task_id, max_ticks=max_ticks)

    def run(
        self,
        task_id: str,
        *,
        max_ticks: int | None = None,
        on_tick: Callable[[TickOutcome], None] | None = None,
        idle_sleep: float = 0.05,
        idle_timeout: float = 0.0,
    ) -> RunResult:
        """Tick until the task is no longer runnable (or max_ticks). Returns the RunResult."""
        started = time.monotonic()
        ticks = 0
        idle_since: float | None = None
        while max_ticks is None or ticks < max_ticks:
            try:
                outcome = self.tick(task_id)
            except BuildSuperseded:
                break  # a newer build owns the task's future: this runner never moves it back
            except TransientError as exc:
                time.sleep(min(exc.retry_after or 1.0, 30.0))
                continue
            if outcome.retry_in:
                time.sleep(min(outcome.retry_in, 60.0))
                continue
            if outcome.claimed:
                ticks += 1
                idle_since = None
                if on_tick:
                    on_tick(outcome)
                if outcome.runnable:
                    continue
                break
            # Not claimable now: someone else holds the lease, or it is not due. Wait a little if asked.
            record = self.store.get_task(task_id)
            if record.status not in TaskStatus.CLAIMABLE:
                break
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= idle_timeout:
                break
            time.sleep(idle_sleep)
        return self.result(task_id, duration_s=time.monotonic() - started, ticks=ticks)

    # --- one tick ------------------------------------------------------------------------------

    def tick(self, task_id: str) -> TickOutcome:
        lease = self.store.claim(task_id, owner=self.worker_id, lease_seconds=self.lease_seconds, build=self.build)
        if lease is None:
            return TickOutcome(task_id=task_id, claimed=False)
        kept = self.heartbeat.keep(lease)
        try:
            return self._tick(lease, kept)
        finally:
            self.heartbeat.drop(kept)

    def _tick(self, lease: Lease, kept: Kept) -> TickOutcome:
        task_id = lease.task_id
        for attempt in range(MAX_CONFLICT_RETRIES):
            prepared = self._prepare(lease, kept, first_pass=attempt == 0)
            if isinstance(prepared, TickOutcome):
                return prepared
            snapshot, commit, outcome = prepared
            if kept.lost.is_set():
                # The heartbeat found the lease taken over (or the tick past its limit): stop before
                # the commit, which the fence would refuse anyway.
                return TickOutcome(task_id=task_id, claimed=True, fenced=True)
            result = self.store.commit(lease, commit)
            if result is CommitResult.COMMITTED:
                return self._committed(task_id, snapshot, outcome)
            if result is CommitResult.FENCED:
                return TickOutcome(task_id=task_id, claimed=True, fenced=True)
            # CONFLICT: an operator appended events meanwhile. Redo on the new state; the journal
            # makes the redo free of model and tool calls, once the answers that were to be written
            # with the commit are written. What the claim read is stale now, so the store must load
            # afresh.
            try:
                for entry in commit.journal:
                    self.store.journal_complete(lease, entry)
            except LeaseLost:
                return TickOutcome(task_id=task_id, claimed=True, fenced=True)
            lease = replace(lease, task=None, preload=None)
            self.heartbeat.update(kept, lease)
        self.store.release(lease)
        return TickOutcome(task_id=task_id, claimed=True, status=TaskStatus.RUNNING, runnable=True)

    def _prepare(self, lease: Lease, kept: Kept, *, first_pass: bool) -> tuple[Snapshot, TickCommit, TickOutcome] | TickOutcome:
        """Load and advance the task: its snapshot, commit and outcome, or the outcome of a tick that stops here."""
        task_id = lease.task_id
        try:
            snapshot = self.store.load(lease)
            if first_pass and self.tick_limit is not None:
                self.heartbeat.set_limit(kept, self.tick_limit(snapshot.task))
            commit, outcome = self._advance(lease, snapshot, first_pass=first_pass)
        except LeaseLost:
            return TickOutcome(task_id=task_id, claimed=True, fenced=True)
        except CircuitOpen as exc:
            # The endpoint is known to be down: come back when its breaker lets a call through,
            # rather than retrying hot. The row's next_run_at is the reschedule.
            retry_in = exc.retry_after or 30.0
            # Waiting is not an attempt at the step: an outage must not use up the task's attempts.
            self.store.release(lease, retry_in=retry_in, refund_attempt=True)
            return TickOutcome(task_id=task_id, claimed=True, status=TaskStatus.RUNNING, retry_in=retry_in)
        except TransientError as exc:
            self.store.release(lease, retry_in=exc.retry_after or 0.0)
            raise
        except Exception:
            # A bug or an unexpected failure: give the lease back so that a retry can run at
            # once; the attempt counter bounds how often this can repeat.
            self.store.release(lease, retry_in=1.0)
            raise
        return snapshot, commit, outcome

    def _committed(self, task_id: str, snapshot: Snapshot, outcome: TickOutcome) -> TickOutcome:
        parent = snapshot.task.parent_id
        # After the commit: a lost doorbell is caught by the parent's re-check timer.
        ended = bool(parent) and outcome.status in TaskStatus.TERMINAL
        if ended and ring_parent(self.store, parent_id=str(parent), child_id=task_id, status=outcome.status):
            return replace(outcome, rang_parent=str(parent))
        return outcome

    def _advance(self, lease: Lease, snapshot: Snapshot, *, first_pass: bool) -> tuple[TickCommit, TickOutcome]:
        task = snapshot.task
        state = rebuild(snapshot.checkpoint, snapshot.events)
        cursor = (state.plan_version, state.next_step)  # which step is current, before this tick
        events = opening_events(lease, task)
        profile = task_profile(task, self.profiles)
        decision = choose(state, task, profile)
        journal = Journal(self.store, lease, fresh=first_pass and task.step_attempts == 1)
        draft = CommitDraft()
        events += self._perform(decision, snapshot, state, journal, profile, draft)
        note_code_changes(events, journal, self.build.id, state, took_over=bool(lease.took_over_from))
        return seal(task, state, cursor, events, journal, draft, decision, profile, self.clock)

    def _perform(
        self,
        decision: Decision,
        snapshot: Snapshot,
        state: TaskState,
        journal: Journal,
        profile: AgentProfile | None,
        draft: CommitDraft,
    ) -> list[NewEvent]:
        """The decided phase's events; a permanent failure in it is escalated."""
        task = snapshot.task
        try:
            if decision.kind in ("plan", "step"):
                assert profile is not None
                scope = TickScope(
                    self.store, self.tools, self.executor, self.clock, self.model_for, task, state, journal, profile, draft
                )
                if decision.kind == "plan":
                    return [plan(scope)]
                assert decision.step_index is not None
                return run_step(scope, snapshot, decision.step_index)
            if decision.kind == "complete":
                return [ev.new_event(ev.TASK_COMPLETED, {"result": task.result})]
            if decision.kind == "escalate":
                return [escalation(decision.reason, state, task.step_attempts, draft, self.clock)]
        except PermanentError as exc:
            return [escalation(str(exc), state, task.step_attempts, draft, self.clock, error=exc)]
        return []

    # --- results -------------------------------------------------------------------------------

    def result(self, task_id: str, *, duration_s: float, ticks: int = 0) -> RunResult:
        record = self.store.get_task(task_id)
        checkpoint = self.store.latest_checkpoint(task_id)
        steps = tuple(
            StepLogEntry(
                index=s.index,
                title=s.title,
                status=s.status,
                attempts=s.attempts,
                output=(s.result or {}).get("output") if isinstance(s.result, dict) else s.result,
                duration_s=(s.finished_at - s.started_at).total_seconds() if s.started_at and s.finished_at else None,
            )
            for s in self.store.steps(task_id)
        )
        status = {
            TaskStatus.COMPLETED: "completed",
            TaskStatus.FAILED: "aborted",
            TaskStatus.CANCELLED: "aborted",
            TaskStatus.REQUIRES_HUMAN: "requires_human",
        }.get(record.status, record.status)
        return RunResult(
            task_id=task_id,
            status=status,
            reason=record.status_reason,
            result=record.result,
            steps=steps,
            duration_s=duration_s,
            checkpoint=CheckpointRef(task_id, checkpoint.seq, checkpoint.event_seq) if checkpoint else None,
            ticks=ticks,
        )
