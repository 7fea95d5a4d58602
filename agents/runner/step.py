"""Running one step: the approval gate, the executor's rounds with self-review, and how the step ends.

A step ends in one of four ways, each a function below: paused for an approval, paused for a wait,
failed (re-planned, failed for good, or escalated), or finished (completed, or the agent aborts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agents import events as ev
from agents.approvals import ApprovalRequired, StepRejected, gate, step_approval
from agents.errors import (
    BudgetExhausted,
    JournalMismatch,
    OutcomeUnknown,
    PermanentError,
    PlanInvalid,
    ReplanLimit,
    StepBudgetExceeded,
)
from agents.executor import StepRefused, StepResult
from agents.json_value import as_list, as_str
from agents.review import ReviewRejected
from agents.runner.draft import TickScope
from agents.runner.endings import escalation, fail_task, step_failed
from agents.runner.limits import EVENT_TEXT_MAX_CHARS, STEP_OUTPUT_MAX_CHARS, cap
from agents.runner.planning import replan, replan_refusal
from agents.runner.review import drift_check, review, reviewed
from agents.status import ApprovalStatus, StepStatus
from agents.subtasks import ChildEscalation, ChildFailed
from agents.tools.control import ABORT_TASK, FINISH_STEP, FINISH_TASK
from agents.types import JSON, NewEvent, Snapshot, StepRecord, StepUpdate
from agents.usage import Spent
from agents.waits import WaitRequested

# Failures a revised plan can route around; the others (budgets, journal mismatch, an unknown
# outcome, an endpoint refusing us) need a person.
REPLANNABLE = (StepBudgetExceeded, StepRefused, ReviewRejected, StepRejected)
# Failures a person must look at before anything, compensation included, touches the task's effects.
NEEDS_A_PERSON = (OutcomeUnknown, JournalMismatch, BudgetExhausted, ChildEscalation)


@dataclass
class _Progress:
    """What the step's rounds produced so far: kept by every ending, a pause aside."""

    started_at: datetime
    events: list[NewEvent] = field(default_factory=list)
    spent: Spent = field(default_factory=Spent)
    transcript: list[dict[str, JSON]] = field(default_factory=list)


def run_step(scope: TickScope, snapshot: Snapshot, index: int) -> list[NewEvent]:
    """Run step `index` of the task: the events it records; what else it writes goes to the draft."""
    task, profile, journal = scope.task, scope.profile, scope.journal
    hint = snapshot.next_step
    step = hint if hint is not None and hint.index == index else scope.store.step(task.id, index)
    # depends_on at run time: steps run in index order and every step below next_step has
    # completed, so a step may start only if each step it depends on is below it. A plan that
    # says otherwise (a fork's, an operator's edit) stops here rather than run out of order.
    if waiting_on := [d for d in step.depends_on if d >= index]:
        raise PlanInvalid(f"step {index + 1} depends on step {waiting_on[0] + 1}, which has not completed before it")
    needs_approval = profile.approval_policy == "always" or (profile.approval_policy == "planned" and step.requires_approval)
    # A step that an earlier commit recorded as attempted (escalated, then resumed) may have
    # journaled calls even on a first claim.
    journal.fresh = journal.fresh and step.attempts == 0
    progress = _Progress(started_at=scope.clock())
    try:
        if needs_approval:
            _pass_the_gate(scope, step)
        result = _execute(scope, step, progress)
    except ApprovalRequired as asked:
        return _paused_for_approval(scope, step, asked, progress)
    except WaitRequested as wait:
        return _paused_for_wait(scope, step, wait, progress)
    except PermanentError as exc:
        return _failed(scope, step, exc, progress)
    return _finished(scope, step, result, progress)


def _pass_the_gate(scope: TickScope, step: StepRecord) -> None:
    scope.journal.flush()
    decision = gate(scope.store, scope.journal.lease, step_approval(scope.task.id, step))
    if decision.status == ApprovalStatus.REJECTED:
        raise StepRejected(
            f"step {step.index + 1} was rejected by {decision.decided_by}: {decision.comment or 'no reason given'}"
        )


def _execute(scope: TickScope, step: StepRecord, progress: _Progress) -> StepResult:
    """The executor's rounds: one, or with self-review until the reviewer approves (or the retries run out)."""
    profile, index = scope.profile, step.index
    feedback = ""
    rounds = profile.max_review_retries + 1 if profile.self_review else 1
    for round_ in range(rounds):
        result = scope.executor.run(
            journal=scope.journal,
            model=scope.model(),
            task=scope.task,
            step=step,
            state=scope.state,
            profile=profile,
            scope=f"s{index}" if round_ == 0 else f"s{index}retry{round_}",
            feedback=feedback,
        )
        progress.spent.merge(result.spent)
        progress.transcript += result.transcript
        progress.events.extend(ev.new_event(ev.CONTEXT_COMPACTED, c) for c in result.compactions)
        if not profile.self_review or result.control != FINISH_STEP:
            break
        verdict, response = review(scope, step, result.output, round_)
        progress.events.append(reviewed(index, round_, verdict, response))
        if verdict.approved:
            break
        if round_ == rounds - 1:
            raise ReviewRejected(f"self-review rejected step {index + 1} {rounds} times: {verdict.critique[:500]}")
        feedback = verdict.critique
    return result


def _started(scope: TickScope, step: StepRecord, progress: _Progress) -> StepUpdate:
    attempts = scope.task.step_attempts
    return StepUpdate(index=step.index, status=StepStatus.RUNNING, attempts=attempts, started_at=progress.started_at)


def _paused_for_approval(scope: TickScope, step: StepRecord, asked: ApprovalRequired, progress: _Progress) -> list[NewEvent]:
    # Nothing of the action ran. A tool's approval comes after model calls that are
    # journaled: the step is marked started, so that the resumed step looks them up.
    approval = asked.approval
    if approval.kind == "tool":
        scope.draft.step_update = _started(scope, step, progress)
    payload: dict[str, JSON] = {
        "reason": str(asked),
        "error": "",
        "step_index": step.index,
        "approval_id": approval.id,
        "action": approval.action,
    }
    # Only the pause: the review rounds before it are replayed from the journal when the
    # step resumes, and record their events then (here as well would record them twice).
    return [ev.new_event(ev.TASK_ESCALATED, payload)]


def _paused_for_wait(scope: TickScope, step: StepRecord, wait: WaitRequested, progress: _Progress) -> list[NewEvent]:
    # The step stops here until its timer or signal; the journal replays it up to the wait.
    # Marking the step started keeps a later first claim from skipping journal lookups.
    # The calls so far are counted when the step completes: a resumed step replays them
    # from the journal, and counting them here as well would count them twice.
    scope.draft.step_update = _started(scope, step, progress)
    scope.draft.wake_at = wait.until
    if wait.spec.get("kind") == "children":
        scope.draft.spawned = tuple(as_str(c) for c in as_list(wait.spec["children"]))
    payload = {"index": step.index, "key": wait.key, **wait.spec}
    return [ev.new_event(ev.TASK_WAITING, payload)]  # only the pause, as for an approval


def _failed(scope: TickScope, step: StepRecord, exc: PermanentError, progress: _Progress) -> list[NewEvent]:
    """A failed step is re-planned around when the profile allows it; else it fails for good."""
    progress.spent.merge(exc.usage)
    progress.events.extend(ev.new_event(ev.CONTEXT_COMPACTED, c) for c in exc.compactions or ())
    failure: PermanentError = exc
    if scope.profile.replan_on_failure and isinstance(exc, REPLANNABLE):
        refusal = replan_refusal(scope.task, scope.state, scope.profile, from_index=step.index)
        if not refusal:
            failed = step_failed(step.index, step.title, str(exc), progress.spent)
            # The step's row is replaced by the revised plan's step at the same index.
            revised = replan(scope, from_index=step.index, why=str(exc), failed_title=step.title)
            return [*progress.events, failed, revised]
        failure = ReplanLimit(f"{exc}; {refusal}")
    return _failed_for_good(scope, step, failure, progress)


def _failed_for_good(scope: TickScope, step: StepRecord, failure: PermanentError, progress: _Progress) -> list[NewEvent]:
    """The step's row records the failure; the task fails, is compensated, or goes to a person."""
    task, profile, index, events = scope.task, scope.profile, step.index, progress.events
    scope.draft.step_update = StepUpdate(
        index=index,
        status=StepStatus.FAILED,
        attempts=task.step_attempts,
        error=str(failure),
        started_at=progress.started_at,
        finished_at=scope.clock(),
        transcript=tuple(progress.transcript),
    )
    if isinstance(failure, ChildFailed) and not profile.compensate_on_failure:
        # on_child_failure=fail_parent: the parent fails (undoing its effects only when the
        # profile compensates on failure, below).
        failed = step_failed(index, step.title, str(failure), progress.spent)
        reason = f"step {index + 1} failed: {failed.payload['error']}"
        return [*events, failed, ev.new_event(ev.TASK_FAILED, {"reason": reason})]
    if profile.compensate_on_failure and not isinstance(failure, NEEDS_A_PERSON):
        failed = step_failed(index, step.title, str(failure), progress.spent)
        reason = f"step {index + 1} failed for good: {failed.payload['error']}"
        return [*events, failed, *fail_task(scope.journal, scope.tools, task.id, reason)]
    # Escalated here rather than raised, so that the review rounds' events and what the
    # step spent are kept with the escalation.
    failure.usage = progress.spent.as_json()
    return [*events, escalation(str(failure), scope.state, task.step_attempts, scope.draft, scope.clock, error=failure)]


def _finished(scope: TickScope, step: StepRecord, result: StepResult, progress: _Progress) -> list[NewEvent]:
    """The step completed (and maybe the task with it), or the agent aborted the task."""
    task, index, spent, events = scope.task, step.index, progress.spent, progress.events
    output = cap(result.output, STEP_OUTPUT_MAX_CHARS)
    aborted = result.control == ABORT_TASK
    scope.draft.step_update = StepUpdate(
        index=index,
        status=StepStatus.FAILED if aborted else StepStatus.COMPLETED,
        attempts=task.step_attempts,
        result={"output": output, "model_calls": spent.model_calls, "tool_calls": spent.tool_calls},
        error=cap(result.output, EVENT_TEXT_MAX_CHARS) if aborted else "",
        started_at=progress.started_at,
        finished_at=scope.clock(),
        transcript=tuple(progress.transcript),
    )
    scope.draft.step_title, scope.draft.output = step.title, result.output
    if aborted:
        reason = f"the agent aborted the task at step {index + 1}: {cap(result.output, EVENT_TEXT_MAX_CHARS)}"
        return [*events, step_failed(index, step.title, reason, spent), *fail_task(scope.journal, scope.tools, task.id, reason)]
    completed: dict[str, JSON] = {
        "index": index,
        "title": step.title,
        "output": cap(result.output, EVENT_TEXT_MAX_CHARS),
        "attempt": task.step_attempts,
        "journal_hits": scope.journal.hits,
        "usage": spent.as_json(),
    }
    events.append(ev.new_event(ev.STEP_COMPLETED, completed))
    if index + 1 >= scope.state.step_count or result.control == FINISH_TASK:
        # The last step, or the agent says the goal is met: finish in the same commit.
        final: dict[str, JSON] = {"output": cap(result.output, EVENT_TEXT_MAX_CHARS), "steps": index + 1}
        scope.draft.result = final
        events.append(ev.new_event(ev.TASK_COMPLETED, {"result": final}))
    elif scope.profile.drift_check_every and (index + 1) % scope.profile.drift_check_every == 0:
        events.extend(drift_check(scope, step))
    return events
