"""Event types, their schema versions, and the reducer that rebuilds a task's state from them.

The reducer is the only code that interprets the log, so a resumed worker rebuilds exactly the
state a checkpoint saved: `rebuild(checkpoint, events_after)` equals the next checkpoint's state.
State is deliberately small (counters and references such as the plan's event seq), never a copy
of the history, so a checkpoint costs the same at step 10 and step 1000.

Every event carries a schema version. When a payload's shape changes, bump its version here and
teach `_upcast` to read the old shape: old tasks keep replaying.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, cast

from agents.errors import EventSchemaError as EventSchemaError  # re-exported: defined in agents.errors
from agents.json_value import as_int, as_list, as_object, as_scalar
from agents.redaction import redact
from agents.status import TaskStatus, TaskStatusName
from agents.types import JSON, CheckpointRecord, EventRecord, NewEvent, NewTask

TASK_CREATED = "task.created"
TASK_RESUMED = "task.resumed"  # a tick took over a lease that expired before its owner committed
PLAN_CREATED = "plan.created"
PLAN_REVISED = "plan.revised"  # a re-plan: the steps from `from_index` on are replaced
STEP_REVIEWED = "step.reviewed"  # self-review of a step's result (approved or the critique)
STEP_COMPLETED = "step.completed"
STEP_FAILED = "step.failed"
TASK_COMPLETED = "task.completed"
TASK_ESCALATED = "task.escalated"
TASK_FAILED = "task.failed"
# Waiting and time (issue 4). Events appended outside a tick (operator, signal, sweeper) bump the
# log, so a tick in flight conflicts at commit and redoes on the new state.
TASK_WAITING = "task.waiting"  # a step waits for a timer or a signal: {index, key, kind, deadline, names, mode}
SIGNAL_RECEIVED = "signal.received"  # {name, signal_id}; the payload sits in the inbox until a wait consumes it
TASK_STALLED = "task.stalled"  # the sweeper found an expired lease: {previous_owner}
TASK_CANCELLED = "task.cancelled"  # {reason, by}
TASK_PAUSED = "task.paused"  # {reason, by}
TASK_CONTINUED = "task.continued"  # an operator resumed a paused or escalated task: {from_status, by}
DEADLINE_EXCEEDED = "task.deadline_exceeded"  # {kind: "task" or "step", deadline}
TASK_STUCK = "task.stuck"  # no progress for too long (a flag for operators): {since}
TASK_COMPENSATED = "task.compensated"  # side effects undone (saga): {undone, failed, unknown}
APPROVAL_DECIDED = "approval.decided"  # a person decided: {approval_id, decision, by, comment, edited_arguments}
# A step's older messages were summarised to fit the prompt budget (agents/compaction.py):
# {step_index, scope, messages: {from, to}, events: {from, to}, summary_key, summary, tokens_before, tokens_after, budget}
CONTEXT_COMPACTED = "context.compacted"
# Sub-agents and forks (issue 6).
CHILD_ENDED = "child.ended"  # a sub-agent ended (the doorbell, agents/subtasks.py): {child, status}
TASK_FORKED = "task.forked"  # this task was forked from another's checkpoint: {source, checkpoint_seq, event_seq, profile, model}
# A resumed step found recorded answers under requests this build renders differently (a deploy
# changed a prompt, a tool, a schema) and continued from them: {build, changes: [{key, kind, recorded, now}]}
CODE_CHANGED = "code.changed"

SCHEMA_VERSIONS: dict[str, int] = {
    TASK_CREATED: 1,
    TASK_RESUMED: 1,
    PLAN_CREATED: 1,
    PLAN_REVISED: 1,
    STEP_REVIEWED: 1,
    STEP_COMPLETED: 1,
    STEP_FAILED: 1,
    TASK_COMPLETED: 1,
    TASK_ESCALATED: 1,
    TASK_FAILED: 1,
    TASK_WAITING: 1,
    SIGNAL_RECEIVED: 1,
    TASK_STALLED: 1,
    TASK_CANCELLED: 1,
    TASK_PAUSED: 1,
    TASK_CONTINUED: 1,
    DEADLINE_EXCEEDED: 1,
    TASK_STUCK: 1,
    TASK_COMPENSATED: 1,
    APPROVAL_DECIDED: 1,
    CONTEXT_COMPACTED: 1,
    CHILD_ENDED: 1,
    TASK_FORKED: 1,
    CODE_CHANGED: 1,
}

STATE_VERSION = 1
RECENT_STEPS = 3
RECENT_SUMMARY_CHARS = 400


def created_payload(new: NewTask) -> dict[str, JSON]:
    """task.created: the goal and the profile, with the profile's settings as the task starts with them."""
    payload: dict[str, JSON] = {"goal": new.goal, "profile": new.profile}
    if new.profile_config is not None:
        payload["profile_config"] = new.profile_config
    return payload


def new_event(type_: str, payload: dict[str, JSON]) -> NewEvent:
    if type_ not in SCHEMA_VERSIONS:
        raise EventSchemaError(f"unknown event type {type_!r}")
    # Every event is built here, whichever store appends it: no secret enters the log.
    return NewEvent(type=type_, payload=redact(payload), schema_version=SCHEMA_VERSIONS[type_])


@dataclass
class TaskState:
    """The in-memory state of one task: what a checkpoint stores and the reducer maintains."""

    status: TaskStatusName = TaskStatus.PENDING
    reason: str = ""
    plan_version: int = 0
    plan_event_seq: int = 0
    step_count: int = 0
    next_step: int = 0  # steps run in index order; everything below this index is done
    model_calls: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    steps_run: int = 0  # step executions that ended (completed or failed), for the step budget
    replans: int = 0
    # The last few completed steps, summarised: the "earlier steps" part of the next step's context.
    # Bounded (RECENT_STEPS entries of RECENT_SUMMARY_CHARS), so the checkpoint stays small.
    recent: list[dict[str, JSON]] = field(default_factory=list)
    last_event_seq: int = 0
    version: int = STATE_VERSION
    extra: dict[str, JSON] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSON]:
        # What dataclasses.asdict gives, built directly: asdict's generic deep copy was a tenth of
        # the harness's own time on a no-op tick. The lists and dicts are copied, never shared.
        data: dict[str, JSON] = {f.name: getattr(self, f.name) for f in _STATE_FIELDS}
        data["recent"] = [dict(r) for r in self.recent]
        data["extra"] = copy.deepcopy(self.extra)
        return data

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> TaskState:
        if as_int(data.get("version", 1)) > STATE_VERSION:
            raise EventSchemaError(f"checkpoint state version {data['version']} is newer than this code")
        # The fields as to_json wrote them; a field that is not the dataclass's raises TypeError here.
        return cls(**cast("dict[str, Any]", data))


_STATE_FIELDS = fields(TaskState)


def _upcast(event: EventRecord) -> dict[str, JSON]:
    known = SCHEMA_VERSIONS.get(event.type)
    if known is None:
        raise EventSchemaError(f"event {event.seq} has unknown type {event.type!r}")
    if event.schema_version > known:
        raise EventSchemaError(
            f"event {event.seq} ({event.type}) has schema v{event.schema_version}; this code reads up to v{known}"
        )
    return event.payload


def _add_usage(state: TaskState, payload: dict[str, JSON]) -> None:
    usage = as_object(payload.get("usage", {}))
    state.model_calls += int(as_scalar(usage.get("model_calls", 0)))
    state.tool_calls += int(as_scalar(usage.get("tool_calls", 0)))
    state.prompt_tokens += int(as_scalar(usage.get("prompt_tokens", 0)))
    state.completion_tokens += int(as_scalar(usage.get("completion_tokens", 0)))
    # Rounded so that a checkpoint and a replay of the log agree to the last digit.
    state.cost_usd = round(state.cost_usd + float(as_scalar(usage.get("cost_usd", 0.0))), 8)
    # The step runs of sub-agents whose usage a step took on (agents/subtasks.py) count as the parent's.
    state.steps_run += int(as_scalar(usage.get("child_steps", 0)))


def _woken(state: TaskState) -> None:
    """A step that waited has moved on: the task is running again."""
    if state.status == TaskStatus.WAITING:
        state.status = TaskStatus.RUNNING


def apply(state: TaskState, event: EventRecord) -> None:
    """Fold one event into the state. Pure in effect: the same events always give the same state."""
    payload = _upcast(event)
    if event.seq != state.last_event_seq + 1:
        raise EventSchemaError(f"event seq {event.seq} follows {state.last_event_seq}: the log has a gap")
    state.last_event_seq = event.seq
    if event.type == PLAN_CREATED:
        state.plan_version = int(as_scalar(payload["version"]))
        state.plan_event_seq = event.seq
        state.step_count = len(as_list(payload["steps"]))
        state.next_step = 0
        state.status = TaskStatus.RUNNING
        _add_usage(state, payload)
    elif event.type == PLAN_REVISED:
        _woken(state)
        state.plan_version = int(as_scalar(payload["version"]))
        state.plan_event_seq = event.seq
        state.next_step = int(as_scalar(payload["from_index"]))
        state.step_count = state.next_step + len(as_list(payload["steps"]))
        state.replans += 1
        _add_usage(state, payload)
    elif event.type == TASK_WAITING:
        state.status = TaskStatus.WAITING
    elif event.type == TASK_CANCELLED:
        state.status = TaskStatus.CANCELLED
        state.reason = str(payload.get("reason", ""))
    elif event.type == TASK_PAUSED:
        state.status = TaskStatus.PAUSED
        state.reason = str(payload.get("reason", ""))
    elif event.type in (TASK_CONTINUED, APPROVAL_DECIDED):
        state.status = TaskStatus.RUNNING
        state.reason = ""
    elif event.type == DEADLINE_EXCEEDED:
        state.status = TaskStatus.FAILED if payload.get("kind") == "task" else TaskStatus.REQUIRES_HUMAN
        state.reason = str(payload.get("reason", ""))
    elif event.type == STEP_COMPLETED:
        _woken(state)
        state.next_step = int(as_scalar(payload["index"])) + 1
        state.steps_run += 1
        _add_usage(state, payload)
        summary = str(payload.get("output", ""))[:RECENT_SUMMARY_CHARS]
        state.recent = [*state.recent, {"index": payload["index"], "title": payload.get("title", ""), "summary": summary}]
        state.recent = state.recent[-RECENT_STEPS:]
    elif event.type == STEP_REVIEWED:
        _add_usage(state, payload)
    elif event.type == TASK_COMPLETED:
        state.status = TaskStatus.COMPLETED
    elif event.type == TASK_ESCALATED:
        state.status = TaskStatus.REQUIRES_HUMAN
        state.reason = str(payload["reason"])
        _add_usage(state, payload)
        if payload.get("children_key"):
            # A person sees the sub-agents' failures; when they resume, the step goes on with them.
            acknowledged = as_list(state.extra.setdefault("children_acknowledged", []))
            acknowledged.append(payload["children_key"])
    elif event.type in (TASK_FAILED, STEP_FAILED):
        if event.type == TASK_FAILED:
            state.status = TaskStatus.FAILED
        else:
            _woken(state)
            state.steps_run += 1
            _add_usage(state, payload)
        state.reason = str(payload.get("reason") or payload.get("error", ""))
    elif event.type == TASK_CREATED:
        state.status = TaskStatus.PENDING
    elif event.type == CODE_CHANGED:
        # Noted once per build: a later tick of the same build replaying the same keys says nothing new.
        noted = as_list(state.extra.setdefault("code_changed_builds", []))
        if payload.get("build", "") not in noted:
            noted.append(payload.get("build", ""))
    elif event.type == TASK_FORKED and state.status not in TaskStatus.TERMINAL:
        # A fork starts running from the copied checkpoint (a wait it was in is re-evaluated).
        state.status = TaskStatus.RUNNING if state.plan_version else TaskStatus.PENDING
        state.reason = ""
    # TASK_RESUMED, SIGNAL_RECEIVED, TASK_STALLED, TASK_STUCK, TASK_COMPENSATED, CHILD_ENDED and
    # CONTEXT_COMPACTED are informational.


def rebuild(checkpoint: CheckpointRecord | None, events: tuple[EventRecord, ...] | list[EventRecord]) -> TaskState:
    state = TaskState.from_json(dict(checkpoint.state)) if checkpoint else TaskState()
    for event in events:
        apply(state, event)
    return state
