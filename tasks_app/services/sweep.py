"""The sweeper: celery-beat runs it every few seconds (the `horizon.sweep` schedule, migration 0005).

A tick message is only a doorbell; the rows are the truth. The sweep finds what the doorbells
missed and what time made due, by the database clock:

- stalled: a lease expired before its owner committed (the worker died). The lease is cleared,
  the epoch bumped (the dead owner, were it only paused, is fenced), `task.stalled` appended,
  resume_count + 1, and a tick enqueued;
- due: runnable rows whose tick message is missing (never sent, lost with a wiped Redis, or
  older than HORIZON_SWEEP_REDELIVER_AFTER) and waiting rows whose timer is due: a tick is
  enqueued and enqueued_at stamped;
- deadlines: a task past its deadline fails; a step past its deadline escalates to a person;
- stuck: a working task without a committed tick for HORIZON_STUCK_AFTER is flagged (`task.stuck`).

Poison steps need nothing here: every claim counts an attempt and the tick escalates a step that
used them up, so re-enqueuing a task that keeps killing its worker ends in an escalation.

Every query is a range scan of a partial index over rows that can answer yes (see AgentTask.Meta),
so an idle fleet of a million waiting or finished tasks costs nothing. Two beats may run at once:
on PostgreSQL a transaction-scoped advisory lock lets one sweep run and the other return at once,
and every change is conditional on the row still being in the state the sweep saw, so even two
sweeps that did run would not double an event or a message.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from agents import events as ev
from agents.deadlines import deadline_change as _deadline_change
from agents.errors import InvalidInput
from agents.status import TaskStatus, TransitionError
from agents.types import OperatorChange
from tasks_app.conf import settings
from tasks_app.models import AgentTask
from tasks_app.observability import metrics
from tasks_app.services.control import agent_task_cancel, ring_parent_of
from tasks_app.services.sweep_report import SweepReport
from tasks_app.services.tasks import enqueue_tick
from tasks_app.store import DjangoStore, chain_events, due_q, event_row, stamped, store_for

logger = logging.getLogger("horizon.sweep")

SWEEP_LOCK_ID = 0x484F52495A4F4E  # "HORIZON": the advisory lock that makes concurrent sweeps take turns


def _database_now(using: str) -> datetime:
    conn = connections[using]
    if conn.vendor != "postgresql":
        return timezone.now()
    with conn.cursor() as cursor:
        cursor.execute("SELECT now()")
        now: datetime = cursor.fetchone()[0]
        return now


def _took_lock(using: str) -> bool:
    conn = connections[using]
    if conn.vendor != "postgresql":
        return True  # SQLite serialises writers anyway, and the embedded default has no beat
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SWEEP_LOCK_ID])
        return bool(cursor.fetchone()[0])


def sweep(*, using: str = "default", limit: int | None = None) -> SweepReport:
    """One sweep; the ticks it enqueues are sent after its transaction commits."""
    limit = limit or settings.HORIZON_SWEEP_LIMIT
    report = SweepReport()
    with transaction.atomic(using=using):
        if not _took_lock(using):
            report.skipped = True
            return report
        now = _database_now(using)
        _stalled(using, now, limit, report)
        _due(using, now, limit, report)
        _deadlines(using, now, limit, report)
        _stuck(using, now, limit, report)
    metrics.record_sweep(report)
    if any(report.counts().values()):
        logger.info("sweep: %s", report.counts())
    return report


def _tasks(using: str):  # type: ignore[no-untyped-def]
    return AgentTask.objects.using(using)


def questions(using: str, now: datetime) -> dict[str, QuerySet[AgentTask]]:
    """The sweep's five questions, each answered from a partial index (benchmarks/idle_scale.py
    EXPLAINs these very querysets at 100,000 idle tasks)."""
    tasks = _tasks(using)
    redeliver_before = now - timedelta(seconds=settings.HORIZON_SWEEP_REDELIVER_AFTER)
    return {
        # A claim leaves next_run_at in the past, so expired leases sit in the due index.
        "stalled": tasks.filter(
            status__in=TaskStatus.CLAIMABLE, next_run_at__lte=now, lease_owner__isnull=False, lease_expires_at__lt=now
        ).order_by("next_run_at"),
        "due": tasks.filter(due_q(now))
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=redeliver_before))
        .order_by("next_run_at"),
        "deadlines": tasks.filter(deadline__isnull=False, deadline__lte=now, status__in=TaskStatus.ACTIVE),
        "step_deadlines": tasks.filter(step_deadline_at__isnull=False, step_deadline_at__lte=now, status__in=TaskStatus.WORKING),
        "stuck": tasks.filter(
            stuck_flagged_at__isnull=True,
            status__in=TaskStatus.WORKING,
            progress_at__lt=now - timedelta(seconds=settings.HORIZON_STUCK_AFTER),
        ),
    }


def _stalled(using: str, now: datetime, limit: int, report: SweepReport) -> None:
    # SKIP LOCKED: a row a frozen process still locks must not hold up the sweep (and every task
    # behind it); the server ends such a transaction (idle_in_transaction_session_timeout) and a
    # later sweep takes the row.
    rows = list(
        questions(using, now)["stalled"]
        .select_for_update(skip_locked=True)
        .values_list("id", "lease_owner", "last_event_seq", "last_event_hash")[:limit]
    )
    for task_id, owner, seq, prev_hash in rows:
        stalled = ev.new_event(ev.TASK_STALLED, {"previous_owner": owner})
        (event,) = chain_events(
            str(task_id),
            prev_hash,
            [stamped(stalled, seq=seq + 1, worker="sweeper", created_at=now)],
        )
        # Conditional on the same owner and log position: a claim or commit since we looked wins.
        cleared = (
            _tasks(using)
            .filter(pk=task_id, lease_owner=owner, lease_expires_at__lt=now, last_event_seq=seq)
            .update(
                lease_owner=None,
                lease_expires_at=None,
                lease_epoch=F("lease_epoch") + 1,
                resume_count=F("resume_count") + 1,
                last_event_seq=seq + 1,
                last_event_hash=event.hash,
                next_run_at=now,
                enqueued_at=now,
                updated_at=now,
            )
        )
        if not cleared:
            continue
        event_row(task_id, event).save(using=using)
        enqueue_tick(str(task_id))
        report.stalled.append(str(task_id))


def _due(using: str, now: datetime, limit: int, report: SweepReport) -> None:
    due = questions(using, now)["due"]
    # SKIP LOCKED: a row a claim or commit holds right now is not lost, only left to the next sweep.
    ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
    if ids:
        _tasks(using).filter(pk__in=ids).update(enqueued_at=now)
    for task_id in ids:
        enqueue_tick(str(task_id))
        report.enqueued.append(str(task_id))


def _deadlines(using: str, now: datetime, limit: int, report: SweepReport) -> None:
    store = store_for(using)
    asked = questions(using, now)
    for task_id, deadline in asked["deadlines"].values_list("id", "deadline")[:limit]:
        if deadline is None:
            continue  # the question asks for set deadlines only
        reason = f"the task's deadline ({deadline.isoformat()}) passed"
        if _apply(store, str(task_id), _deadline_change("task", deadline, reason, TaskStatus.ACTIVE, TaskStatus.FAILED)):
            report.deadline_failed.append(str(task_id))
            # A sub-agent failed on its deadline: its parent, if it waits for it, re-checks its children.
            ring_parent_of(task_id=str(task_id), status=TaskStatus.FAILED, using=using)
            _cancel_children(using, str(task_id), reason)
    for task_id, deadline, step in asked["step_deadlines"].values_list("id", "step_deadline_at", "steps_completed")[:limit]:
        if deadline is None:
            continue  # the question asks for set deadlines only
        reason = f"step {step} passed its deadline ({deadline.isoformat()})"
        change = _deadline_change("step", deadline, reason, TaskStatus.WORKING, TaskStatus.REQUIRES_HUMAN)
        if _apply(store, str(task_id), change):
            _tasks(using).filter(pk=task_id).update(step_deadline_at=None)
            report.step_deadline_escalated.append(str(task_id))


def _cancel_children(using: str, task_id: str, reason: str) -> None:
    """A parent that failed on its deadline leaves no sub-agent running (and spending) for nobody."""
    for child in _tasks(using).filter(parent_id=task_id, status__in=TaskStatus.ACTIVE).values_list("id", flat=True):
        try:
            with transaction.atomic(using=using):
                agent_task_cancel(task_id=str(child), reason=f"its parent failed: {reason}", by="sweeper", _cascade=True)
        except InvalidInput:
            continue  # it ended meanwhile


def _stuck(using: str, now: datetime, limit: int, report: SweepReport) -> None:
    store = store_for(using)
    for task_id, progress_at in questions(using, now)["stuck"].values_list("id", "progress_at")[:limit]:
        flagged = _tasks(using).filter(pk=task_id, stuck_flagged_at__isnull=True).update(stuck_flagged_at=now)
        if not flagged or progress_at is None:
            continue
        change = OperatorChange(
            event=ev.new_event(ev.TASK_STUCK, {"since": progress_at.isoformat()}), from_statuses=TaskStatus.ACTIVE
        )
        if _apply(store, str(task_id), change):
            report.stuck.append(str(task_id))


def _apply(store: DjangoStore, task_id: str, change: OperatorChange) -> bool:
    """Apply a change the sweep decided on; a task that moved on meanwhile is left alone.

    A refusal must never undo the rest of the sweep (or every later sweep would fail on the same
    row): the change runs in a savepoint, and a refused transition is logged and skipped.
    """
    try:
        with transaction.atomic(using=store.db):
            store.operator_change(task_id, change)
    except InvalidInput:
        return False
    except TransitionError as exc:
        logger.error("sweep: task %s: %s refused: %s", task_id, change.event.type, exc)
        return False
    return True
