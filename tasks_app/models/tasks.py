"""Agent tasks: one row per goal, its status and lease, and its steps (the plan as it runs)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from agents.status import StepStatus as _StepStatus
from agents.status import TaskStatus as _TaskStatus


class AgentTask(models.Model):
    class Status(models.TextChoices):
        PENDING = _TaskStatus.PENDING
        RUNNING = _TaskStatus.RUNNING
        WAITING = _TaskStatus.WAITING
        REQUIRES_HUMAN = _TaskStatus.REQUIRES_HUMAN
        PAUSED = _TaskStatus.PAUSED
        COMPLETED = _TaskStatus.COMPLETED
        FAILED = _TaskStatus.FAILED
        CANCELLED = _TaskStatus.CANCELLED

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    goal = models.TextField()
    context = models.JSONField(default=dict, blank=True)
    profile = models.CharField(max_length=100, default="default")
    # The profile's settings when the task was created: later changes do not reach a running task.
    profile_config = models.JSONField(null=True, blank=True)
    # Indexed only where set (see Meta): most tasks have no parent, and every tick rewrites the row.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", db_index=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    # Who created it through the JSON API (tasks_app/api): API tokens see only their user's tasks.
    # Tasks made by the CLI, the admin or a schedule have none: only superusers see them in the API.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # Notified (signed POST) when the task completes, fails, is cancelled or waits for a person (tasks_app/services/webhooks.py).
    callback_url = models.CharField(max_length=2000, blank=True, default="")

    # Scheduling and ownership. next_run_at is the durable doorbell: a lost broker message
    # costs latency only, because a driver or the sweeper finds the row again.
    next_run_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=200, null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_epoch = models.PositiveBigIntegerField(default=0)
    # The owner whose expired lease the latest claim took over (None when the task was free).
    taken_over_from = models.CharField(max_length=200, null=True, blank=True)
    step_attempts = models.PositiveIntegerField(default=0)  # claims since the last commit
    resume_count = models.PositiveIntegerField(default=0)
    deadline = models.DateTimeField(null=True, blank=True)

    # Counters kept in step with the log under the same guarded UPDATE.
    last_event_seq = models.PositiveBigIntegerField(default=0)
    last_event_hash = models.CharField(max_length=80, blank=True, default="")  # the next event chains to it
    checkpoint_seq = models.PositiveBigIntegerField(default=0)

    # Budgets and usage.
    max_steps = models.PositiveIntegerField(default=50)
    max_attempts = models.PositiveIntegerField(default=5)
    steps_completed = models.PositiveIntegerField(default=0)
    model_calls = models.PositiveIntegerField(default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)
    completion_tokens = models.PositiveBigIntegerField(default=0)

    # The sweeper's bookkeeping (tasks_app/services/sweep.py).
    enqueued_at = models.DateTimeField(null=True, blank=True)  # a tick message was sent and not yet claimed
    step_deadline_at = models.DateTimeField(null=True, blank=True)  # the current step must end by then
    progress_at = models.DateTimeField(null=True, blank=True)  # the last committed tick
    stuck_flagged_at = models.DateTimeField(null=True, blank=True)  # task.stuck was flagged (cleared by progress)
    # Rolling deploys (docs/deploys.md): the sequence of the newest build that ticked the task (a claim
    # by an older build is refused) and every build that ticked it, oldest first, space-separated.
    build_rank = models.PositiveBigIntegerField(default=0)
    builds = models.TextField(blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=_TaskStatus.ALL), name="agenttask_status_valid"),
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="agenttask_max_attempts_positive"),
        ]
        indexes = [
            # The drivers' and sweeper's "what is due" query: only runnable rows are indexed, so
            # its cost follows due work, not the number of finished or idle tasks. A stalled lease
            # is always on such a row (a claim leaves next_run_at in the past), so no lease index is
            # needed; without one, a claim changes no indexed column and PostgreSQL can update the
            # row in place (HOT) on every tick.
            models.Index(
                fields=["next_run_at"],
                name="agenttask_due_idx",
                condition=models.Q(status__in=sorted(_TaskStatus.CLAIMABLE)),
            ),
            models.Index(fields=["status", "-created_at"], name="agenttask_status_idx"),
            models.Index(fields=["parent"], name="agenttask_parent_idx", condition=models.Q(parent__isnull=False)),
            # The API's task list: a user's tasks, newest first.
            models.Index(fields=["owner", "-created_at"], name="agenttask_owner_idx", condition=models.Q(owner__isnull=False)),
            # The sweeper's other questions, each indexed only over the rows that can answer yes.
            models.Index(
                fields=["deadline"],
                name="agenttask_deadline_idx",
                condition=models.Q(deadline__isnull=False, status__in=sorted(_TaskStatus.ACTIVE)),
            ),
            models.Index(
                fields=["step_deadline_at"],
                name="agenttask_step_deadline_idx",
                condition=models.Q(step_deadline_at__isnull=False, status__in=sorted(_TaskStatus.WORKING)),
            ),
            models.Index(
                fields=["progress_at"],
                name="agenttask_stuck_idx",
                condition=models.Q(stuck_flagged_at__isnull=True, status__in=sorted(_TaskStatus.WORKING)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.goal[:60]} ({self.status})"


class Step(models.Model):
    class Status(models.TextChoices):
        PENDING = _StepStatus.PENDING
        RUNNING = _StepStatus.RUNNING
        COMPLETED = _StepStatus.COMPLETED
        FAILED = _StepStatus.FAILED

    # No separate FK index: the unique (task, index) constraint's index serves lookups by task.
    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="steps", db_index=False)
    index = models.PositiveIntegerField()
    plan_version = models.PositiveIntegerField(default=1)
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, default="")
    depends_on = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    requires_approval = models.BooleanField(default=False)
    expected_minutes = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    # The step's own messages, written once with the step's commit (see StepUpdate.transcript).
    transcript = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "index"]
        constraints = [
            models.UniqueConstraint(fields=["task", "index"], name="step_unique_task_index"),
            models.CheckConstraint(condition=models.Q(status__in=_StepStatus.ALL), name="step_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.index}: {self.title}"
