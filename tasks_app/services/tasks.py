"""Services for agent tasks: create, tick, drive."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from agents.errors import InvalidInput, TransientError
from agents.model import Model
from agents.profiles import profile_to_json
from agents.runner import TickOutcome, validate_new_task
from agents.status import TaskStatus
from agents.store import Store
from agents.types import NewTask
from tasks_app import dispatch
from tasks_app.conf import settings
from tasks_app.models import AgentTask
from tasks_app.runtime import build_runner, profile_tick_limits, profiles
from tasks_app.services.webhooks import callback_url_validated, webhook_deliver_due
from tasks_app.store import store_for, task_pk

logger = logging.getLogger("horizon.tasks")


def new_task_validated(
    *,
    goal: str,
    context: dict[str, Any] | None = None,
    profile: str = "default",
    max_steps: int | None = None,
    max_attempts: int | None = None,
    deadline: datetime | None = None,
    parent_id: str | None = None,
) -> NewTask:
    """The NewTask a goal makes, validated (InvalidInput), with the profile's settings as of now."""
    new = validate_new_task(
        NewTask(
            goal=goal,
            context=context if context is not None else {},
            profile=profile,
            # None means the default; 0 is refused by validate_new_task like any out-of-range value.
            max_steps=settings.HORIZON_MAX_STEPS if max_steps is None else max_steps,
            max_attempts=settings.HORIZON_MAX_ATTEMPTS if max_attempts is None else max_attempts,
            deadline=deadline,
            parent_id=parent_id,
        ),
        profiles(),
    )
    return replace(new, profile_config=profile_to_json(profiles()[new.profile]))


def agent_task_create(
    *,
    goal: str,
    context: dict[str, Any] | None = None,
    profile: str = "default",
    max_steps: int | None = None,
    max_attempts: int | None = None,
    deadline_hours: float | None = None,
    parent_id: str | None = None,
    owner: AbstractBaseUser | None = None,
    callback_url: str | None = None,
) -> AgentTask:
    """Validate and create a task (with its task.created event); enqueue its first tick on commit.

    `owner` (the JSON API's user) scopes who sees the task through the API; `callback_url` is
    notified, signed, when it completes, fails, is cancelled or waits for a person (webhooks.py).
    """
    callback_url = callback_url_validated(callback_url)
    if deadline_hours is not None and not (isinstance(deadline_hours, int | float) and 0 < deadline_hours <= 24 * 365 * 5):
        raise InvalidInput("deadline_hours must be a number of hours between 0 and 5 years")
    deadline = timezone.now() + timedelta(hours=deadline_hours) if deadline_hours is not None else None
    new = new_task_validated(
        goal=goal,
        context=context,
        profile=profile,
        max_steps=max_steps,
        max_attempts=max_attempts,
        deadline=deadline,
        parent_id=parent_id,
    )
    with transaction.atomic():
        task_id = store_for().create_task(new)
        if owner is not None or callback_url:
            AgentTask.objects.filter(pk=task_id).update(owner=owner, callback_url=callback_url)
        enqueue_tick(task_id)
    return AgentTask.objects.get(pk=task_id)


# Celery countdowns stay short: a message that waits longer than this on the broker is better
# replaced by the row's next_run_at, which the in-process driver (and the sweeper) reads.
MAX_COUNTDOWN_SECONDS = 60


def enqueue_tick(task_id: str, *, countdown: float = 0.0) -> None:
    """Ring the doorbell after commit (celery dispatch only); the row is the source of truth."""
    if settings.HORIZON_DISPATCH == "celery":
        dispatch.tick_on_commit(task_id, countdown=min(countdown, MAX_COUNTDOWN_SECONDS), time_limits=tick_time_limits(task_id))


@lru_cache(maxsize=4096)
def tick_time_limits(task_id: str) -> tuple[float, float] | None:
    """The (soft, hard) Celery time limits a tick message of this task carries, or None for the
    configured ones. A profile that allows model calls longer than the soft limit (a reasoning model)
    gets later limits; a prefork worker enforces them per message, as it does the global ones. The
    profile is frozen when the task is created, so one read per task and process is enough."""
    row = AgentTask.objects.filter(pk=task_pk(task_id)).values_list("profile_config", "profile").first()
    if row is None:
        return None
    soft, hard = profile_tick_limits(row[0], row[1])
    if (soft, hard) == (float(settings.CELERY_TASK_SOFT_TIME_LIMIT), float(settings.CELERY_TASK_TIME_LIMIT)):
        return None
    return soft, hard


def agent_task_tick(*, task_id: str, model: Model | None = None) -> TickOutcome:
    """Run one tick; if the task can go on at once, enqueue the next tick after commit."""
    runner = build_runner(model=model)
    outcome = runner.tick(task_id)
    if not outcome.claimed and _free_lease_of_dead_local_owner(runner.store, task_id):
        # A pool child died mid-tick and its message came straight back (reject_on_worker_lost):
        # its owner is provably dead, so the task need not wait for the lease to expire.
        outcome = runner.tick(task_id)
    if outcome.fenced:
        logger.warning("tick for task %s was fenced: a newer lease owner exists; its work was discarded", task_id)
    if outcome.retry_in:
        logger.info("task %s deferred %.0f s: its LLM endpoint's circuit breaker is open", task_id, outcome.retry_in)
        enqueue_tick(task_id, countdown=outcome.retry_in)
    elif outcome.runnable:
        enqueue_tick(task_id)
    # Sub-agents this tick spawned, and the parent a finished sub-agent woke (agents/subtasks.py).
    for other in (*outcome.spawned, outcome.rang_parent):
        if other:
            enqueue_tick(other)
    return outcome


def _local_pid_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _free_lease_of_dead_local_owner(store: Store, task_id: str) -> bool:
    owner = store.get_task(task_id).lease_owner
    return bool(owner) and _local_pid_dead(str(owner)) and store.break_lease(task_id, owner=str(owner))


def agent_task_reap_dead_local_leases() -> list[str]:
    """Expire leases held by processes of this host that no longer exist.

    Only a lease owner on this very host can be checked this way (a pid means nothing elsewhere);
    it spares the embedded driver the wait for a crashed run's lease to expire. Leases of other
    hosts expire on their own.
    """
    store = store_for()
    freed = []
    for task_id, owner in store.leased_tasks():
        if _local_pid_dead(owner) and store.break_lease(task_id, owner=owner):
            freed.append(task_id)
    return freed


def agent_task_drive(
    *,
    task_id: str | None = None,
    model: Model | None = None,
    max_ticks: int | None = None,
    on_tick: Callable[[TickOutcome], None] | None = None,
) -> int:
    """The in-process driver: claim due tasks and tick them until nothing is due. Returns ticks run."""
    agent_task_reap_dead_local_leases()
    runner = build_runner(model=model)
    store = runner.store
    if task_id is not None:
        store.get_task(task_id)  # raises TaskNotFound
    ticks = 0
    while max_ticks is None or ticks < max_ticks:
        # One task is driven with its sub-agents (and theirs): a parent waits for them.
        due = [task_id, *_active_descendants(task_id)] if task_id is not None else store.due_tasks(limit=50)
        progressed = False
        for tid in due:
            try:
                outcome = runner.tick(tid)
            except TransientError as exc:
                # The runner released the lease with a retry time: the task is simply not due for
                # a while. Go on with the others; a later drive (or the sweeper) comes back to it.
                logger.warning("task %s: transient failure, retrying later: %s", tid, exc)
                continue
            if outcome.claimed:
                ticks += 1
                progressed = True
                if on_tick:
                    on_tick(outcome)
            if max_ticks is not None and ticks >= max_ticks:
                break
        if not progressed:
            break
    # Embedded mode has no worker to send webhooks: the driver sends those that are due itself.
    webhook_deliver_due()
    return ticks


def _active_descendants(task_id: str) -> list[str]:
    active = AgentTask.objects.filter(parent_id=task_pk(task_id), status__in=TaskStatus.ACTIVE)
    ids = active.values_list("id", flat=True)
    found: list[str] = []
    for child in ids:
        found += [*_active_descendants(str(child)), str(child)]
    return found
