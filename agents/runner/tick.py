"""The tick's commit: what frames a tick's phases, and how their events and draft become one TickCommit.

The events are folded into the state with the seqs the store will give them; that state is the
checkpoint, so checkpoint == rebuild(previous checkpoint, events) by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from agents import events as ev
from agents.events import TaskState
from agents.journal import Journal
from agents.json_value import as_list, json_list
from agents.profiles import AgentProfile, profile_from_snapshot
from agents.redaction import redact, redact_text
from agents.runner.decide import Decision, decide
from agents.runner.draft import CommitDraft, TickOutcome
from agents.runner.limits import CODE_CHANGES_LISTED
from agents.status import TaskStatus
from agents.types import JSON, EventRecord, Lease, NewEvent, StepUpdate, TaskRecord, TickCommit


def opening_events(lease: Lease, task: TaskRecord) -> list[NewEvent]:
    """A tick that took the lease over from another owner says so first."""
    if not lease.took_over_from:
        return []
    return [ev.new_event(ev.TASK_RESUMED, {"previous_owner": lease.took_over_from, "attempt": task.step_attempts})]


def task_profile(task: TaskRecord, profiles: Mapping[str, AgentProfile]) -> AgentProfile | None:
    # The profile as the task started with it; tasks created before profiles were kept with
    # them (profile_config None) use the profile as configured now.
    return profile_from_snapshot(task.profile_config) if task.profile_config else profiles.get(task.profile)


def choose(state: TaskState, task: TaskRecord, profile: AgentProfile | None) -> Decision:
    decision = decide(state, step_attempts=task.step_attempts, max_attempts=task.max_attempts, profile=profile)
    if profile is None and decision.kind in ("plan", "step"):
        return Decision("escalate", reason=f"the task's profile {task.profile!r} is not configured on this worker")
    return decision


def note_code_changes(events: list[NewEvent], journal: Journal, build_id: str, state: TaskState, *, took_over: bool) -> None:
    if journal.changes and build_id not in as_list(state.extra.get("code_changed_builds", [])):
        # Recorded answers were reused under requests this build renders differently: say so
        # once per build, ahead of what the tick did with them.
        changed: dict[str, JSON] = {
            "build": build_id,
            "count": len(journal.changes),
            "changes": json_list(journal.changes[:CODE_CHANGES_LISTED]),
        }
        events.insert(1 if took_over else 0, ev.new_event(ev.CODE_CHANGED, changed))


def _fold(state: TaskState, base: int, events: list[NewEvent]) -> None:
    for i, event in enumerate(events):
        record = EventRecord(seq=base + i + 1, type=event.type, payload=event.payload, schema_version=event.schema_version)
        ev.apply(state, record)


def _redacted(update: StepUpdate | None) -> StepUpdate | None:
    # Error texts come from anywhere (an endpoint's error body, a tool's exception): the step
    # row keeps no secret either. Events were redacted when they were built.
    if update is None:
        return None
    return replace(update, error=redact_text(update.error), result=redact(update.result), transcript=redact(update.transcript))


def seal(
    task: TaskRecord,
    state: TaskState,
    cursor: tuple[int, int],
    events: list[NewEvent],
    journal: Journal,
    draft: CommitDraft,
    decision: Decision,
    profile: AgentProfile | None,
    clock: Callable[[], datetime],
) -> tuple[TickCommit, TickOutcome]:
    """The tick's commit and outcome; `cursor` is (plan version, next step) before the tick."""
    base = task.last_event_seq
    _fold(state, base, events)
    status = state.status if state.status != TaskStatus.PENDING else TaskStatus.RUNNING
    runnable = status in TaskStatus.WORKING  # claimable and not waiting for a timer or a signal
    new_step = (state.plan_version, state.next_step) != cursor
    deadline_at: datetime | None = None
    if new_step:
        # A new step is current: its deadline starts now (the sweeper enforces it).
        minutes = profile.step_deadline_minutes if profile else 0
        deadline_at = clock() + timedelta(minutes=minutes) if minutes and runnable else None
    commit = TickCommit(
        base_event_seq=base,
        base_checkpoint_seq=task.checkpoint_seq,
        events=tuple(events),
        checkpoint_state=state.to_json(),
        status=status,
        status_reason=state.reason if status in (TaskStatus.REQUIRES_HUMAN, TaskStatus.FAILED) else "",
        result=draft.result,
        new_steps=draft.new_steps,
        plan_version=draft.plan_version,
        truncate_steps_from=draft.truncate_steps_from,
        step_update=_redacted(draft.step_update),
        runnable=runnable,
        wake_at=draft.wake_at,
        new_step_deadline=new_step,
        step_deadline_at=deadline_at,
        journal=journal.take_unwritten(),
    )
    outcome = TickOutcome(
        task_id=task.id,
        claimed=True,
        committed=True,
        status=status,
        runnable=runnable,
        decision=decision.kind,
        step_index=decision.step_index,
        step_title=draft.step_title,
        output=draft.output,
        journal_hits=journal.hits,
        step_count=state.step_count,
        spawned=draft.spawned,
    )
    return commit, outcome
