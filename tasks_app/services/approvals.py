"""People's decisions about an agent's proposed actions: approve, reject, edit-then-approve.

A decision is one conditional UPDATE of a pending approval (two admins deciding at once: one wins,
the other is told it was already decided), in the same transaction as the task's `approval.decided`
event naming the user and the task's return to running; the task's next tick is enqueued at once.
A decision is refused when the action it is about is no longer the one the task waits for: the
approval went stale, or the task has moved on (cancelled, re-planned, or waiting for another
approval). Edited arguments are validated against the tool's schema first.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from agents import events as ev
from agents.errors import InvalidInput, NotAllowed, TaskNotFound
from agents.status import TaskStatus
from agents.tools import default_registry
from agents.tools.registry import validate_arguments
from agents.types import ApprovalRecord, OperatorChange
from tasks_app.models import AgentTask, Approval, Event
from tasks_app.runtime import load_tool_modules
from tasks_app.services.tasks import enqueue_tick
from tasks_app.store import approval_record, store_for, task_pk

logger = logging.getLogger("horizon.approvals")

PERMISSION = "tasks_app.decide_approval"
COMMENT_MAX = 2000


def _decider(user: User | AnonymousUser) -> User:
    """The user, when they may decide approvals (an anonymous user never may)."""
    if isinstance(user, AnonymousUser) or not user.has_perm(PERMISSION):
        raise NotAllowed(f"{user} may not decide approvals (needs the {PERMISSION} permission)")
    return user


def _checked_comment(comment: str) -> str:
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise InvalidInput(f"the comment is {len(comment)} characters; the limit is {COMMENT_MAX}")
    return comment


def _validated_edit(approval: Approval, edited: Any) -> dict[str, Any]:
    if approval.kind != "tool":
        raise InvalidInput("only a tool call's arguments can be edited; approve or reject a step")
    load_tool_modules()
    tool = default_registry.get(approval.action["tool"])
    if tool is None:
        raise InvalidInput(f"tool {approval.action['tool']!r} is not registered here: its edit cannot be checked")
    errors = tool.validate(edited)
    if errors:
        problems = explain_arguments(tool.parameters, edited) or errors
        raise InvalidInput(f"the edited arguments do not fit {tool.name}: " + "; ".join(problems))
    return dict(edited)


_TYPE_WORDS = {
    "string": "text (a JSON string)",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _given(value: Any) -> str:
    kind = {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}
    shown = json.dumps(value, ensure_ascii=False)
    return (
        f"{kind.get(type(value), 'null' if value is None else type(value).__name__)} {shown[:60]}{'…' if len(shown) > 60 else ''}"
    )


def _expected(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "a value"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_expected(s) for s in schema["anyOf"])
    return _TYPE_WORDS.get(str(schema.get("type")), str(schema.get("type", "a value")))


def explain_arguments(parameters: dict[str, Any], arguments: Any) -> list[str]:
    """What a person reads when an edit does not fit: the argument, what was expected, what was given."""
    if not isinstance(arguments, dict):
        return [f'the arguments must be a JSON object like {{"name": value}}; you gave {_given(arguments)}']
    props: dict[str, Any] = parameters.get("properties", {}) or {}
    problems = []
    for name in parameters.get("required", []) or []:
        if name not in arguments:
            problems.append(f"argument {name!r} is missing: it expects {_expected(props.get(name))}")
    for name, value in arguments.items():
        if name not in props:
            problems.append(f"argument {name!r} is not one this tool takes (it takes {', '.join(sorted(props)) or 'none'})")
        elif validate_arguments({"properties": {name: props[name]}}, {name: value}):
            problems.append(f"argument {name!r} expects {_expected(props[name])}; you gave {_given(value)}")
    return problems


def approval_decide(
    *,
    approval_id: int,
    user: User | AnonymousUser,
    approve: bool,
    comment: str = "",
    edited_arguments: dict[str, Any] | None = None,
) -> ApprovalRecord:
    """Apply one decision, once. Raises NotAllowed, InvalidInput (stale, decided, invalid edit) or TaskNotFound."""
    decider = _decider(user)
    comment = _checked_comment(comment)
    with transaction.atomic():
        approval = Approval.objects.select_for_update().filter(pk=approval_id).first()
        if approval is None:
            raise InvalidInput(f"no approval #{approval_id}")
        if approval.status != Approval.Status.PENDING:
            raise InvalidInput(f"approval #{approval_id} was already decided ({approval.status})")
        if not approve and not comment:
            # Every surface (admin, API, CLI) asks for it: the agent re-plans around the reason.
            raise InvalidInput("a rejection needs a comment saying why: the agent reads it and plans around it")
        edited = _validated_edit(approval, edited_arguments) if edited_arguments is not None and approve else None
        task = AgentTask.objects.select_for_update().get(pk=approval.task_id)
        if task.status != TaskStatus.REQUIRES_HUMAN or _awaited_approval(task) != approval.pk:
            raise InvalidInput(f"approval #{approval_id} is stale: the task is {task.status} and no longer waits for this action")
        approval.status = Approval.Status.APPROVED if approve else Approval.Status.REJECTED
        approval.decided_by = decider
        approval.decided_at = timezone.now()
        approval.comment = comment
        approval.edited_arguments = edited
        approval.save()
        username = decider.get_username()
        store_for().operator_change(
            str(task.pk),
            OperatorChange(
                event=ev.new_event(
                    ev.APPROVAL_DECIDED,
                    {
                        "approval_id": approval.pk,
                        "decision": approval.status,
                        "by": username,
                        "comment": comment,
                        "edited_arguments": edited,
                    },
                ),
                from_statuses=frozenset({TaskStatus.REQUIRES_HUMAN}),
                status=TaskStatus.RUNNING,
                wake=True,
            ),
        )
        enqueue_tick(str(task.pk))
    # DEBUG: the approval.decided event is the record, and each interface tells its user itself.
    logger.debug("approval #%s %s by %s", approval_id, approval.status, username)
    return approval_record(approval)


def _awaited_approval(task: AgentTask) -> int | None:
    """The approval the task's latest escalation waits for (None: it waits for something else)."""
    last = Event.objects.filter(task=task, type=ev.TASK_ESCALATED).order_by("-seq").values_list("payload", flat=True).first()
    return last.get("approval_id") if isinstance(last, dict) else None


def pending_approvals(task_id: str | None = None) -> list[ApprovalRecord]:
    rows = Approval.objects.filter(status=Approval.Status.PENDING).order_by("requested_at")
    if task_id is not None:
        if not AgentTask.objects.filter(pk=task_pk(task_id)).exists():
            raise TaskNotFound(task_id)
        rows = rows.filter(task_id=task_pk(task_id))
    return [approval_record(a) for a in rows.select_related("decided_by")]
