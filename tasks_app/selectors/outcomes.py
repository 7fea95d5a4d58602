"""Outcomes per agent profile: how often goals complete or escalate, and what a completed one costs.

Definitions (the admin page shows them):
- completion rate: completed / ended (completed + failed + cancelled); tasks still active are
  counted apart, since they have not had an outcome yet;
- escalation rate: tasks that escalated to a person at least once for a problem (a `task.escalated`
  event without an approval: a budget, an invalid plan, an unknown outcome, a step out of attempts)
  / all tasks of the profile; approvals the plan or the tool's risk asked for are counted apart
  (`asked_approval`): they are the process working, not a problem;
- mean cost and mean duration of completed tasks; the duration runs from creation to the last
  committed tick (progress_at), which for a completed task is its completing commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Avg, Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.db.models.functions import Coalesce

from agents import events as ev
from agents.status import TaskStatus
from tasks_app.models import AgentTask, Event


@dataclass(frozen=True)
class ProfileOutcomes:
    profile: str
    tasks: int
    active: int
    completed: int
    failed: int
    cancelled: int
    escalated: int  # tasks with at least one task.escalated event that was not an approval request
    mean_cost_usd: float | None  # of completed tasks
    mean_duration: timedelta | None  # of completed tasks
    asked_approval: int = 0  # tasks that asked a person to approve an action at least once

    @property
    def ended(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def completion_rate(self) -> float | None:
        return self.completed / self.ended if self.ended else None

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.tasks if self.tasks else None


def outcomes_by_profile(*, using: str = "default") -> list[ProfileOutcomes]:
    escalations = Event.objects.using(using).filter(task=OuterRef("pk"), type=ev.TASK_ESCALATED)
    # An approval request is a task.escalated event naming the approval it waits for.
    escalated = escalations.exclude(payload__has_key="approval_id")
    asked = escalations.filter(payload__has_key="approval_id")
    done = Q(status=TaskStatus.COMPLETED)
    duration = ExpressionWrapper(Coalesce(F("progress_at"), F("updated_at")) - F("created_at"), output_field=DurationField())
    rows = (
        AgentTask.objects.using(using)
        .order_by()
        .annotate(was_escalated=Exists(escalated), asked_approval_=Exists(asked))
        .values("profile")
        .annotate(
            tasks=Count("id"),
            active=Count("id", filter=Q(status__in=TaskStatus.ACTIVE)),
            completed=Count("id", filter=done),
            failed=Count("id", filter=Q(status=TaskStatus.FAILED)),
            cancelled=Count("id", filter=Q(status=TaskStatus.CANCELLED)),
            escalated=Count("id", filter=Q(was_escalated=True)),
            asked_approval=Count("id", filter=Q(asked_approval_=True)),
            mean_cost_usd=Avg("cost_usd", filter=done),
            mean_duration=Avg(duration, filter=done),
        )
        .order_by("profile")
    )
    return [ProfileOutcomes(**row) for row in rows]
