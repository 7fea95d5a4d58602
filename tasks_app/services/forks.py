"""Forks: a new task that starts from a checkpoint of another, optionally with another profile or model.

The fork gets a copy of the source's log up to the checkpoint's event seq (same seqs), its
checkpoints up to that one, the step rows as they stood then (steps done keep their results; the
rest of the plan is pending), and the journal entries recorded by then, re-keyed to the fork's id.
It then appends `task.forked` (source, checkpoint, event seq, profile, model) and is runnable: its
first tick resumes exactly where the source was at that checkpoint. A call journaled before the
checkpoint is reused (a wait it was in resumes, sub-agents it spawned are waited for, not spawned
again); a call made after it is made again by the fork. The source is not touched.

With another profile or model, the current step's calls are not copied (they were asked under
the old profile and would no longer match it): the fork runs that step again from its start.

Limits: the workspace is copied as it is now (files are not versioned, so a file the source wrote
after the checkpoint is in the fork too), and approvals are not copied (the fork asks again).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents import events as ev
from agents.errors import InvalidInput
from agents.events import TaskState
from agents.profiles import profile_to_json
from agents.status import StepStatus, TaskStatus
from tasks_app.models import AgentTask, Checkpoint, Event, Step, WorkspaceFile
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.runtime import profiles
from tasks_app.selectors.tasks import task_get
from tasks_app.services.tasks import enqueue_tick
from tasks_app.store import chain_events, event_row, stamped
from tasks_app.store.records import EVENTS

MODEL_NAME_MAX = 200


def _fork_profile(source: AgentTask, profile: str | None, model: str | None) -> tuple[str, dict[str, Any]]:
    name = source.profile
    if profile is not None:
        if profile not in profiles():
            raise InvalidInput(f"unknown profile {profile!r}; configured: {', '.join(sorted(profiles()))}")
        name, config = profile, profile_to_json(profiles()[profile])  # the profile as configured now
    elif source.profile_config is not None:
        config = dict(source.profile_config)
    elif source.profile in profiles():
        config = profile_to_json(profiles()[source.profile])
    else:
        raise InvalidInput(f"the source's profile {source.profile!r} is not configured here; name one with --profile")
    if model is not None:
        model = model.strip()
        if not model or len(model) > MODEL_NAME_MAX:
            raise InvalidInput(f"a model name is 1 to {MODEL_NAME_MAX} characters")
        config = {**config, "model": model}
    return name, config


def _step_rows(source: AgentTask, fork: AgentTask, state: TaskState, plan_event: Event | None) -> list[Step]:
    """The plan's rows as they stood at the checkpoint: done steps as they are, the rest pending."""
    rows = []
    for step in source.steps.filter(index__lt=state.next_step).order_by("index"):
        step.pk, step.task = None, fork
        rows.append(step)
    # Every step from next_step on is in the latest plan event (a revision starts at or below it),
    # which later re-plans of the source may have replaced in its rows.
    specs = plan_event.payload["steps"] if plan_event is not None else []
    for spec in specs:
        index = int(spec["index"])
        if index < state.next_step:
            continue
        rows.append(
            Step(
                task=fork,
                index=index,
                plan_version=state.plan_version,
                title=spec["title"],
                instructions=spec.get("instructions", ""),
                depends_on=spec.get("depends_on", []),
                requires_approval=bool(spec.get("needs_approval")),
                expected_minutes=spec.get("expected_minutes"),
                status=StepStatus.PENDING,
                # The current step may have journaled calls (a wait, an approval): attempts > 0 makes
                # the fork's first claim look them up instead of assuming nothing was recorded.
                attempts=1 if index == state.next_step else 0,
            )
        )
    return rows


def _journal_rows(
    source: AgentTask,
    fork: AgentTask,
    checkpoint: Checkpoint,
    state: TaskState,
    waits: dict[str, dict[str, Any]],
    rerun_step: bool,
) -> list[JournalRow]:
    """The source's journal as it was at the checkpoint, re-keyed to the fork."""
    prefix = f"{source.pk}/"
    current = re.compile(rf"^{re.escape(prefix)}p{state.plan_version}/s{state.next_step}(\D|$)")
    rows = []
    for entry in JournalRow.objects.filter(task=source, created_at__lte=checkpoint.created_at).order_by("id"):
        if rerun_step and current.match(entry.key):
            continue
        status, result, completed_at = entry.status, entry.result, entry.completed_at
        if completed_at is not None and completed_at > checkpoint.created_at:
            # Completed after the checkpoint: a wait it was in goes back to waiting (its spec is on
            # its task.waiting event); any other call is made again by the fork.
            if entry.key not in waits:
                continue
            status, result, completed_at = JournalRow.Status.STARTED, {"wait": waits[entry.key]}, None
        rows.append(
            JournalRow(
                key=f"{fork.pk}/{entry.key[len(prefix) :]}" if entry.key.startswith(prefix) else f"{fork.pk}/{entry.key}",
                task=fork,
                kind=entry.kind,
                name=entry.name,
                request_digest=entry.request_digest,
                status=status,
                result=result,
                completed_at=completed_at,
            )
        )
    return rows


def agent_task_fork(
    *,
    source_task_id: str,
    checkpoint_seq: int,
    profile: str | None = None,
    model: str | None = None,
    owner: Any = None,
) -> AgentTask:
    """Create a runnable task from checkpoint `checkpoint_seq` of another; the source is untouched.

    The fork belongs to `owner` (a user: the API caller who forked it), else to the source's owner."""
    source = task_get(task_id=source_task_id)
    checkpoint = Checkpoint.objects.filter(task=source, seq=checkpoint_seq).first()
    if checkpoint is None:
        have = list(Checkpoint.objects.filter(task=source).order_by("seq").values_list("seq", flat=True))
        span = f"1 to {have[-1]}" if have else "none yet"
        raise InvalidInput(f"task {source.pk} has no checkpoint {checkpoint_seq} (its checkpoints: {span})")
    state = TaskState.from_json(dict(checkpoint.state))
    if state.status in TaskStatus.TERMINAL:
        raise InvalidInput(f"checkpoint {checkpoint_seq} is where the task ended ({state.status}): nothing is left to run")
    name, config = _fork_profile(source, profile, model)
    events = list(Event.objects.filter(task=source, seq__lte=checkpoint.event_seq).order_by("seq"))
    waits = {
        e.payload["key"]: {k: v for k, v in e.payload.items() if k not in ("index", "key")}
        for e in events
        if e.type == ev.TASK_WAITING and "key" in e.payload
    }
    plan_event = next((e for e in events if e.seq == state.plan_event_seq), None)
    forked = ev.new_event(
        ev.TASK_FORKED,
        {
            "source": str(source.pk),
            "checkpoint_seq": checkpoint.seq,
            "event_seq": checkpoint.event_seq,
            "profile": name,
            "model": model or "",
        },
    )
    now = timezone.now()
    with transaction.atomic():
        fork = AgentTask.objects.create(
            id=uuid.uuid4(),
            goal=source.goal,
            context=source.context,
            owner=owner if owner is not None else source.owner,
            profile=name,
            profile_config=config,
            status=TaskStatus.RUNNING if state.plan_version else TaskStatus.PENDING,
            max_steps=source.max_steps,
            max_attempts=source.max_attempts,
            next_run_at=now,
            enqueued_at=now,
            progress_at=now,
            last_event_seq=checkpoint.event_seq + 1,
            checkpoint_seq=checkpoint.seq,
            steps_completed=state.next_step,
            model_calls=state.model_calls,
            tool_calls=state.tool_calls,
            prompt_tokens=state.prompt_tokens,
            completion_tokens=state.completion_tokens,
            cost_usd=state.cost_usd,
        )
        # The copied log is the fork's own: its hash chain covers the fork's id, so it is chained anew
        # (agents/audit.py); times and workers are kept as they were.
        copied = [EVENTS.from_row(e) for e in events]
        copied.append(stamped(forked, seq=checkpoint.event_seq + 1, worker="operator", created_at=now))
        chained = chain_events(str(fork.pk), "", copied)
        Event.objects.bulk_create([event_row(fork.pk, e) for e in chained])
        AgentTask.objects.filter(pk=fork.pk).update(last_event_hash=chained[-1].hash)
        Checkpoint.objects.bulk_create(
            [
                Checkpoint(task=fork, seq=c.seq, event_seq=c.event_seq, state=c.state)
                for c in Checkpoint.objects.filter(task=source, seq__lte=checkpoint.seq).order_by("seq")
            ]
        )
        Step.objects.bulk_create(_step_rows(source, fork, state, plan_event))
        rerun_step = profile is not None or model is not None
        JournalRow.objects.bulk_create(_journal_rows(source, fork, checkpoint, state, waits, rerun_step))
        WorkspaceFile.objects.bulk_create(
            [WorkspaceFile(task=fork, path=f.path, content=f.content) for f in WorkspaceFile.objects.filter(task=source)]
        )
        enqueue_tick(str(fork.pk))
    return fork


def fork_source(task: AgentTask) -> tuple[str, int] | None:
    """(source id, checkpoint seq) if the task is a fork (its latest task.forked: earlier ones are its source's)."""
    event = Event.objects.filter(task=task, type=ev.TASK_FORKED).order_by("-seq").first()
    return (event.payload["source"], int(event.payload["checkpoint_seq"])) if event else None
