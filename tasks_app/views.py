"""The task timeline: one page per task (every plan version with each step's tool calls, approvals,
usage, events, checkpoints), the JSON it polls, and one step's transcript.

All are read-only and served inside the admin (AgentTaskAdmin.get_urls wraps them in
`admin_site.admin_view`, so only logged-in staff with the view permission reach them). The page
renders everything once; its inline script then asks `timeline.json?after_seq=N&after_checkpoint=M`
every two seconds. Only what is new comes back: the events after N and, when there are any, the plan,
the approvals and the checkpoints after M; a quiet poll carries the task row alone.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from agents.errors import TaskNotFound
from agents.status import TaskStatus
from tasks_app.models import AgentTask, Approval, Checkpoint, Event
from tasks_app.readable import arguments_code, event_text, json_or_text, step_number, value_text, when_text
from tasks_app.selectors.approvals import approval_list_for_task
from tasks_app.selectors.history import checkpoint_list_after, event_list_latest, event_page_after
from tasks_app.selectors.tasks import step_get_by_number, task_get
from tasks_app.selectors.timeline import timeline_steps
from tasks_app.selectors.usage import task_usage
from tasks_app.services.approvals import PERMISSION as DECIDE_PERMISSION

# The page shows at most this many events at first (the latest ones); the JSON endpoint hands out
# at most EVENTS_PER_POLL per request, and the script asks again at once while `more` is true.
EVENTS_ON_PAGE = 1000
EVENTS_PER_POLL = 500
PAYLOAD_SUMMARY_CHARS = 300


def _summary(value: Any, limit: int = PAYLOAD_SUMMARY_CHARS) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def proposed_action_text(approval: Approval) -> dict[str, str]:
    """What a person reads about a proposed action: a title and a readable body."""
    action = approval.action if isinstance(approval.action, dict) else {}
    if approval.kind == "tool":
        arguments = action.get("arguments", {})
        return {
            "title": f"call {action.get('tool', '?')}",
            "body": json.dumps(arguments, indent=2, ensure_ascii=False, sort_keys=True),
            # What a person reads: each argument with its text as written (code keeps its lines).
            "code": arguments_code(arguments),
        }
    body = str(action.get("instructions", ""))
    return {"title": str(action.get("step", "?")), "body": body, "code": body}


def _task(task: AgentTask) -> dict[str, Any]:
    return {
        "id": str(task.pk),
        "goal": task.goal,
        "status": task.status,
        "status_reason": task.status_reason,
        "terminal": task.status in TaskStatus.TERMINAL,
        "profile": task.profile,
        "created_at": when_text(task.created_at),
        "updated_at": when_text(task.updated_at),
        "lease_owner": task.lease_owner or "",
        "resume_count": task.resume_count,
        "builds": task.builds.split(),  # the builds that ticked the task, oldest first (docs/deploys.md)
        "last_event_seq": task.last_event_seq,
        # The page shows the cost as a fixed 4-decimal string; the API keeps the number.
        "usage": {**task_usage(task), "cost_usd": f"{task.cost_usd:.4f}"},
    }


def _event(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": event.type,
        "created_at": when_text(event.created_at),
        "worker": event.worker,
        "text": event_text(event.type, event.payload),
        "summary": _summary(event.payload),
    }


def _checkpoint(checkpoint: Checkpoint) -> dict[str, Any]:
    state = checkpoint.state if isinstance(checkpoint.state, dict) else {}
    return {
        "seq": checkpoint.seq,
        "event_seq": checkpoint.event_seq,
        "created_at": when_text(checkpoint.created_at),
        "summary": _summary(state, 160),
    }


def _approval(approval: Approval, *, can_decide: bool) -> dict[str, Any]:
    action = proposed_action_text(approval)
    pending = approval.status == Approval.Status.PENDING
    return {
        "id": approval.pk,
        "kind": approval.kind,
        "step_index": approval.step_index,
        "step": step_number(approval.step_index),
        "title": action["title"],
        "body": action["code"],
        "status": approval.status,
        "requested_at": when_text(approval.requested_at),
        "decided_at": when_text(approval.decided_at),
        "decided_by": approval.decided_by.get_username() if approval.decided_by else "",
        "comment": approval.comment,
        "edited_arguments": json.dumps(approval.edited_arguments, sort_keys=True) if approval.edited_arguments else "",
        "decide_url": reverse("admin:tasks_app_approval_decide", args=[approval.pk]) if pending and can_decide else "",
    }


def timeline_state(task: AgentTask, *, can_decide: bool, after_checkpoint: int = 0) -> dict[str, Any]:
    """The task, its plan (every version, with each step's tool calls), approvals and the checkpoints after one."""
    approvals = approval_list_for_task(task=task)
    return {
        "task": _task(task),
        **timeline_steps(task),
        "approvals": [_approval(a, can_decide=can_decide) for a in approvals],
        "checkpoints": [_checkpoint(c) for c in checkpoint_list_after(task=task, after_seq=after_checkpoint)],
    }


def viewable_task(model_admin: ModelAdmin[AgentTask], request: HttpRequest, task_id: str) -> AgentTask:
    """The task for an admin page: 403 without the view permission, 404 for an unknown id."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    try:
        return task_get(task_id=task_id)  # a malformed id is an unknown task too
    except TaskNotFound:
        raise Http404(f"no task {task_id}") from None


def task_timeline(request: HttpRequest, task_id: str, *, model_admin: ModelAdmin[AgentTask]) -> HttpResponse:
    task = viewable_task(model_admin, request, task_id)
    can_decide = request.user.has_perm(DECIDE_PERMISSION)
    latest, total = event_list_latest(task=task, limit=EVENTS_ON_PAGE)
    events = [_event(e) for e in latest]
    state = timeline_state(task, can_decide=can_decide)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": AgentTask._meta,
        "title": f"Timeline: {task.goal[:80]}",
        "task_obj": task,
        **state,
        "plan": {key: state[key] for key in ("steps", "earlier", "plans")},  # rendered by the page's script
        "events": events,
        "events_hidden": total - len(events),
        "last_seq": events[-1]["seq"] if events else 0,
        "last_checkpoint": state["checkpoints"][-1]["seq"] if state["checkpoints"] else 0,
        "poll_url": reverse("admin:tasks_app_agenttask_timeline_json", args=[task.pk]),
        "change_url": reverse("admin:tasks_app_agenttask_change", args=[task.pk]),
        "inbox_url": reverse("admin:tasks_app_approval_changelist"),
    }
    return render(request, "tasks_app/timeline.html", context)


def task_timeline_json(request: HttpRequest, task_id: str, *, model_admin: ModelAdmin[AgentTask]) -> JsonResponse:
    # The task row is read before the events: when it says the task has ended, the events read
    # after it include the last one, so the page can stop polling without missing any.
    task = viewable_task(model_admin, request, task_id)
    raw, raw_checkpoint = request.GET.get("after_seq", "0"), request.GET.get("after_checkpoint", "0")
    if not raw.isdigit() or not raw_checkpoint.isdigit():
        return JsonResponse({"error": "after_seq and after_checkpoint must be non-negative integers"}, status=400)
    after = int(raw)
    rows, more = event_page_after(task=task, after_seq=after, limit=EVENTS_PER_POLL)
    events = [_event(e) for e in rows]
    body: dict[str, Any] = {
        "task": _task(task),
        "events": events,
        "more": more,
        "last_seq": events[-1]["seq"] if events else after,
    }
    if events or after == 0:
        # Steps, approvals and checkpoints change only with an event: a quiet poll sends the task row alone.
        state = timeline_state(task, can_decide=request.user.has_perm(DECIDE_PERMISSION), after_checkpoint=int(raw_checkpoint))
        body.update(state)
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


def step_transcript(request: HttpRequest, task_id: str, number: int, *, model_admin: ModelAdmin[AgentTask]) -> HttpResponse:
    """One step's conversation (prompt, model turns, tool calls and results), as the model saw it."""
    task = viewable_task(model_admin, request, task_id)
    step = step_get_by_number(task=task, number=number)
    if step is None:
        raise Http404(f"task {task_id} has no step {number}")
    messages = []
    for m in step.transcript or []:
        if not isinstance(m, dict):
            continue
        calls = [
            {
                "name": c.get("function", {}).get("name", "?"),
                "arguments": value_text(json_or_text(c.get("function", {}).get("arguments"))),
            }
            for c in m.get("tool_calls") or []
            if isinstance(c, dict)
        ]
        content = m.get("content")
        messages.append(
            {
                "role": m.get("role", "?"),
                "content": value_text(json_or_text(content)) if m.get("role") == "tool" else (content or ""),
                "calls": calls,
            }
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": AgentTask._meta,
        "title": f"Step {number}: {step.title}",
        "task": task,
        "step": step,
        "number": number,
        "messages": messages,
        "timeline_url": reverse("admin:tasks_app_agenttask_timeline", args=[task.pk]),
    }
    return render(request, "tasks_app/transcript.html", context)
