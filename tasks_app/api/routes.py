"""The endpoints: each one finds the caller's object (404 if it is not theirs) and calls one service.

Reads come from tasks_app/selectors/; `task_out` and `approval_out` are the output schemas over them.

Ownership: a superuser sees every task; anyone else sees only the tasks whose owner they are
(tasks created through the API by them). Tasks from the CLI, the admin or a schedule have no owner,
so only superusers reach them here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field

from agents.errors import ApprovalNotFound, RateLimited
from tasks_app.api import schemas as s
from tasks_app.api.auth import rate_key
from tasks_app.conf import settings
from tasks_app.models import AgentTask, Approval
from tasks_app.selectors.approvals import approval_get_for_owner, approval_list_latest_for_task
from tasks_app.selectors.branches import task_branches
from tasks_app.selectors.history import checkpoint_page_after, event_page_after
from tasks_app.selectors.tasks import task_get_for_owner, task_ids_visible_to, task_list_for_owner
from tasks_app.selectors.usage import task_usage
from tasks_app.services.approvals import approval_decide
from tasks_app.services.control import agent_task_cancel, agent_task_pause, agent_task_resume, signal_send
from tasks_app.services.forks import agent_task_fork
from tasks_app.services.rate_limits import rate_limit_hit
from tasks_app.services.tasks import agent_task_create

router = Router()

# Bounded so that an out-of-range id is a 422, not a database overflow error.
ApprovalId = Annotated[int, Path(ge=1, le=2**63 - 1)]

PAGE_CAP = settings.HORIZON_API_MAX_PAGE_SIZE
# What every authenticated operation may answer besides its success.
COMMON: dict[int, Any] = {400: s.Error, 401: s.Error, 403: s.Error, 404: s.Error, 413: s.Error, 422: s.Error}


def _user(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _task(request: HttpRequest, task_id: str) -> AgentTask:
    return task_get_for_owner(user=_user(request), task_id=task_id)  # TaskNotFound: a 404


def _approval(request: HttpRequest, approval_id: int) -> Approval:
    approval = approval_get_for_owner(user=_user(request), approval_id=approval_id)
    if approval is None:
        raise ApprovalNotFound(approval_id)
    return approval


def task_out(task: AgentTask) -> dict[str, Any]:
    return {
        "id": str(task.pk),
        "goal": task.goal,
        "status": task.status,
        "status_reason": task.status_reason,
        "result": task.result,
        "profile": task.profile,
        "parent_id": str(task.parent_id) if task.parent_id else None,
        "callback_url": task.callback_url,
        "deadline": task.deadline,
        "last_event_seq": task.last_event_seq,
        "resume_count": task.resume_count,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "usage": task_usage(task),
    }


def approval_out(a: Approval) -> dict[str, Any]:
    return {
        "id": a.pk,
        "task_id": str(a.task_id),
        "kind": a.kind,
        "status": a.status,
        "step_index": a.step_index,
        "step_number": a.step_index + 1,
        "action": a.action,
        "digest": a.digest,
        "requested_at": a.requested_at,
        "decided_by": a.decided_by.get_username() if a.decided_by else "",
        "decided_at": a.decided_at,
        "comment": a.comment,
        "edited_arguments": a.edited_arguments,
    }


# --- tasks ---------------------------------------------------------------------------------------


def _count_creation(request: HttpRequest) -> None:
    """Creating a task (a goal or a fork) counts against the caller's creation rate limit."""
    retry_after = rate_limit_hit(
        key=rate_key(request), limit=settings.HORIZON_API_CREATE_LIMIT, window_seconds=settings.HORIZON_API_CREATE_WINDOW_SECONDS
    )
    if retry_after is not None:
        raise RateLimited(retry_after)


@router.post("/tasks", response={201: s.TaskOut, 429: s.Error, **COMMON}, tags=["tasks"], summary="Create a goal")
def create_task(request: HttpRequest, body: s.TaskCreate) -> Status[dict[str, Any]]:
    _count_creation(request)
    task = agent_task_create(
        goal=body.goal,
        context=body.context,
        profile=body.profile,
        max_steps=body.max_steps,
        max_attempts=body.max_attempts,
        deadline_hours=body.deadline_hours,
        owner=_user(request),
        callback_url=body.callback_url,
    )
    return Status(201, task_out(task))


class TaskFilter(Schema):
    status: s.TaskStatusName | None = None
    limit: int = Field(50, ge=1, le=PAGE_CAP)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get("/tasks", response={200: s.TaskPage, **COMMON}, tags=["tasks"], summary="List your tasks, newest first")
def list_tasks(request: HttpRequest, filters: Query[TaskFilter]) -> dict[str, Any]:
    tasks = task_list_for_owner(user=_user(request), status=filters.status)
    rows = list(tasks[filters.offset : filters.offset + filters.limit + 1])  # one more: is there a next page?
    more = len(rows) > filters.limit
    return {
        "items": [task_out(t) for t in rows[: filters.limit]],
        "limit": filters.limit,
        "offset": filters.offset,
        "next_offset": filters.offset + filters.limit if more else None,
    }


@router.get("/tasks/{task_id}", response={200: s.TaskOut, **COMMON}, tags=["tasks"], summary="A task: status, result, usage")
def get_task(request: HttpRequest, task_id: str) -> dict[str, Any]:
    return task_out(_task(request, task_id))


class SeqPage(Schema):
    after_seq: int = Field(0, ge=0, le=2**62, description="return entries after this sequence number")
    limit: int = Field(100, ge=1, le=PAGE_CAP)


@router.get("/tasks/{task_id}/events", response={200: s.EventPage, **COMMON}, tags=["tasks"], summary="The task's events")
def list_events(request: HttpRequest, task_id: str, page: Query[SeqPage]) -> dict[str, Any]:
    task = _task(request, task_id)
    items, more = event_page_after(task=task, after_seq=page.after_seq, limit=page.limit)
    return {
        "items": [
            {"seq": e.seq, "type": e.type, "payload": e.payload, "worker": e.worker, "created_at": e.created_at} for e in items
        ],
        "next_after_seq": items[-1].seq if items else page.after_seq,
        "more": more,
    }


@router.get(
    "/tasks/{task_id}/checkpoints", response={200: s.CheckpointPage, **COMMON}, tags=["tasks"], summary="The task's checkpoints"
)
def list_checkpoints(request: HttpRequest, task_id: str, page: Query[SeqPage]) -> dict[str, Any]:
    task = _task(request, task_id)
    items, more = checkpoint_page_after(task=task, after_seq=page.after_seq, limit=page.limit)
    return {
        "items": [{"seq": c.seq, "event_seq": c.event_seq, "state": c.state, "created_at": c.created_at} for c in items],
        "next_after_seq": items[-1].seq if items else page.after_seq,
        "more": more,
    }


@router.post(
    "/tasks/{task_id}/fork",
    response={201: s.TaskOut, 429: s.Error, **COMMON},
    tags=["tasks"],
    summary="Fork a task from one of its checkpoints (optionally with another profile or model)",
)
def fork_task(request: HttpRequest, task_id: str, body: s.ForkIn) -> Status[dict[str, Any]]:
    task = _task(request, task_id)
    _count_creation(request)
    fork = agent_task_fork(
        source_task_id=str(task.pk),
        checkpoint_seq=body.checkpoint_seq,
        profile=body.profile,
        model=body.model,
        owner=_user(request),
    )
    return Status(201, task_out(fork))


@router.get(
    "/tasks/{task_id}/branches",
    response={200: s.BranchList, **COMMON},
    tags=["tasks"],
    summary="The task and its forks (and theirs): outcome and cost per branch",
)
def list_branches(request: HttpRequest, task_id: str) -> dict[str, Any]:
    task = _task(request, task_id)
    branches = task_branches(task_id=str(task.pk))
    # Someone else's fork of this task is theirs: it is left out, like any task that is not the caller's.
    visible = task_ids_visible_to(user=_user(request), task_ids=[b.task_id for b in branches])
    return {"items": [b.as_json() for b in branches if b.task_id in visible]}


@router.post("/tasks/{task_id}/signals", response={202: s.SignalOut, **COMMON}, tags=["control"], summary="Send a signal")
def send_signal(request: HttpRequest, task_id: str, body: s.SignalIn) -> Status[dict[str, Any]]:
    task = _task(request, task_id)
    signal = signal_send(task_id=str(task.pk), name=body.name, payload=body.payload)
    return Status(202, {"id": signal.id, "name": signal.name, "task_id": str(task.pk)})


def _by(request: HttpRequest) -> str:
    return f"api:{_user(request).get_username()}"


def _control(request: HttpRequest, task_id: str, change: Callable[..., object], **fields: Any) -> dict[str, Any]:
    """Apply one operator change (a control service) to the caller's task; answer with the task as it is now."""
    task = _task(request, task_id)
    change(task_id=str(task.pk), by=_by(request), **fields)
    return task_out(_task(request, task_id))


@router.post("/tasks/{task_id}/cancel", response={200: s.TaskOut, **COMMON}, tags=["control"], summary="Cancel a task")
def cancel_task(request: HttpRequest, task_id: str, body: s.Reason) -> dict[str, Any]:
    return _control(request, task_id, agent_task_cancel, reason=body.reason)


@router.post("/tasks/{task_id}/pause", response={200: s.TaskOut, **COMMON}, tags=["control"], summary="Pause a task")
def pause_task(request: HttpRequest, task_id: str, body: s.Reason) -> dict[str, Any]:
    return _control(request, task_id, agent_task_pause, reason=body.reason)


@router.post(
    "/tasks/{task_id}/resume",
    response={200: s.TaskOut, **COMMON},
    tags=["control"],
    summary="Resume a paused task, or retry one that waits for a person",
)
def resume_task(request: HttpRequest, task_id: str) -> dict[str, Any]:
    return _control(request, task_id, agent_task_resume)


# --- approvals -----------------------------------------------------------------------------------


@router.get(
    "/tasks/{task_id}/approvals", response={200: s.ApprovalList, **COMMON}, tags=["approvals"], summary="The task's approvals"
)
def list_approvals(request: HttpRequest, task_id: str) -> dict[str, Any]:
    task = _task(request, task_id)
    # Bounded by the task's steps and tool calls, each asking at most once per key.
    rows = approval_list_latest_for_task(task=task, limit=PAGE_CAP)
    return {"items": [approval_out(a) for a in rows]}


@router.get("/approvals/{approval_id}", response={200: s.ApprovalOut, **COMMON}, tags=["approvals"], summary="An approval")
def get_approval(request: HttpRequest, approval_id: ApprovalId) -> dict[str, Any]:
    return approval_out(_approval(request, approval_id))


def _decide(request: HttpRequest, approval_id: int, *, approve: bool, comment: str, edited: Any = None) -> dict[str, Any]:
    approval = _approval(request, approval_id)
    approval_decide(approval_id=approval.pk, user=_user(request), approve=approve, comment=comment, edited_arguments=edited)
    return approval_out(_approval(request, approval_id))


@router.post(
    "/approvals/{approval_id}/approve", response={200: s.ApprovalOut, **COMMON}, tags=["approvals"], summary="Approve as proposed"
)
def approve(request: HttpRequest, approval_id: ApprovalId, body: s.Decision) -> dict[str, Any]:
    return _decide(request, approval_id, approve=True, comment=body.comment)


@router.post("/approvals/{approval_id}/reject", response={200: s.ApprovalOut, **COMMON}, tags=["approvals"], summary="Reject")
def reject(request: HttpRequest, approval_id: ApprovalId, body: s.Decision) -> dict[str, Any]:
    return _decide(request, approval_id, approve=False, comment=body.comment)


@router.post(
    "/approvals/{approval_id}/edit",
    response={200: s.ApprovalOut, **COMMON},
    tags=["approvals"],
    summary="Approve a tool call with edited arguments",
)
def edit(request: HttpRequest, approval_id: ApprovalId, body: s.EditDecision) -> dict[str, Any]:
    return _decide(request, approval_id, approve=True, comment=body.comment, edited=body.arguments)
