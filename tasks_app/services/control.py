"""Operator control and signals: writes made outside any tick.

Each one appends its event in the same transaction as the status change (DjangoStore.operator_change).
A status change bumps the lease epoch, so a tick in flight on a cancelled or paused task is fenced:
its journal writes and its commit fail and it writes nothing more, and a transactional tool's own
writes roll back with its journal row. Appending an event also moves the log, so a tick that was
about to commit on an older state conflicts and redoes on the new one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import transaction

from agents import events as ev
from agents.compensation import compensate
from agents.errors import InvalidInput
from agents.journal import Journal
from agents.redaction import redact
from agents.runner import worker_identity
from agents.status import TaskStatus
from agents.subtasks import ring_parent
from agents.tools import default_registry
from agents.types import EventRecord, OperatorChange, SignalRecord
from tasks_app.conf import settings
from tasks_app.runtime import load_tool_modules
from tasks_app.services.tasks import enqueue_tick
from tasks_app.store import store_for

logger = logging.getLogger("horizon.control")

SIGNAL_NAME_MAX = 100
SIGNAL_PAYLOAD_MAX_BYTES = 64 * 1024
REASON_MAX = 2000


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"the reason is {len(reason)} characters; the limit is {REASON_MAX}")
    return reason


def agent_task_cancel(
    *, task_id: str, reason: str = "", by: str = "operator", compensate: bool = False, _cascade: bool = False
) -> list[str]:
    """Cancel a task and, first, every descendant still active. Returns the ids cancelled.

    With `compensate`, each cancelled task's recorded side effects are then undone (the saga):
    see compensate_cancelled.
    """
    reason = _reason(reason) or "cancelled by an operator"
    store = store_for()
    cancelled: list[str] = []
    with transaction.atomic():
        store.get_task(task_id)  # TaskNotFound before anything is written
        for child in store.children(task_id):
            if store.get_task(child).status in TaskStatus.ACTIVE:
                cancelled += agent_task_cancel(task_id=child, reason=f"its parent was cancelled: {reason}", by=by, _cascade=True)
        store.operator_change(
            task_id,
            OperatorChange(
                event=ev.new_event(ev.TASK_CANCELLED, {"reason": reason, "by": by}),
                from_statuses=TaskStatus.ACTIVE,
                status=TaskStatus.CANCELLED,
                status_reason=reason,
                clear_schedule=True,
            ),
        )
    logger.info("task %s cancelled by %s: %s", task_id, by, reason)
    if not _cascade:  # a cascaded child's parent is being cancelled too: nobody to ring
        ring_parent_of(task_id=task_id, status=TaskStatus.CANCELLED)
    if compensate:
        for cancelled_id in [*cancelled, task_id]:
            compensate_cancelled(task_id=cancelled_id)
    return [*cancelled, task_id]


def ring_parent_of(*, task_id: str, status: str, using: str = "default") -> str | None:
    """A sub-agent ended outside a tick (cancelled, or failed by the sweeper): ring its parent.

    Returns the parent's id if it was told. Done after the child's own change committed; if this
    is lost, the parent's re-check timer finds the ended child (agents/subtasks.py).
    """
    store = store_for(using)
    parent = store.get_task(task_id).parent_id
    if parent is None:
        return None
    with transaction.atomic(using=using):
        if not ring_parent(store, parent_id=parent, child_id=task_id, status=status):
            return None
        enqueue_tick(parent)
    return parent


def compensate_cancelled(*, task_id: str) -> dict[str, Any]:
    """Undo a cancelled task's recorded side effects, in reverse order, each undo journaled once.

    The cancel fenced any tick in flight; this takes a lease on the ended task so that the undos'
    journal writes are fenced like a tick's (two operators compensating at once cannot both run one).
    """
    load_tool_modules()
    store = store_for()
    lease = store.lease_ended(task_id, owner=f"operator:{worker_identity()}", lease_seconds=settings.HORIZON_LEASE_SECONDS)
    if lease is None:
        raise InvalidInput(f"task {task_id} has not ended, or someone else holds its lease")
    try:
        undone = compensate(Journal(store, lease), default_registry, task_id)
        if any(undone.values()):
            store.operator_change(
                task_id,
                OperatorChange(event=ev.new_event(ev.TASK_COMPENSATED, undone), from_statuses=TaskStatus.TERMINAL),
            )
        return undone
    finally:
        store.release(lease)


def agent_task_pause(*, task_id: str, reason: str = "", by: str = "operator") -> EventRecord:
    """Stop a task after its current tick (which is fenced if it has not committed yet)."""
    return store_for().operator_change(
        task_id,
        OperatorChange(
            event=ev.new_event(ev.TASK_PAUSED, {"reason": _reason(reason), "by": by}),
            from_statuses=frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.WAITING, TaskStatus.REQUIRES_HUMAN}),
            status=TaskStatus.PAUSED,
            status_reason=_reason(reason) or "paused by an operator",
            clear_schedule=True,
        ),
    )


def agent_task_resume(*, task_id: str, by: str = "operator") -> EventRecord:
    """Resume a paused task, or retry a task that escalated to a person, from its last checkpoint."""
    with transaction.atomic():
        event = store_for().operator_change(
            task_id,
            OperatorChange(
                event=ev.new_event(ev.TASK_CONTINUED, {"by": by}),
                from_statuses=frozenset({TaskStatus.PAUSED, TaskStatus.REQUIRES_HUMAN}),
                status=TaskStatus.RUNNING,
                wake=True,
            ),
        )
        enqueue_tick(task_id)
    return event


def signal_send(*, task_id: str, name: str, payload: Any = None) -> SignalRecord:
    """Put a signal in the task's inbox and wake the task if it waits; a later wait consumes it otherwise."""
    name = (name or "").strip()
    if not name or len(name) > SIGNAL_NAME_MAX:
        raise InvalidInput(f"a signal name is 1 to {SIGNAL_NAME_MAX} characters")
    try:
        size = len(json.dumps(payload))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the payload is not JSON-serialisable: {exc}") from None
    if size > SIGNAL_PAYLOAD_MAX_BYTES:
        raise InvalidInput(f"the payload is {size} bytes as JSON; the limit is {SIGNAL_PAYLOAD_MAX_BYTES}")
    store = store_for()
    with transaction.atomic():
        status = store.get_task(task_id).status
        if status not in TaskStatus.ACTIVE:
            raise InvalidInput(f"task {task_id} is {status}: it will never read a signal")
        signal = store.signal_put(task_id, name, redact(payload))  # kept in the inbox: no secret in it
        waiting = status == TaskStatus.WAITING
        store.operator_change(
            task_id,
            OperatorChange(
                event=ev.new_event(ev.SIGNAL_RECEIVED, {"name": name, "signal_id": signal.id}),
                from_statuses=TaskStatus.ACTIVE,
                wake=waiting,  # a waiting task is rung now; a running one finds it when it waits
            ),
        )
        if waiting:
            enqueue_tick(task_id)
    return signal
