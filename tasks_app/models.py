"""Horizon's tables. PostgreSQL (or SQLite when embedded) is the single source of truth.

Invariants live in constraints, not only in code: events are unique per (task, seq), steps per
(task, index), journal keys are unique, and status columns only hold known values.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from agents.errors import AppendOnlyError
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


class Event(models.Model):
    """The append-only log of every fact about a task. Rows are never updated or deleted."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="events", db_index=False)  # see Step.task
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=64)
    schema_version = models.PositiveSmallIntegerField(default=1)
    payload = models.JSONField(default=dict)
    worker = models.CharField(max_length=200, blank=True, default="")
    # Set by the store, not on save: the time is part of the event's hash (agents/audit.py).
    created_at = models.DateTimeField(default=timezone.now)
    # "k<version>:" + 64 hex characters when keyed (agents/audit.py), 64 hex characters when not.
    prev_hash = models.CharField(max_length=80, blank=True, default="")
    hash = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        ordering = ["task", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["task", "seq"], name="event_unique_task_seq"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="event_seq_positive"),
            models.CheckConstraint(condition=models.Q(schema_version__gte=1), name="event_schema_version_positive"),
        ]

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self._state.adding:
            raise AppendOnlyError("events are append-only: an event cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AppendOnlyError("events are append-only: an event cannot be deleted")

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"


class Checkpoint(models.Model):
    """Small state after a tick plus the seq of the last event it includes; never a copy of history."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="checkpoints", db_index=False)  # see Step.task
    seq = models.PositiveBigIntegerField()
    event_seq = models.PositiveBigIntegerField()
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "seq"]
        constraints = [models.UniqueConstraint(fields=["task", "seq"], name="checkpoint_unique_task_seq")]

    def __str__(self) -> str:
        return f"checkpoint {self.seq} (through event {self.event_seq})"


class JournalEntry(models.Model):
    """The ledger of model and tool calls, keyed task/plan/step/call, so that none is paid for twice."""

    class Status(models.TextChoices):
        STARTED = "started"
        COMPLETED = "completed"

    # Unique through Meta.constraints rather than unique=True, which on PostgreSQL also builds a
    # second, LIKE-pattern index that no query here uses.
    key = models.CharField(max_length=255)
    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="journal")
    kind = models.CharField(max_length=10)
    name = models.CharField(max_length=200)
    request_digest = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(fields=["key"], name="journal_unique_key"),
            models.CheckConstraint(condition=models.Q(status__in=["started", "completed"]), name="journal_status_valid"),
            models.CheckConstraint(condition=models.Q(kind__in=["llm", "tool"]), name="journal_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.key


class WorkspaceFile(models.Model):
    """A file a task's tools wrote; the workspace lives in the database, so it survives any worker."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=500)
    content = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "path"]
        constraints = [models.UniqueConstraint(fields=["task", "path"], name="workspacefile_unique_task_path")]

    def __str__(self) -> str:
        return self.path


class EndpointBreaker(models.Model):
    """The circuit breaker of one LLM endpoint and model, shared by every worker (agents/llm/breaker.py).

    Operators read it in the admin: an open breaker means tasks that need this endpoint are
    rescheduled for after `opened_at` + the cool-down instead of calling it.
    """

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"

    key = models.CharField(max_length=300, unique=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CLOSED)
    failures = models.PositiveIntegerField(default=0)  # consecutive transient failures
    opened_at = models.DateTimeField(null=True, blank=True)
    trial_started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=["closed", "open", "half_open"]), name="breaker_state_valid")
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.state}"


class Signal(models.Model):
    """A task's inbox: a signal stays here until a wait consumes it (once: consumed_key is its journal key)."""

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="signals", db_index=False)
    name = models.CharField(max_length=100)
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    consumed_key = models.CharField(max_length=500, null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "id"]
        indexes = [
            models.Index(fields=["task", "name"], name="signal_pending_idx", condition=models.Q(consumed_key__isnull=True)),
            models.Index(fields=["task", "id"], name="signal_task_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} for {self.task_id}"


class Approval(models.Model):
    """A proposed action waiting for (or decided by) a person: a flagged step or a risky tool call.

    `action` is exactly what the agent proposed and `digest` pins it; a decision applies to that
    action only (agents/approvals.py). Decisions go through tasks_app/services/approvals.py.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        STALE = "stale"  # the action under this key changed before anyone decided

    task = models.ForeignKey(AgentTask, on_delete=models.CASCADE, related_name="approvals")
    key = models.CharField(max_length=500)  # the step's or the tool call's place in the journal
    kind = models.CharField(max_length=10, choices=[("step", "step"), ("tool", "tool call")])
    step_index = models.PositiveIntegerField()
    plan_version = models.PositiveIntegerField()
    action = models.JSONField()
    digest = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    comment = models.TextField(blank=True, default="")
    edited_arguments = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["status", "-requested_at"]
        permissions = [("decide_approval", "Can approve, reject or edit an agent's proposed action")]
        constraints = [
            models.UniqueConstraint(fields=["task", "key"], name="approval_unique_task_key"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "approved", "rejected", "stale"]), name="approval_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["requested_at"], name="approval_pending_idx", condition=models.Q(status="pending"))]

    def __str__(self) -> str:
        what = self.action.get("tool") or self.action.get("step")
        return f"{self.kind} {what} ({self.status})"


class GoalTemplate(models.Model):
    """A goal that celery-beat starts on a schedule (issue 5): each run is a new task from this template.

    The schedule is a django-celery-beat PeriodicTask (task "horizon.start_goal", kwargs {"template": name}),
    so operators see and edit it in the admin next to the sweep. Services: tasks_app/services/schedules.py.
    A disabled template keeps its schedule row but starts nothing (and the row is disabled too).
    """

    name = models.CharField(max_length=100, unique=True)
    goal = models.TextField()
    context = models.JSONField(default=dict, blank=True)
    profile = models.CharField(max_length=100, default="default")
    max_steps = models.PositiveIntegerField(null=True, blank=True)  # None: the HORIZON_MAX_STEPS setting
    enabled = models.BooleanField(default=True)
    # SET_NULL: deleting the schedule in the admin stops the runs but keeps the template.
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="goal_template"
    )
    # Set by the conditional UPDATE that starts a run: a second beat (a rolling deploy) or a
    # duplicated message within START_GUARD_SECONDS starts nothing (tasks_app/services/schedules.py).
    last_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MemoryItem(models.Model):
    """A fact in an agent's long-term memory (agents/recall/), scoped to a task or to a profile.

    The vector is float32 bytes (4 bytes a dimension), with the embedder that made it: a search only
    compares items of one embedder and dimension. Written by the remember tool, as upserts on a
    natural key: (scope, scope_id, key) for a named fact, the call's journal key otherwise.
    """

    class Scope(models.TextChoices):
        TASK = "task"
        PROFILE = "profile"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    scope_id = models.CharField(max_length=200)  # the task id, or the profile name
    key = models.CharField(max_length=100, blank=True, default="")
    text = models.TextField()
    embedding = models.BinaryField()
    embedder = models.CharField(max_length=200)
    dim = models.PositiveIntegerField()
    metadata = models.JSONField(default=dict, blank=True)
    source_key = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["scope", "scope_id", "embedder", "dim"], name="memoryitem_scope_embedder")]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=["task", "profile"]), name="memoryitem_scope_valid"),
            models.UniqueConstraint(
                fields=["scope", "scope_id", "key"], condition=~models.Q(key=""), name="memoryitem_unique_key"
            ),
            models.UniqueConstraint(
                fields=["source_key"], condition=models.Q(key="") & ~models.Q(source_key=""), name="memoryitem_unique_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.scope_id}: {self.text[:60]}"


# The JSON API's tables (tokens, rate windows, webhook deliveries) live in their own module.
from tasks_app.api_models import ApiRateWindow, ApiToken, WebhookDelivery  # noqa: E402, F401
