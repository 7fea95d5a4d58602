"""The sweeper (tasks_app/services/sweep.py) on PostgreSQL: stalled leases, lost doorbells, deadlines, stuck tasks.

Every test is transactional: the sweep reads the database clock (`now()`), which inside a test
wrapped in one transaction would stand still at the test's start. Rows are put into the state a
crash, a lost message or the passing of time would leave them in with plain UPDATEs; everything
after that is the sweep's and the runner's own doing.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from agents import events as ev
from agents.errors import LeaseLost
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.status import TaskStatus
from agents.store import CommitResult
from agents.types import JournalEntry, Lease, NewEvent, TickCommit
from horizon_project.celery import app as celery_app
from tasks_app.models import AgentTask, Event
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.services.control import agent_task_pause
from tasks_app.services.sweep import SWEEP_LOCK_ID, SweepReport, sweep
from tasks_app.services.tasks import agent_task_create, agent_task_drive, agent_task_tick
from tasks_app.store import DjangoStore
from tasks_app.tasks import sweep as sweep_task
from tests.conftest import make_scenario
from tests.support.broker import Broker
from tests.support.processes import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DEAD_OWNER = "dead-host:999999:w1"


def new_task(goal: str = "Sweep me", *, max_attempts: int = 5, **fields: object) -> str:
    """A task as agent_task_create leaves it (inprocess: no message), then put into `fields`' state."""
    with override_settings(HORIZON_DISPATCH="inprocess"):
        task_id = str(agent_task_create(goal=goal, max_attempts=max_attempts).id)
    if fields:
        AgentTask.objects.filter(pk=task_id).update(**fields)
    return task_id


def claimed_by_dead_owner(task_id: str, *, owner: str = DEAD_OWNER) -> Lease:
    """Claim as a worker that then dies: its lease is moved into the past, as if time ran out."""
    lease = DjangoStore().claim(task_id, owner=owner, lease_seconds=300)
    assert lease is not None
    AgentTask.objects.filter(pk=task_id).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    return lease


def events_of(task_id: str, type_: str) -> list[Event]:
    return list(Event.objects.filter(task_id=task_id, type=type_).order_by("seq"))


def assert_gap_free(task_id: str) -> None:
    task = AgentTask.objects.get(pk=task_id)
    seqs = list(Event.objects.filter(task_id=task_id).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, task.last_event_seq + 1))


def changed(report: SweepReport) -> dict[str, int]:
    return {k: n for k, n in report.counts().items() if n}


# --- stalled leases ----------------------------------------------------------------------------


def test_a_dead_owners_expired_lease_is_cleared_once_and_the_dead_owner_is_fenced() -> None:
    task_id = new_task()
    lease = claimed_by_dead_owner(task_id)
    before = AgentTask.objects.get(pk=task_id)
    assert before.lease_owner == DEAD_OWNER and before.enqueued_at is None  # the claim consumed the doorbell

    report = sweep()

    assert report.stalled == [task_id]
    assert task_id not in report.enqueued  # the stall's own tick is the only one, not a second "due" one
    after = AgentTask.objects.get(pk=task_id)
    assert after.lease_owner is None and after.lease_expires_at is None
    assert after.lease_epoch == before.lease_epoch + 1
    assert after.resume_count == before.resume_count + 1
    assert after.next_run_at is not None and after.next_run_at <= timezone.now()
    assert after.enqueued_at is not None
    assert after.status == TaskStatus.RUNNING
    stalled = events_of(task_id, ev.TASK_STALLED)
    assert len(stalled) == 1
    assert stalled[0].payload == {"previous_owner": DEAD_OWNER} and stalled[0].worker == "sweeper"
    assert_gap_free(task_id)

    # The dead owner wakes up: nothing it writes may land.
    store = DjangoStore()
    assert lease.task is not None
    late = TickCommit(
        base_event_seq=lease.task.last_event_seq,
        base_checkpoint_seq=lease.task.checkpoint_seq,
        events=(NewEvent(ev.TASK_COMPLETED, {"result": "from the grave"}),),
        checkpoint_state={},
        status=TaskStatus.COMPLETED,
    )
    assert store.commit(lease, late) is CommitResult.FENCED
    entry = JournalEntry(key=f"{task_id}/late", kind="tool", name="t", request_digest="d", status="started")
    with pytest.raises(LeaseLost):
        store.journal_begin(lease, entry)
    with pytest.raises(LeaseLost):
        store.journal_complete(lease, JournalEntry(**{**entry.__dict__, "status": "completed"}))
    assert not JournalRow.objects.filter(task_id=task_id).exists()
    assert AgentTask.objects.get(pk=task_id).status == TaskStatus.RUNNING

    # A second sweep finds nothing more to do for it.
    again = sweep()
    assert task_id not in again.stalled + again.enqueued
    assert len(events_of(task_id, ev.TASK_STALLED)) == 1
    assert AgentTask.objects.get(pk=task_id).lease_epoch == after.lease_epoch

    # And a live worker takes the task over and finishes it.
    agent_task_drive(task_id=task_id)
    assert AgentTask.objects.get(pk=task_id).status == TaskStatus.COMPLETED
    assert_gap_free(task_id)


def test_a_live_lease_is_not_stalled() -> None:
    task_id = new_task()
    lease = DjangoStore().claim(task_id, owner="live-host:1:w1", lease_seconds=300)
    assert lease is not None
    report = sweep()
    assert task_id not in report.stalled + report.enqueued
    assert AgentTask.objects.get(pk=task_id).lease_owner == "live-host:1:w1"
    assert not events_of(task_id, ev.TASK_STALLED)


# --- lost doorbells and due timers -------------------------------------------------------------


@override_settings(HORIZON_SWEEP_REDELIVER_AFTER=30.0)
def test_a_runnable_task_without_a_recent_message_is_enqueued_and_stamped() -> None:
    never_sent = new_task("never sent", enqueued_at=None)
    fresh = new_task("sent just now")  # agent_task_create stamps enqueued_at
    recent = new_task("sent 20 s ago", enqueued_at=timezone.now() - timedelta(seconds=20))
    old = new_task("sent 40 s ago, never claimed", enqueued_at=timezone.now() - timedelta(seconds=40))
    stamps = {str(k): v for k, v in AgentTask.objects.values_list("id", "enqueued_at")}
    started = timezone.now()

    report = sweep()

    assert sorted(report.enqueued) == sorted([never_sent, old])
    for task_id in (never_sent, old):
        stamped = AgentTask.objects.get(pk=task_id).enqueued_at
        assert stamped is not None and stamped >= started - timedelta(seconds=1)
    # Rung within the last 30 s: the message may simply be waiting in a busy queue.
    assert AgentTask.objects.get(pk=fresh).enqueued_at == stamps[fresh]
    assert AgentTask.objects.get(pk=recent).enqueued_at == stamps[recent]
    # Just stamped: the next sweep leaves all four alone.
    assert sweep().enqueued == []


def test_the_celery_task_runs_one_sweep_and_returns_its_counts() -> None:
    due = new_task(enqueued_at=None)
    counts = sweep_task()  # what the worker runs for celery-beat's message
    assert counts["enqueued"] == 1 and counts["stalled"] == 0
    assert AgentTask.objects.get(pk=due).enqueued_at is not None


def test_with_celery_dispatch_the_sweep_really_puts_ticks_on_the_broker(broker: Broker) -> None:
    due = new_task("lost doorbell", enqueued_at=None)
    stalled = new_task("dead worker")
    claimed_by_dead_owner(stalled)
    quiet = new_task("already rung")
    broker.purge()

    with override_settings(HORIZON_DISPATCH="celery"):
        report = sweep()

    assert report.enqueued == [due] and report.stalled == [stalled]
    messages = broker.queued()
    assert len(messages) == 2, messages
    assert all(b"horizon.tick" in raw for raw in messages)
    assert broker.task_ids_with_messages([due, stalled, quiet]) == {due, stalled}
    # A second sweep sends nothing more.
    with override_settings(HORIZON_DISPATCH="celery"):
        assert changed(sweep()) == {}
    assert len(broker.queued()) == 2


def test_a_waiting_task_is_enqueued_when_its_timer_is_due_and_not_before() -> None:
    now = timezone.now()
    due_timer = new_task("timer due", status=TaskStatus.WAITING, next_run_at=now - timedelta(seconds=1), enqueued_at=None)
    future_timer = new_task("timer later", status=TaskStatus.WAITING, next_run_at=now + timedelta(hours=1), enqueued_at=None)
    for_a_signal = new_task("waits for a signal", status=TaskStatus.WAITING, next_run_at=None, enqueued_at=None)
    others = [
        new_task(f"{status} with an old schedule", status=status, next_run_at=now - timedelta(hours=1), enqueued_at=None)
        for status in (TaskStatus.REQUIRES_HUMAN, TaskStatus.PAUSED, TaskStatus.COMPLETED, TaskStatus.FAILED)
    ]

    report = sweep()

    assert report.enqueued == [due_timer]
    for task_id in (future_timer, for_a_signal, *others):
        assert AgentTask.objects.get(pk=task_id).enqueued_at is None


# --- deadlines ---------------------------------------------------------------------------------


def test_a_task_past_its_deadline_fails_and_a_step_past_its_deadline_escalates() -> None:
    now = timezone.now()
    past, future = now - timedelta(minutes=1), now + timedelta(hours=1)
    late = {
        status: new_task(f"late {status}", status=status, deadline=past)
        for status in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.WAITING, TaskStatus.REQUIRES_HUMAN)
    }
    on_time = new_task("on time", status=TaskStatus.RUNNING, deadline=future)
    finished = new_task("finished late", status=TaskStatus.COMPLETED, deadline=past)
    late_step = new_task("late step", status=TaskStatus.RUNNING, step_deadline_at=past)
    step_on_time = new_task("step on time", status=TaskStatus.RUNNING, step_deadline_at=future)
    # A step deadline only holds while the task is expected to work on its own.
    step_idle = {
        status: new_task(f"idle {status}", status=status, step_deadline_at=past)
        for status in (TaskStatus.WAITING, TaskStatus.PAUSED, TaskStatus.REQUIRES_HUMAN, TaskStatus.COMPLETED)
    }
    # A live worker in the middle of the late task's tick is fenced by the failure.
    live = DjangoStore().claim(late[TaskStatus.PENDING], owner="live-host:1:w1", lease_seconds=300)
    assert live is not None and live.task is not None

    report = sweep()

    assert sorted(report.deadline_failed) == sorted(late.values())
    assert report.step_deadline_escalated == [late_step]
    for task_id in late.values():
        task = AgentTask.objects.get(pk=task_id)
        assert task.status == TaskStatus.FAILED and "deadline" in task.status_reason
        assert task.next_run_at is None and task.lease_owner is None
        [event] = events_of(task_id, ev.DEADLINE_EXCEEDED)
        assert event.payload["kind"] == "task"
        assert_gap_free(task_id)
    step = AgentTask.objects.get(pk=late_step)
    assert step.status == TaskStatus.REQUIRES_HUMAN and "deadline" in step.status_reason
    assert step.step_deadline_at is None and step.next_run_at is None
    [event] = events_of(late_step, ev.DEADLINE_EXCEEDED)
    assert event.payload["kind"] == "step"
    for task_id in (on_time, finished, step_on_time, *step_idle.values()):
        assert not events_of(task_id, ev.DEADLINE_EXCEEDED)
    assert AgentTask.objects.get(pk=finished).status == TaskStatus.COMPLETED
    assert {AgentTask.objects.get(pk=i).status for i in step_idle.values()} == set(step_idle)

    commit = TickCommit(
        base_event_seq=live.task.last_event_seq,
        base_checkpoint_seq=live.task.checkpoint_seq,
        events=(),
        checkpoint_state={},
        status=TaskStatus.RUNNING,
        runnable=True,
    )
    assert DjangoStore().commit(live, commit) is CommitResult.FENCED

    again = sweep()
    assert again.deadline_failed == [] and again.step_deadline_escalated == []


def test_a_paused_task_past_its_deadline_fails_and_does_not_wedge_the_sweep() -> None:
    """A task an operator paused is still ACTIVE, so the deadline scan (and agenttask_deadline_idx)
    finds it; it must fail like any other late task, and must never stop the sweep.

    This once wedged every sweep: PAUSED had no edge to FAILED, the TransitionError escaped sweep()
    and rolled it back, and every later sweep failed on the same row. Now the edge exists, and a
    refused change is skipped (sweep._apply) rather than undoing the sweep.
    """
    late_paused = new_task("paused, then late", deadline=timezone.now() + timedelta(hours=1))
    agent_task_pause(task_id=late_paused, reason="looking into it")
    AgentTask.objects.filter(pk=late_paused).update(deadline=timezone.now() - timedelta(minutes=1))
    lost = new_task("lost doorbell", enqueued_at=None)
    stalled = new_task("dead worker")
    claimed_by_dead_owner(stalled)

    report = sweep()

    assert report.enqueued == [lost] and report.stalled == [stalled]
    assert report.deadline_failed == [late_paused]
    task = AgentTask.objects.get(pk=late_paused)
    assert task.status == TaskStatus.FAILED and "deadline" in task.status_reason
    [event] = events_of(late_paused, ev.DEADLINE_EXCEEDED)
    assert event.payload["kind"] == "task"


def test_the_runner_starts_a_step_deadline_that_the_sweep_then_enforces() -> None:
    profile = AgentProfile(name="default", step_deadline_minutes=10)
    runner = Runner(DjangoStore(), ScriptedModel(make_scenario(3)), profiles={"default": profile}, worker_id="w1")
    task_id = runner.create("deadlined steps")  # the task keeps the profile it was created with

    runner.tick(task_id)  # plans: step 0 becomes current

    task = AgentTask.objects.get(pk=task_id)
    assert task.steps_completed == 0 and task.step_deadline_at is not None
    expected = timezone.now() + timedelta(minutes=10)
    assert abs((task.step_deadline_at - expected).total_seconds()) < 30
    assert sweep().step_deadline_escalated == []  # not yet due

    AgentTask.objects.filter(pk=task_id).update(step_deadline_at=timezone.now() - timedelta(seconds=1))
    assert sweep().step_deadline_escalated == [task_id]
    assert AgentTask.objects.get(pk=task_id).status == TaskStatus.REQUIRES_HUMAN


# --- stuck -------------------------------------------------------------------------------------


@override_settings(HORIZON_STUCK_AFTER=60.0)
def test_a_working_task_without_progress_is_flagged_stuck_once() -> None:
    now = timezone.now()
    stuck = new_task("quiet", status=TaskStatus.RUNNING, progress_at=now - timedelta(seconds=120))
    busy = new_task("busy", status=TaskStatus.RUNNING, progress_at=now - timedelta(seconds=10))
    waiting = new_task("waiting is not stuck", status=TaskStatus.WAITING, progress_at=now - timedelta(hours=2))

    report = sweep()

    assert report.stuck == [stuck]
    task = AgentTask.objects.get(pk=stuck)
    assert task.stuck_flagged_at is not None and task.status == TaskStatus.RUNNING
    [event] = events_of(stuck, ev.TASK_STUCK)
    assert event.payload["since"] == (now - timedelta(seconds=120)).isoformat()
    assert_gap_free(stuck)
    for task_id in (busy, waiting):
        assert AgentTask.objects.get(pk=task_id).stuck_flagged_at is None
        assert not events_of(task_id, ev.TASK_STUCK)

    assert sweep().stuck == []
    assert len(events_of(stuck, ev.TASK_STUCK)) == 1

    # Progress clears the flag: the task completes, and a completed task is never stuck.
    agent_task_drive(task_id=stuck)
    task = AgentTask.objects.get(pk=stuck)
    assert task.status == TaskStatus.COMPLETED and task.stuck_flagged_at is None


@override_settings(HORIZON_STUCK_AFTER=60.0)
def test_a_task_that_never_committed_a_tick_is_flagged_stuck_too() -> None:
    """ "Without a committed tick for HORIZON_STUCK_AFTER" (sweep.py's docstring) includes a task
    that never committed one: e.g. its first planning call meets an open breaker every time, and
    each deferral refunds the claim, so neither the attempt limit nor anything else ever stops it.

    create_task stamps progress_at with the creation time (a NULL would never match the sweep's
    progress_at < since, and a COALESCE could not use agenttask_stuck_idx).
    """
    never = new_task("never got past planning", status=TaskStatus.RUNNING)
    created = AgentTask.objects.get(pk=never)
    assert created.progress_at is not None and abs((created.progress_at - created.created_at).total_seconds()) < 1
    two_hours_ago = timezone.now() - timedelta(hours=2)
    AgentTask.objects.filter(pk=never).update(created_at=two_hours_ago, progress_at=two_hours_ago)

    report = sweep()

    assert report.stuck == [never]
    assert len(events_of(never, ev.TASK_STUCK)) == 1


# --- poison steps ------------------------------------------------------------------------------


def test_a_task_that_keeps_killing_its_worker_is_re_enqueued_and_then_escalated() -> None:
    task_id = new_task("poison", max_attempts=2)
    for i in range(3):  # three workers died on it: attempts 1, 2, 3 > max_attempts
        claimed_by_dead_owner(task_id, owner=f"dead-host:{1000 + i}:w1")
    assert AgentTask.objects.get(pk=task_id).step_attempts == 3

    report = sweep()
    assert report.stalled == [task_id]

    outcome = agent_task_tick(task_id=task_id)  # what the sweep's message makes a worker do

    task = AgentTask.objects.get(pk=task_id)
    assert outcome.claimed and task.status == TaskStatus.REQUIRES_HUMAN, (task.status, task.status_reason)
    assert "attempted 2 times" in task.status_reason
    assert len(events_of(task_id, ev.TASK_ESCALATED)) == 1
    assert task.next_run_at is None or task.status not in TaskStatus.CLAIMABLE
    # No loop: the sweep has nothing more to send for it.
    assert changed(sweep()) == {}
    assert_gap_free(task_id)


# --- concurrency -------------------------------------------------------------------------------


def run_sweeps_at_once(count: int) -> list[SweepReport]:
    barrier = threading.Barrier(count)
    reports: list[SweepReport] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout=10)
            reports.append(sweep())
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a sweep did not finish"
    assert not errors, errors
    return reports


def test_two_sweeps_at_once_double_nothing() -> None:
    stalled = [new_task(f"stalled {i}") for i in range(15)]
    for task_id in stalled:
        claimed_by_dead_owner(task_id)
    due = [new_task(f"due {i}", enqueued_at=None) for i in range(15)]

    reports = run_sweeps_at_once(2)

    assert sum(r.skipped for r in reports) <= 1
    stalled_counts = Counter(i for r in reports for i in r.stalled)
    enqueued_counts = Counter(i for r in reports for i in r.enqueued)
    assert stalled_counts == Counter(stalled)
    assert enqueued_counts == Counter(due)
    for task_id in stalled:
        assert len(events_of(task_id, ev.TASK_STALLED)) == 1
        assert_gap_free(task_id)


def test_a_sweep_that_finds_the_lock_taken_returns_at_once_and_changes_nothing() -> None:
    stalled = new_task("stalled")
    claimed_by_dead_owner(stalled)
    due = new_task("due", enqueued_at=None)
    other = psycopg.connect(database_url(connection.settings_dict))
    try:
        with other.cursor() as cursor:  # another beat's sweep, in the middle of its transaction
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SWEEP_LOCK_ID])
        report = sweep()
        assert report.skipped and changed(report) == {}
        assert AgentTask.objects.get(pk=stalled).lease_owner == DEAD_OWNER
        assert AgentTask.objects.get(pk=due).enqueued_at is None
        other.rollback()  # that sweep ends; the lock goes with its transaction
        after = sweep()
        assert not after.skipped and after.stalled == [stalled] and after.enqueued == [due]
    finally:
        other.close()


# --- indexes -----------------------------------------------------------------------------------

SWEEP_QUERIES = {
    # A fragment only one of the sweep's scans has -> the partial index it must use.
    '"lease_owner" IS NOT NULL': "agenttask_due_idx",
    "FOR UPDATE SKIP LOCKED": "agenttask_due_idx",
    '"deadline" <=': "agenttask_deadline_idx",
    '"step_deadline_at" <=': "agenttask_step_deadline_idx",
    '"progress_at" <': "agenttask_stuck_idx",
}


def test_every_sweep_query_is_a_scan_of_a_partial_index_not_of_the_table() -> None:
    now = timezone.now()
    old = now - timedelta(days=30)
    idle = []
    for i in range(4000):  # a fleet at rest: finished tasks, waits on signals, timers far ahead
        if i % 4 == 0:
            status, next_run_at = TaskStatus.WAITING, None
        elif i % 4 == 1:
            status, next_run_at = TaskStatus.WAITING, now + timedelta(days=1 + i % 7)
        else:
            status, next_run_at = TaskStatus.COMPLETED, None
        idle.append(
            AgentTask(
                goal=f"idle {i}",
                status=status,
                next_run_at=next_run_at,
                progress_at=old,
                deadline=old if status == TaskStatus.COMPLETED else None,
                step_deadline_at=old if status == TaskStatus.COMPLETED else None,
            )
        )
    AgentTask.objects.bulk_create(idle, batch_size=1000)
    # A handful of rows that each question answers yes for.
    stalled = new_task("stalled")
    claimed_by_dead_owner(stalled)
    new_task("lost doorbell", enqueued_at=None)
    new_task("late", deadline=now - timedelta(minutes=1))
    new_task("late step", status=TaskStatus.RUNNING, step_deadline_at=now - timedelta(minutes=1))
    new_task("stuck", status=TaskStatus.RUNNING, progress_at=old)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {AgentTask._meta.db_table}")

    with CaptureQueriesContext(connection) as captured:
        report = sweep()
    assert all(report.counts().values()), report  # every question found its row

    table = AgentTask._meta.db_table
    scans = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"] and f'"{table}"."id" =' not in q["sql"]
    ]
    plans: dict[str, str] = {}
    for sql in scans:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        for fragment, index in SWEEP_QUERIES.items():
            if fragment in sql:
                plans[fragment] = plan
                assert index in plan, f"{fragment}: expected {index}\n{sql}\n{plan}"
        assert f"Seq Scan on {table}" not in plan, f"{sql}\n{plan}"
    assert set(plans) == set(SWEEP_QUERIES), f"sweep queries not seen: {set(SWEEP_QUERIES) - set(plans)}\n{scans}"


# --- the schedule ------------------------------------------------------------------------------


def test_migration_0005_schedules_the_sweep_every_five_seconds() -> None:
    """The schedule is data a migration writes. Transactional tests flush every table after them,
    so instead of hoping the migrated rows survived, apply migration 0005 itself (twice: a deploy
    re-runs nothing, but the operation must be idempotent) onto the state just before it."""
    executor = MigrationExecutor(connection)
    key = ("tasks_app", "0005_sweep_schedule")
    assert key in executor.loader.applied_migrations  # the test database was migrated through it
    PeriodicTask.objects.all().delete()
    IntervalSchedule.objects.all().delete()
    migration = executor.loader.get_migration(*key)
    for _ in range(2):
        state = executor.loader.project_state(key, at_end=False)
        with connection.schema_editor() as editor:
            migration.apply(state, editor)

    [periodic] = PeriodicTask.objects.filter(name="horizon.sweep")
    assert periodic.task == "horizon.sweep" and periodic.enabled
    assert periodic.interval is not None
    assert (periodic.interval.every, periodic.interval.period) == (5, "seconds")
    assert IntervalSchedule.objects.count() == 1
    # The name resolves to the task a worker runs, on the queue the workers consume.
    assert celery_app.tasks["horizon.sweep"].name == sweep_task.name == "horizon.sweep"
    assert (periodic.queue or settings.CELERY_TASK_DEFAULT_QUEUE) == "horizon"


@override_settings(HORIZON_SWEEP_REDELIVER_AFTER=30.0)
def test_a_released_tick_is_left_to_its_own_retry_before_the_sweep_rings_again() -> None:
    """A tick that failed transiently releases its lease and is retried by Celery (with backoff); the
    sweep must not ring it at once as well, which would double every retry and use up the attempts."""
    task_id = new_task("transient failure")
    store = DjangoStore()
    lease = store.claim(task_id, owner="w1", lease_seconds=60)
    assert lease is not None
    store.release(lease, retry_in=0.0)  # what the runner does on a TransientError
    assert sweep().enqueued == []
    AgentTask.objects.filter(pk=task_id).update(enqueued_at=timezone.now() - timedelta(seconds=31))
    assert sweep().enqueued == [task_id]  # its retry never came: the sweep rings it
