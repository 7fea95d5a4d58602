"""The stuck-task report: tasks that will not finish without someone looking at them.

Categories (each one indexed or bounded query; the sweeper acts on some of them, this only reports):
- past_deadline: not ended, and its deadline has passed (the sweeper fails these: seeing one here
  means no beat is running, or it keeps failing);
- lease_without_progress: a lease is held, and it has expired (its owner died and no sweep took it
  back yet) or no tick has committed for HORIZON_STUCK_AFTER;
- wait_never_satisfied: waiting, and nothing will ever wake it on its own: a signal wait without
  a timeout that has waited longer than the threshold, a timer set beyond the task's deadline
  (the deadline fails the task first, so the wait can never end well), or a parent waiting for
  its sub-agents (agents/subtasks.py) one of which an operator paused longer than the threshold
  ago (only a person's resume moves it again);
- waiting_for_human: requires_human for longer than the threshold (an approval or an escalation
  nobody has answered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from agents import events as ev
from agents.status import TaskStatus
from tasks_app.conf import settings
from tasks_app.models import AgentTask, Approval, Event

CATEGORIES = ("past_deadline", "lease_without_progress", "wait_never_satisfied", "waiting_for_human")
DEFAULT_HUMAN_HOURS = 24.0
DEFAULT_WAIT_HOURS = 24.0 * 7
LIMIT = 500  # rows per category: a report, not an export


@dataclass(frozen=True)
class StuckTask:
    category: str
    task_id: str
    goal: str
    status: str
    profile: str
    since: datetime | None  # when the condition began, as far as the row tells
    detail: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        return data


def _row(category: str, task: AgentTask, since: datetime | None, detail: str) -> StuckTask:
    return StuckTask(category, str(task.pk), task.goal[:200], task.status, task.profile, since, detail)


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def stuck_tasks(
    *,
    human_hours: float = DEFAULT_HUMAN_HOURS,
    wait_hours: float = DEFAULT_WAIT_HOURS,
    now: datetime | None = None,
    using: str = "default",
) -> list[StuckTask]:
    now = now or timezone.now()
    tasks = AgentTask.objects.using(using).order_by()
    found: list[StuckTask] = []

    # Served by agenttask_deadline_idx (deadline, over active rows with one).
    late = tasks.filter(deadline__isnull=False, deadline__lte=now, status__in=TaskStatus.ACTIVE)
    for task in late.order_by("deadline")[:LIMIT]:
        assert task.deadline is not None  # the filter's deadline__isnull=False
        found.append(_row("past_deadline", task, task.deadline, f"deadline passed {_hours(now - task.deadline)} ago"))

    quiet_since = now - timedelta(seconds=settings.HORIZON_STUCK_AFTER)
    leased = tasks.filter(lease_owner__isnull=False, status__in=TaskStatus.CLAIMABLE).filter(
        Q(lease_expires_at__lt=now) | Q(progress_at__lt=quiet_since)
    )
    for task in leased.order_by("lease_expires_at")[:LIMIT]:
        if task.lease_expires_at and task.lease_expires_at < now:
            detail = f"lease of {task.lease_owner} expired {_hours(now - task.lease_expires_at)} ago, not taken back"
        else:
            assert task.progress_at is not None  # the lease has not expired: progress_at__lt matched
            detail = f"{task.lease_owner} holds the lease; no tick committed for {_hours(now - task.progress_at)}"
        found.append(_row("lease_without_progress", task, task.progress_at, detail))

    waiting = tasks.filter(status=TaskStatus.WAITING)
    no_timer = waiting.filter(next_run_at__isnull=True, updated_at__lt=now - timedelta(hours=wait_hours))
    beyond_deadline = waiting.filter(deadline__isnull=False, next_run_at__gt=F("deadline"))
    for task in (no_timer | beyond_deadline).order_by("updated_at")[:LIMIT]:
        if task.next_run_at is None:
            names = _waited_signals(task, using)
            detail = f"waits for signal {names} with no timeout, for {_hours(now - task.updated_at)}"
            found.append(_row("wait_never_satisfied", task, task.updated_at, detail))
        else:
            assert task.deadline is not None  # a timer is set: beyond_deadline matched
            detail = f"timer at {task.next_run_at.isoformat()} is after the deadline {task.deadline.isoformat()}"
            found.append(_row("wait_never_satisfied", task, task.updated_at, detail))

    # From the paused children (few, found on the status index) to their waiting parents.
    paused = tasks.filter(
        status=TaskStatus.PAUSED, parent__status=TaskStatus.WAITING, updated_at__lt=now - timedelta(hours=wait_hours)
    )
    parents_seen: set[str] = set()
    for child in paused.select_related("parent").order_by("updated_at")[:LIMIT]:
        parent = child.parent
        if parent is None or str(parent.pk) in parents_seen:
            continue
        parents_seen.add(str(parent.pk))
        detail = f"waits for sub-agent {child.pk}, paused for {_hours(now - child.updated_at)}"
        found.append(_row("wait_never_satisfied", parent, child.updated_at, detail))

    human = tasks.filter(status=TaskStatus.REQUIRES_HUMAN, updated_at__lt=now - timedelta(hours=human_hours))
    for task in human.order_by("updated_at")[:LIMIT]:
        pending = Approval.objects.using(using).filter(task=task, status=Approval.Status.PENDING).count()
        why = f"{pending} pending approval(s)" if pending else (task.status_reason[:200] or "escalated")
        found.append(_row("waiting_for_human", task, task.updated_at, f"{why}; for {_hours(now - task.updated_at)}"))
    return found


def _waited_signals(task: AgentTask, using: str) -> str:
    """The signal names of the task's latest wait (its task.waiting event), for the report."""
    event = Event.objects.using(using).filter(task=task, type=ev.TASK_WAITING).order_by("-seq").first()
    names = (event.payload or {}).get("names") if event else None
    return ", ".join(map(str, names)) if names else "?"
