"""Approvals: the actions an agent may not take alone wait for a person's decision.

Two kinds, both chosen by the task's profile:
- a step the planner flagged `needs_approval` (approval_policy "planned"), or every step ("always");
- a tool call whose risk level the profile lists in `approval_risks` (e.g. "external").

The gate records the exact proposed action and its digest as a pending approval (a fenced write of
the tick) and stops the tick with `ApprovalRequired`; the runner commits the task as requires_human.
People decide in the admin (tasks_app/services/approvals.py), which wakes the task; the next tick
passes the gate with the decision. If the action under the same key has changed meanwhile (a
re-plan, a different tool call), the old decision is marked stale and a new approval is asked for:
a decision only ever applies to the action it was made about.
"""

from __future__ import annotations

from agents.errors import ApprovalRequired as ApprovalRequired  # re-exported: defined in agents.errors
from agents.errors import StepRejected as StepRejected
from agents.status import ApprovalStatus
from agents.store import ApprovalStore
from agents.types import JSON, ApprovalRecord, Lease, StepRecord, ToolCall, digest


def step_approval(task_id: str, step: StepRecord) -> ApprovalRecord:
    action: dict[str, JSON] = {"step": step.title, "instructions": step.instructions}
    return ApprovalRecord(
        task_id=task_id,
        key=f"{task_id}/p{step.plan_version}/s{step.index}/step",
        kind="step",
        step_index=step.index,
        plan_version=step.plan_version,
        action=action,
        digest=digest(action),
    )


def tool_approval(task_id: str, step: StepRecord, key: str, call: ToolCall) -> ApprovalRecord:
    action: dict[str, JSON] = {"tool": call.name, "arguments": call.arguments}
    return ApprovalRecord(
        task_id=task_id,
        key=key,
        kind="tool",
        step_index=step.index,
        plan_version=step.plan_version,
        action=action,
        digest=digest(action),
    )


def gate(store: ApprovalStore, lease: Lease, wanted: ApprovalRecord) -> ApprovalRecord:
    """The decision about exactly this action (approved or rejected); raises ApprovalRequired while
    none exists, asking for one the first time."""
    existing = store.approval_get(wanted.task_id, wanted.key)
    if existing is not None and existing.status != ApprovalStatus.STALE and existing.digest != wanted.digest:
        assert existing.id is not None
        store.approval_mark_stale(lease, existing.id)
        existing = None
    if existing is None or existing.status == ApprovalStatus.STALE:
        existing = store.approval_request(lease, wanted)
    if existing.status == ApprovalStatus.PENDING:
        raise ApprovalRequired(existing)
    return existing
