"""Request and response shapes. Field limits here are the advertised ones; the services re-check
everything (goal and context sizes, profiles, budgets, signal and comment sizes) and answer 400."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from agents.runner import GOAL_MAX_CHARS
from agents.status import TaskStatusName as TaskStatusName  # the API schema enumerates the same states
from tasks_app.services.approvals import COMMENT_MAX
from tasks_app.services.control import REASON_MAX, SIGNAL_NAME_MAX
from tasks_app.services.webhooks import CALLBACK_URL_MAX


class StrictSchema(Schema):
    """A request body: a field it does not declare is refused (400 naming it), never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Error(Schema):
    detail: str
    errors: list[dict[str, Any]] | None = None


class TaskCreate(StrictSchema):
    goal: str = Field(..., min_length=1, max_length=GOAL_MAX_CHARS, description="what the agent should achieve")
    context: dict[str, Any] = Field(default_factory=dict, description="a JSON object given to the agent (64 KiB at most)")
    profile: str = Field("default", max_length=100)
    max_steps: int | None = Field(None, ge=1, le=10_000)
    max_attempts: int | None = Field(None, ge=1, le=100)
    deadline_hours: float | None = Field(None, gt=0, le=24 * 365 * 5)
    callback_url: str | None = Field(
        None, max_length=CALLBACK_URL_MAX, description="notified (signed POST) when the task completes, fails or needs a person"
    )


class Usage(Schema):
    steps_completed: int
    max_steps: int
    model_calls: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class TaskOut(Schema):
    id: str
    goal: str
    status: TaskStatusName
    status_reason: str
    result: Any = None
    profile: str
    parent_id: str | None
    callback_url: str
    deadline: datetime | None
    last_event_seq: int
    resume_count: int
    created_at: datetime
    updated_at: datetime
    usage: Usage


class TaskPage(Schema):
    items: list[TaskOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="the offset of the next page; null on the last one")


class EventOut(Schema):
    seq: int
    type: str
    payload: Any
    worker: str
    created_at: datetime


class EventPage(Schema):
    items: list[EventOut]
    next_after_seq: int = Field(description="pass as after_seq to read on")
    more: bool


class CheckpointOut(Schema):
    seq: int
    event_seq: int
    state: dict[str, Any]
    created_at: datetime


class CheckpointPage(Schema):
    items: list[CheckpointOut]
    next_after_seq: int
    more: bool


class SignalIn(StrictSchema):
    name: str = Field(..., min_length=1, max_length=SIGNAL_NAME_MAX)
    payload: Any = None


class SignalOut(Schema):
    id: int
    name: str
    task_id: str


class ApprovalOut(Schema):
    id: int
    task_id: str
    kind: str
    status: str
    step_index: int = Field(description="0-based, as stored and in event payloads")
    step_number: int = Field(description="1-based: the step number every page and command shows (step_index + 1)")
    action: dict[str, Any]
    digest: str
    requested_at: datetime
    decided_by: str
    decided_at: datetime | None
    comment: str
    edited_arguments: dict[str, Any] | None


class ApprovalList(Schema):
    items: list[ApprovalOut]


class Decision(StrictSchema):
    comment: str = Field("", max_length=COMMENT_MAX)


class EditDecision(StrictSchema):
    arguments: dict[str, Any] = Field(..., description="the tool call's arguments to run instead (checked against its schema)")
    comment: str = Field("", max_length=COMMENT_MAX)


class Reason(StrictSchema):
    reason: str = Field("", max_length=REASON_MAX)


class ForkIn(StrictSchema):
    checkpoint_seq: int = Field(..., ge=1, le=2**62, description="the source task's checkpoint to start from")
    profile: str | None = Field(None, min_length=1, max_length=100, description="another profile for the fork")
    model: str | None = Field(None, min_length=1, max_length=200, description="another model for the fork")


class BranchOut(Schema):
    task_id: str
    depth: int
    source_id: str | None
    checkpoint_seq: int | None
    profile: str
    model: str
    status: TaskStatusName
    reason: str
    summary: str
    steps_completed: int
    steps_run: int
    tokens: int
    cost_usd: float
    created_at: datetime | None


class BranchList(Schema):
    items: list[BranchOut]
