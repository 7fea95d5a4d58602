"""The runner: start a goal, advance it one tick at a time, drive it to an end, resume it anywhere.

A tick is one unit of progress (plan, or execute one step):
  1. claim the lease (one conditional write; None means another owner or nothing due);
  2. load the latest checkpoint plus the events after it and rebuild the state;
  3. decide what comes next (`decide`, a pure function of the state) and do it, every model and
     tool call going through the journal;
  4. commit events, step row, checkpoint, status and lease release in one transaction guarded
     by the lease epoch. A fenced commit writes nothing; the tick's work is discarded.
Any process can run a tick: a Celery worker, the in-process driver, a test.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from agents import boundary
from agents import events as ev
from agents.approvals import ApprovalRequired, StepRejected, gate, step_approval
from agents.compensation import compensate
from agents.errors import (
    BudgetExhausted,
    BuildSuperseded,
    CircuitOpen,
    HorizonError,
    InvalidInput,
    JournalMismatch,
    LeaseLost,
    OutcomeUnknown,
    PermanentError,
    PlanInvalid,
    ReplanLimit,
    StepBudgetExceeded,
    TransientError,
)
from agents.events import TaskState, rebuild
from agents.executor import StepExecutor, StepRefused
from agents.heartbeat import Heartbeat, Kept
from agents.journal import Journal, call_key
from agents.model import Model
from agents.planner import RAW_OUTPUT_MAX_CHARS, parse_plan, plan_request, repair_request, replan_request
from agents.profiles import BUILTIN_PROFILES, AgentProfile, profile_from_snapshot, profile_to_json
from agents.redaction import redact, redact_text
from agents.review import ReviewRejected, Verdict, drift_request, parse_verdict, review_request
from agents.status import StepStatus, TaskStatus
from agents.store import CommitResult, Store
from agents.subtasks import ChildEscalation, ChildFailed, ring_parent
from agents.tools.control import ABORT_TASK, FINISH_STEP, FINISH_TASK
from agents.tools.registry import ToolRegistry, default_registry
from agents.types import (
    JSON,
    Build,
    CheckpointRef,
    EventRecord,
    Lease,
    LLMRequest,
    LLMResponse,
    NewEvent,
    NewTask,
    RunResult,
    Snapshot,
    StepLogEntry,
    StepRecord,
    StepSpec,
    StepUpdate,
    TaskRecord,
    TickCommit,
)
from agents.usage import Spent, budget_problem
from agents.waits import WaitRequested

GOAL_MAX_CHARS = 4000
CONTEXT_MAX_BYTES = 64 * 1024
EVENT_TEXT_MAX_CHARS = 4000  # step outputs are capped in events; the step row keeps up to STEP_OUTPUT_MAX_CHARS
STEP_OUTPUT_MAX_CHARS = 100_000
MAX_CONFLICT_RETRIES = 3
CODE_CHANGES_LISTED = 20  # keys a code.changed event lists (it counts them all)


# Failures a revised plan can route around; the others (budgets, journal mismatch, an unknown
# outcome, an endpoint refusing us) need a person.
REPLANNABLE = (StepBudgetExceeded, StepRefused, ReviewRejected, StepRejected)
# Failures a person must look at before anything, compensation included, touches the task's effects.
NEEDS_A_PERSON = (OutcomeUnknown, JournalMismatch, BudgetExhausted, ChildEscalation)


def worker_identity(build: str = "") -> str:
    """host:pid:nonce[:build]. The in-process driver uses host and pid to spot leases of dead local
    processes; the build (docs/deploys.md) names the code that wrote each event of a tick."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}" + (f":{build}" if build else "")


def validate_new_task(new: NewTask, profiles: Mapping[str, AgentProfile] | None = None) -> NewTask:
    goal = new.goal.strip() if isinstance(new.goal, str) else ""
    if not goal:
        raise InvalidInput("the goal is empty")
    if len(goal) > GOAL_MAX_CHARS:
        raise InvalidInput(f"the goal is {len(goal)} characters; the limit is {GOAL_MAX_CHARS}")
    if not isinstance(new.context, dict):
        raise InvalidInput("the context must be a JSON object")
    problem = boundary.refusal(goal, "the goal") or boundary.refusal(new.context, "the context")
    if problem:  # user input enters here from every interface: refused before it can fail a write
        raise InvalidInput(problem)
    try:
        size = len(json.dumps(new.context))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the context is not JSON-serialisable: {exc}") from None
    if size > CONTEXT_MAX_BYTES:
        raise InvalidInput(f"the context is {size} bytes as JSON; the limit is {CONTEXT_MAX_BYTES}")
    if not 1 <= new.max_steps <= 10_000:
        raise InvalidInput("max_steps must be between 1 and 10000")
    if not 1 <= new.max_attempts <= 100:
        raise InvalidInput("max_attempts must be between 1 and 100")
    if profiles is not None and new.profile not in profiles:
        raise InvalidInput(f"unknown profile {new.profile!r}; configured: {', '.join(sorted(profiles))}")
    # A key pasted into a goal would otherwise reach every prompt, event and checkpoint of the task.
    return replace(new, goal=redact_text(goal), context=redact(new.context))


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


@dataclass(frozen=True)
class Decision:
    kind: str  # "plan", "step", "complete", "escalate", "none"
    step_index: int | None = None
    reason: str = ""


def decide(state: TaskState, *, step_attempts: int, max_attempts: int, profile: AgentProfile | None = None) -> Decision:
    """What the next tick does; a pure function of the rebuilt state, the attempt counter and the profile."""
    if state.status in TaskStatus.TERMINAL or state.status == TaskStatus.REQUIRES_HUMAN:
        return Decision("none")
    unit = "planning" if state.plan_version == 0 else f"step {state.next_step + 1}"
    if step_attempts > max_attempts:
        # The broker does not count redeliveries, so the database does: each claim increments the
        # counter and each commit resets it. A unit that keeps killing its worker stops here.
        return Decision("escalate", reason=f"{unit} was attempted {max_attempts} times without finishing")
    pending_step = state.plan_version and state.next_step < state.step_count
    if profile is not None and pending_step and (problem := budget_problem(profile, state)):
        return Decision("escalate", reason=problem)
    if state.plan_version == 0:
        return Decision("plan")
    if state.next_step < state.step_count:
        return Decision("step", step_index=state.next_step)
    return Decision("complete")


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
            try:
                snapshot = self.store.load(lease)
                if attempt == 0 and self.tick_limit is not None:
                    self.heartbeat.set_limit(kept, self.tick_limit(snapshot.task))
                commit, outcome = self._advance(lease, snapshot, first_pass=attempt == 0)
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
            if kept.lost.is_set():
                # The heartbeat found the lease taken over (or the tick past its limit): stop before
                # the commit, which the fence would refuse anyway.
                return TickOutcome(task_id=task_id, claimed=True, fenced=True)
            result = self.store.commit(lease, commit)
            if result is CommitResult.COMMITTED:
                parent = snapshot.task.parent_id
                # After the commit: a lost doorbell is caught by the parent's re-check timer.
                ended = bool(parent) and outcome.status in TaskStatus.TERMINAL
                if ended and ring_parent(self.store, parent_id=str(parent), child_id=task_id, status=outcome.status):
                    outcome = replace(outcome, rang_parent=str(parent))
                return outcome
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

    def _advance(self, lease: Lease, snapshot: Snapshot, *, first_pass: bool) -> tuple[TickCommit, TickOutcome]:
        task = snapshot.task
        state = rebuild(snapshot.checkpoint, snapshot.events)
        cursor = (state.plan_version, state.next_step)  # which step is current, before this tick
        new_events: list[NewEvent] = []
        if lease.took_over_from:
            new_events.append(
                ev.new_event(ev.TASK_RESUMED, {"previous_owner": lease.took_over_from, "attempt": task.step_attempts})
            )
        # The profile as the task started with it; tasks created before profiles were kept with
        # them (profile_config None) use the profile as configured now.
        profile = profile_from_snapshot(task.profile_config) if task.profile_config else self.profiles.get(task.profile)
        decision = decide(state, step_attempts=task.step_attempts, max_attempts=task.max_attempts, profile=profile)
        if profile is None and decision.kind in ("plan", "step"):
            decision = Decision("escalate", reason=f"the task's profile {task.profile!r} is not configured on this worker")
        journal = Journal(self.store, lease, fresh=first_pass and task.step_attempts == 1)
        kwargs: dict[str, JSON] = {}
        outcome: dict[str, JSON] = {"decision": decision.kind, "step_index": decision.step_index}
        try:
            if decision.kind == "plan":
                assert profile is not None
                new_events.append(self._plan(task, state, journal, profile, kwargs))
            elif decision.kind == "step":
                assert decision.step_index is not None and profile is not None
                new_events.extend(self._step(snapshot, task, state, decision.step_index, journal, profile, kwargs, outcome))
            elif decision.kind == "complete":
                new_events.append(ev.new_event(ev.TASK_COMPLETED, {"result": task.result}))
            elif decision.kind == "escalate":
                new_events.append(self._escalation(decision.reason, state, task.step_attempts, kwargs))
        except PermanentError as exc:
            new_events.append(self._escalation(str(exc), state, task.step_attempts, kwargs, error=exc))
        if journal.changes and self.build.id not in state.extra.get("code_changed_builds", ()):
            # Recorded answers were reused under requests this build renders differently: say so
            # once per build, ahead of what the tick did with them.
            changed = {"build": self.build.id, "count": len(journal.changes), "changes": journal.changes[:CODE_CHANGES_LISTED]}
            new_events.insert(1 if lease.took_over_from else 0, ev.new_event(ev.CODE_CHANGED, changed))

        # Fold the new events into the state with the seqs the store will give them: that state
        # is the checkpoint, so checkpoint == rebuild(previous checkpoint, events) by construction.
        base = task.last_event_seq
        for i, event in enumerate(new_events):
            ev.apply(
                state, EventRecord(seq=base + i + 1, type=event.type, payload=event.payload, schema_version=event.schema_version)
            )
        status = state.status if state.status != TaskStatus.PENDING else TaskStatus.RUNNING
        runnable = status in TaskStatus.WORKING  # claimable and not waiting for a timer or a signal
        if (state.plan_version, state.next_step) != cursor:
            # A new step is current: its deadline starts now (the sweeper enforces it).
            minutes = profile.step_deadline_minutes if profile else 0
            kwargs["new_step_deadline"] = True
            kwargs["step_deadline_at"] = self.clock() + timedelta(minutes=minutes) if minutes and runnable else None
        if isinstance(update := kwargs.get("step_update"), StepUpdate):
            # Error texts come from anywhere (an endpoint's error body, a tool's exception): the step
            # row keeps no secret either. Events were redacted when they were built.
            kwargs["step_update"] = replace(
                update, error=redact_text(update.error), result=redact(update.result), transcript=redact(update.transcript)
            )
        commit = TickCommit(
            base_event_seq=base,
            base_checkpoint_seq=task.checkpoint_seq,
            events=tuple(new_events),
            checkpoint_state=state.to_json(),
            status=status,
            status_reason=state.reason if status in (TaskStatus.REQUIRES_HUMAN, TaskStatus.FAILED) else "",
            runnable=runnable,
            journal=journal.take_unwritten(),
            **kwargs,  # type: ignore[arg-type]
        )
        return commit, TickOutcome(
            task_id=task.id,
            claimed=True,
            committed=True,
            status=status,
            runnable=runnable,
            journal_hits=journal.hits,
            step_count=state.step_count,
            **outcome,  # type: ignore[arg-type]
        )

    def _ask_for_plan(
        self, task: TaskRecord, journal: Journal, profile: AgentProfile, request: LLMRequest, *, version: int, first_index: int
    ) -> tuple[tuple[StepSpec, ...], Spent, str]:
        """Ask, validate, and send repair prompts up to the profile's limit; journaled like every call."""
        spent = Spent()
        model = self.model_for(profile)
        for attempt in range(profile.max_plan_repairs + 1):
            response = journal.model_call(call_key(task.id, version, "plan", attempt), model, request)
            spent.add(response)
            try:
                return (
                    parse_plan(response, max_steps=task.max_steps - first_index, first_index=first_index),
                    spent,
                    response.model,
                )
            except PlanInvalid as exc:
                if attempt == profile.max_plan_repairs:
                    failure = PlanInvalid(f"{exc} (after {attempt} repair prompts)", raw_output=exc.raw_output)
                    failure.usage = spent.as_json()
                    raise failure from None
                request = repair_request(request, response, exc)
        raise AssertionError("unreachable")

    def _plan(
        self, task: TaskRecord, state: TaskState, journal: Journal, profile: AgentProfile, kwargs: dict[str, JSON]
    ) -> NewEvent:
        version = state.plan_version + 1
        request = plan_request(task, max_steps=task.max_steps)
        steps, spent, model_name = self._ask_for_plan(task, journal, profile, request, version=version, first_index=0)
        kwargs["new_steps"] = steps
        kwargs["plan_version"] = version
        return ev.new_event(
            ev.PLAN_CREATED,
            {"version": version, "steps": [s.to_json() for s in steps], "model": model_name, "usage": spent.as_json()},
        )

    @staticmethod
    def _replan_refusal(task: TaskRecord, state: TaskState, profile: AgentProfile, *, from_index: int) -> str:
        """Why no re-plan is possible now ("" when one is)."""
        if state.replans >= profile.max_replans:
            return f"the re-plan limit ({profile.max_replans}) is reached"
        if from_index >= task.max_steps:
            return f"the task has no room for more steps (max_steps {task.max_steps})"
        return ""

    @staticmethod
    def _step_failed(index: int, title: str, error: str, spent: Spent) -> NewEvent:
        payload = {"index": index, "title": title, "error": _cap(error, EVENT_TEXT_MAX_CHARS), "usage": spent.as_json()}
        return ev.new_event(ev.STEP_FAILED, payload)

    def _replan(
        self,
        task: TaskRecord,
        state: TaskState,
        journal: Journal,
        profile: AgentProfile,
        kwargs: dict[str, JSON],
        *,
        from_index: int,
        why: str,
        failed_title: str,
    ) -> NewEvent:
        """A new plan version replacing the steps from `from_index` on (recorded as plan.revised)."""
        if refusal := self._replan_refusal(task, state, profile, from_index=from_index):
            raise ReplanLimit(f"{why}; {refusal}")
        remaining = [
            s.title for s in self.store.steps(task.id) if s.index > from_index or (s.index == from_index and failed_title == "")
        ]
        version = state.plan_version + 1
        request = replan_request(
            task,
            recent=state.recent,
            from_index=from_index,
            failed_title=failed_title,
            reason=why,
            remaining=remaining,
            max_steps=task.max_steps - from_index,
        )
        steps, spent, model_name = self._ask_for_plan(task, journal, profile, request, version=version, first_index=from_index)
        kwargs["new_steps"] = steps
        kwargs["plan_version"] = version
        kwargs["truncate_steps_from"] = from_index
        return ev.new_event(
            ev.PLAN_REVISED,
            {
                "version": version,
                "from_index": from_index,
                "reason": _cap(why, EVENT_TEXT_MAX_CHARS),
                "steps": [s.to_json() for s in steps],
                "model": model_name,
                "usage": spent.as_json(),
            },
        )

    def _review(
        self, task: TaskRecord, step: StepRecord, output: str, journal: Journal, profile: AgentProfile, round_: int
    ) -> tuple[Verdict, LLMResponse]:
        request = review_request(task, step, output)
        key = call_key(task.id, step.plan_version, f"s{step.index}review", round_)
        response = journal.model_call(key, self.model_for(profile), request)
        return parse_verdict(response), response

    def _step(
        self,
        snapshot: Snapshot,
        task: TaskRecord,
        state: TaskState,
        index: int,
        journal: Journal,
        profile: AgentProfile,
        kwargs: dict[str, JSON],
        outcome: dict[str, JSON],
    ) -> list[NewEvent]:
        hint = snapshot.next_step
        step = hint if hint is not None and hint.index == index else self.store.step(task.id, index)
        # depends_on at run time: steps run in index order and every step below next_step has
        # completed, so a step may start only if each step it depends on is below it. A plan that
        # says otherwise (a fork's, an operator's edit) stops here rather than run out of order.
        if waiting_on := [d for d in step.depends_on if d >= index]:
            raise PlanInvalid(f"step {index + 1} depends on step {waiting_on[0] + 1}, which has not completed before it")
        needs_approval = profile.approval_policy == "always" or (profile.approval_policy == "planned" and step.requires_approval)
        # A step that an earlier commit recorded as attempted (escalated, then resumed) may have
        # journaled calls even on a first claim.
        journal.fresh = journal.fresh and step.attempts == 0
        started_at = self.clock()
        events: list[NewEvent] = []
        spent = Spent()
        transcript: list[dict[str, JSON]] = []
        try:
            if needs_approval:
                journal.flush()
                decision = gate(self.store, journal.lease, step_approval(task.id, step))
                if decision.status == "rejected":
                    raise StepRejected(
                        f"step {index + 1} was rejected by {decision.decided_by}: {decision.comment or 'no reason given'}"
                    )
            feedback = ""
            rounds = profile.max_review_retries + 1 if profile.self_review else 1
            for round_ in range(rounds):
                scope = f"s{index}" if round_ == 0 else f"s{index}retry{round_}"
                result = self.executor.run(
                    journal=journal,
                    model=self.model_for(profile),
                    task=task,
                    step=step,
                    state=state,
                    profile=profile,
                    scope=scope,
                    feedback=feedback,
                )
                spent.merge(result.spent)
                transcript += result.transcript
                events.extend(ev.new_event(ev.CONTEXT_COMPACTED, c) for c in result.compactions)
                if not profile.self_review or result.control != FINISH_STEP:
                    break
                verdict, response = self._review(task, step, result.output, journal, profile, round_)
                events.append(
                    ev.new_event(
                        ev.STEP_REVIEWED,
                        {
                            "index": index,
                            "round": round_,
                            "approved": verdict.approved,
                            "critique": _cap(verdict.critique, EVENT_TEXT_MAX_CHARS),
                            "usage": Spent.of(response).as_json(),
                        },
                    )
                )
                if verdict.approved:
                    break
                if round_ == rounds - 1:
                    raise ReviewRejected(f"self-review rejected step {index + 1} {rounds} times: {verdict.critique[:500]}")
                feedback = verdict.critique
        except ApprovalRequired as asked:
            # Nothing of the action ran. A tool's approval comes after model calls that are
            # journaled: the step is marked started, so that the resumed step looks them up.
            approval = asked.approval
            if approval.kind == "tool":
                kwargs["step_update"] = StepUpdate(
                    index=index, status=StepStatus.RUNNING, attempts=task.step_attempts, started_at=started_at
                )
            payload = {
                "reason": str(asked),
                "error": "",
                "step_index": index,
                "approval_id": approval.id,
                "action": approval.action,
            }
            # Only the pause: the review rounds before it are replayed from the journal when the
            # step resumes, and record their events then (here as well would record them twice).
            return [ev.new_event(ev.TASK_ESCALATED, payload)]
        except WaitRequested as wait:
            # The step stops here until its timer or signal; the journal replays it up to the wait.
            # Marking the step started keeps a later first claim from skipping journal lookups.
            # The calls so far are counted when the step completes: a resumed step replays them
            # from the journal, and counting them here as well would count them twice.
            kwargs["step_update"] = StepUpdate(
                index=index, status=StepStatus.RUNNING, attempts=task.step_attempts, started_at=started_at
            )
            kwargs["wake_at"] = wait.until
            if wait.spec.get("kind") == "children":
                outcome["spawned"] = tuple(wait.spec["children"])
            payload = {"index": index, "key": wait.key, **wait.spec}
            return [ev.new_event(ev.TASK_WAITING, payload)]  # only the pause, as for an approval
        except PermanentError as exc:
            spent.merge(exc.usage)
            events.extend(ev.new_event(ev.CONTEXT_COMPACTED, c) for c in exc.compactions or ())
            failure: PermanentError = exc
            if profile.replan_on_failure and isinstance(exc, REPLANNABLE):
                refusal = self._replan_refusal(task, state, profile, from_index=index)
                if not refusal:
                    failed = self._step_failed(index, step.title, str(exc), spent)
                    # The step's row is replaced by the revised plan's step at the same index.
                    why = str(exc)
                    return [
                        *events,
                        failed,
                        self._replan(task, state, journal, profile, kwargs, from_index=index, why=why, failed_title=step.title),
                    ]
                failure = ReplanLimit(f"{exc}; {refusal}")
            kwargs["step_update"] = StepUpdate(
                index=index,
                status=StepStatus.FAILED,
                attempts=task.step_attempts,
                error=str(failure),
                started_at=started_at,
                finished_at=self.clock(),
                transcript=tuple(transcript),
            )
            if isinstance(failure, ChildFailed) and not profile.compensate_on_failure:
                # on_child_failure=fail_parent: the parent fails (undoing its effects only when the
                # profile compensates on failure, below).
                failed = self._step_failed(index, step.title, str(failure), spent)
                reason = f"step {index + 1} failed: {failed.payload['error']}"
                return [*events, failed, ev.new_event(ev.TASK_FAILED, {"reason": reason})]
            if profile.compensate_on_failure and not isinstance(failure, NEEDS_A_PERSON):
                failed = self._step_failed(index, step.title, str(failure), spent)
                reason = f"step {index + 1} failed for good: {failed.payload['error']}"
                return [*events, failed, *self._fail_task(task, journal, reason)]
            # Escalated here rather than raised, so that the review rounds' events and what the
            # step spent are kept with the escalation.
            failure.usage = spent.as_json()
            return [*events, self._escalation(str(failure), state, task.step_attempts, kwargs, error=failure)]
        output = _cap(result.output, STEP_OUTPUT_MAX_CHARS)
        aborted = result.control == ABORT_TASK
        kwargs["step_update"] = StepUpdate(
            index=index,
            status=StepStatus.FAILED if aborted else StepStatus.COMPLETED,
            attempts=task.step_attempts,
            result={"output": output, "model_calls": spent.model_calls, "tool_calls": spent.tool_calls},
            error=_cap(result.output, EVENT_TEXT_MAX_CHARS) if aborted else "",
            started_at=started_at,
            finished_at=self.clock(),
            transcript=tuple(transcript),
        )
        outcome.update(step_title=step.title, output=result.output)
        if aborted:
            reason = f"the agent aborted the task at step {index + 1}: {_cap(result.output, EVENT_TEXT_MAX_CHARS)}"
            return [*events, self._step_failed(index, step.title, reason, spent), *self._fail_task(task, journal, reason)]
        events.append(
            ev.new_event(
                ev.STEP_COMPLETED,
                {
                    "index": index,
                    "title": step.title,
                    "output": _cap(result.output, EVENT_TEXT_MAX_CHARS),
                    "attempt": task.step_attempts,
                    "journal_hits": journal.hits,
                    "usage": spent.as_json(),
                },
            )
        )
        if index + 1 >= state.step_count or result.control == FINISH_TASK:
            # The last step, or the agent says the goal is met: finish in the same commit.
            final = {"output": _cap(result.output, EVENT_TEXT_MAX_CHARS), "steps": index + 1}
            kwargs["result"] = final
            events.append(ev.new_event(ev.TASK_COMPLETED, {"result": final}))
        elif profile.drift_check_every and (index + 1) % profile.drift_check_every == 0:
            events.extend(self._drift_check(task, state, step, journal, profile, kwargs))
        return events

    def _fail_task(self, task: TaskRecord, journal: Journal, reason: str) -> list[NewEvent]:
        """End the task as failed, undoing its recorded side effects first (the saga's compensation)."""
        undone = compensate(journal, self.tools, task.id)
        events = []
        if any(undone.values()):
            events.append(ev.new_event(ev.TASK_COMPENSATED, undone))
            if undone["failed"] or undone["unknown"]:
                reason += f"; compensation left {len(undone['failed'])} failed and {len(undone['unknown'])} unknown undo(s)"
        return [*events, ev.new_event(ev.TASK_FAILED, {"reason": reason})]

    def _drift_check(
        self,
        task: TaskRecord,
        state: TaskState,
        step: StepRecord,
        journal: Journal,
        profile: AgentProfile,
        kwargs: dict[str, JSON],
    ) -> list[NewEvent]:
        """Re-read the goal every few steps; if the work has drifted, re-plan the rest."""
        request = drift_request(task, state, step)
        key = call_key(task.id, step.plan_version, f"s{step.index}drift", 0)
        response = journal.model_call(key, self.model_for(profile), request)
        verdict = parse_verdict(response)
        checked = ev.new_event(
            ev.STEP_REVIEWED,
            {
                "index": step.index,
                "round": 0,
                "kind": "drift",
                "approved": verdict.approved,
                "critique": _cap(verdict.critique, EVENT_TEXT_MAX_CHARS),
                "usage": Spent.of(response).as_json(),
            },
        )
        if verdict.approved:
            return [checked]
        why = f"drift check after step {step.index + 1}: {verdict.critique}"
        return [checked, self._replan(task, state, journal, profile, kwargs, from_index=step.index + 1, why=why, failed_title="")]

    def _escalation(
        self, reason: str, state: TaskState, attempts: int, kwargs: dict[str, JSON], *, error: Exception | None = None
    ) -> NewEvent:
        if state.plan_version and state.next_step < state.step_count and "step_update" not in kwargs:
            kwargs["step_update"] = StepUpdate(
                index=state.next_step, status=StepStatus.FAILED, attempts=attempts, error=reason, finished_at=self.clock()
            )
        payload: dict[str, JSON] = {
            "reason": reason,
            "error": type(error).__name__ if error else "",
            "step_index": state.next_step,
        }
        # What a person needs to judge the failure: the model's own words, capped.
        raw = getattr(error, "raw_output", None) or getattr(error, "excerpt", None)
        if raw:
            payload["raw_output"] = _cap(str(raw), RAW_OUTPUT_MAX_CHARS)
        if isinstance(error, HorizonError) and error.usage:
            payload["usage"] = error.usage
        payload.update(getattr(error, "escalation_payload", None) or {})
        return ev.new_event(ev.TASK_ESCALATED, payload)

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
