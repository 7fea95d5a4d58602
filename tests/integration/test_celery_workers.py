"""Goals run to completion on real `celery worker` processes, PostgreSQL and Redis, with and without crashes.

Every step of every goal calls a tool whose side effect is a row under a primary key (the call's
journal key), written with a plain INSERT: if any step's tool ever ran twice, the second INSERT
would fail. The first test runs 20 goals of 10 steps on two healthy workers; the second SIGKILLs
the whole worker (parent and pool children, as a crashed machine would) every few seconds while
the goals are in flight, and checks that every goal still completes with each side effect exactly
once and a gap-free event log.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Q, Sum
from django.test import override_settings
from django.utils import timezone

from agents.events import STEP_COMPLETED, TASK_RESUMED
from agents.status import StepStatus, TaskStatus
from tasks_app.models import AgentTask, Checkpoint, Event, JournalEntry, Step
from tasks_app.services.tasks import agent_task_create
from tasks_app.tasks import tick
from tests.integration.conftest import STEPS
from tests.support.broker import Broker
from tests.support.processes import FAULT_TIMEOUTS, CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

GOALS = 20
SETTLED = TaskStatus.TERMINAL | {TaskStatus.REQUIRES_HUMAN}
WAIT_TIMEOUT = 180.0

# Celery's worker log lines for one message: "Task horizon.tick[<id>] received", then "succeeded
# in ...", or "raised unexpected: ...", "retry: ..." and so on.
TASK_LINE = re.compile(rb"Task horizon\.tick\[([0-9a-f-]{36})\] (\w+)")


def create_goals(count: int) -> list[str]:
    # Creation commits the task and, on commit, publishes its first horizon.tick: the only message
    # a goal ever gets from this process. Everything after is the workers' doing.
    with override_settings(HORIZON_DISPATCH="celery"):
        return [str(agent_task_create(goal=f"Integration goal {i}").id) for i in range(count)]


def statuses(task_ids: list[str]) -> Counter[str]:
    return Counter(AgentTask.objects.filter(pk__in=task_ids).values_list("status", flat=True))


def wait_until_settled(
    task_ids: list[str], *, timeout: float, workers: list[CeleryWorker], on_poll: Callable[[], None] | None = None
) -> float:
    """Poll the database until no task can make progress on its own; returns the seconds waited."""
    started = time.monotonic()
    while True:
        counts = statuses(task_ids)
        if sum(n for status, n in counts.items() if status in SETTLED) == len(task_ids):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"goals not settled after {timeout:.0f}s: {dict(counts)}\n{describe(task_ids, workers)}")
        if on_poll is not None:
            on_poll()
        time.sleep(0.5)


def describe(task_ids: list[str], workers: list[CeleryWorker]) -> str:
    """What a failure message needs: the unfinished tasks' scheduling columns and the worker logs' tails."""
    lines = []
    for t in AgentTask.objects.filter(pk__in=task_ids).exclude(status=TaskStatus.COMPLETED):
        lines.append(
            f"  {t.id} {t.status} steps={t.steps_completed} next_run_at={t.next_run_at} owner={t.lease_owner} "
            f"expires={t.lease_expires_at} attempts={t.step_attempts} reason={t.status_reason!r}"
        )
    for w in workers:
        tail = w.log_path.read_bytes()[-3000:].decode(errors="replace") if w.log_path.exists() else "(no log)"
        lines.append(f"--- {w.log_path} ---\n{tail}")
    return "\n".join(lines)


def worker_messages(log_path: Path) -> tuple[set[str], set[str], list[str]]:
    """From one worker's log: the tick ids it received, the ids it finished, and any line that is not a success."""
    received: set[str] = set()
    finished: set[str] = set()
    problems: list[str] = []
    for line in log_path.read_bytes().splitlines():
        match = TASK_LINE.search(line)
        if match is None:
            continue
        message_id, what = match.group(1).decode(), match.group(2).decode()
        if what == "received":
            received.add(message_id)
        elif what == "succeeded":
            finished.add(message_id)
        else:
            finished.add(message_id)
            problems.append(line.decode(errors="replace"))
    return received, finished, problems


def assert_each_side_effect_once_and_history_intact(task_ids: list[str], table: str) -> None:
    tasks = {str(t.id): t for t in AgentTask.objects.filter(pk__in=task_ids)}
    not_completed = {i: (t.status, t.status_reason) for i, t in tasks.items() if t.status != TaskStatus.COMPLETED}
    assert not not_completed, f"goals that did not complete: {not_completed}"

    # Each step's side effect exists exactly once: the primary key refuses a second row, so a step
    # whose tool ran twice would have failed its tick, and the counts below would be short.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, task_id, step FROM {table}")
        rows = cursor.fetchall()
    assert len(rows) == len(task_ids) * STEPS
    assert len({key for key, _, _ in rows}) == len(rows)
    steps_by_task: dict[str, list[int]] = {}
    for _, task_id, step in rows:
        steps_by_task.setdefault(task_id, []).append(step)
    assert {i: sorted(s) for i, s in steps_by_task.items()} == {i: list(range(STEPS)) for i in task_ids}
    # ... and each row is the effect of exactly one journaled tool call, under that call's key.
    tool_keys = set(
        JournalEntry.objects.filter(task_id__in=task_ids, kind="tool", status="completed").values_list("key", flat=True)
    )
    assert tool_keys == {key for key, _, _ in rows}
    assert not JournalEntry.objects.filter(task_id__in=task_ids).exclude(status="completed").exists()

    for task_id, task in tasks.items():
        seqs = list(Event.objects.filter(task_id=task_id).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, task.last_event_seq + 1)), f"task {task_id}: event seqs have a gap: {seqs}"

        steps = list(Step.objects.filter(task_id=task_id).order_by("index"))
        assert [s.index for s in steps] == list(range(STEPS))
        assert all(s.status == StepStatus.COMPLETED for s in steps), f"task {task_id}: {[s.status for s in steps]}"
        assert all(s.result and s.result["tool_calls"] == 1 for s in steps)

        checkpoints = list(Checkpoint.objects.filter(task_id=task_id).order_by("seq").values_list("seq", "event_seq"))
        assert [seq for seq, _ in checkpoints] == list(range(1, task.checkpoint_seq + 1))
        assert checkpoints[-1][1] == task.last_event_seq, f"task {task_id}: the last checkpoint is behind the log"


@pytest.mark.django_db(transaction=True)  # committed rows: the workers are other processes
def test_twenty_goals_of_ten_steps_complete_on_real_workers(
    broker: Broker, side_effect_table: str, worker_env: dict[str, str], tmp_path: Path
) -> None:
    workers = [CeleryWorker(env=worker_env, name=f"w{i}", concurrency=2, log_dir=tmp_path / "logs") for i in (1, 2)]
    try:
        for w in workers:
            w.start()
        started = time.monotonic()
        task_ids = create_goals(GOALS)
        wait_until_settled(task_ids, timeout=WAIT_TIMEOUT, workers=workers)
        elapsed = time.monotonic() - started
    finally:
        for w in workers:
            w.stop()

    assert_each_side_effect_once_and_history_intact(task_ids, side_effect_table)
    problems = [line for w in workers for line in worker_messages(w.log_path)[2]]
    assert not problems, "ticks that did not succeed:\n" + "\n".join(problems)
    ticks = sum(len(worker_messages(w.log_path)[1]) for w in workers)
    print(f"\n{GOALS} goals x {STEPS} steps on 2 workers x 2 processes: {elapsed:.1f}s, {ticks} ticks")


# Short timeouts, so that a killed worker's work comes back within seconds instead of minutes. A
# SIGKILLed worker's ticks stay unacked in Redis until the visibility timeout, and its leases
# until they expire. Each layer must give up before the next one would duplicate it:
# soft limit < hard limit < lease < visibility timeout. A redelivered tick must find the dead
# worker's lease expired, or it is acked as a no-op and the goal is left without a doorbell; the
# visibility timeout keeps a margin of the hard limit over the lease for a tick claimed late.
KILL_TIMEOUTS = FAULT_TIMEOUTS
KILLS = 4
LOST_DOORBELL_AFTER = 3.0  # seconds a runnable, unleased task may go without any message for it in the broker


class LostDoorbells:
    """Finds goals that are runnable, unleased and have no message anywhere in the broker, and rings again.

    The sweeper of issue 4 does this in production: a message is only a doorbell and the table
    columns are the truth, so a lost message costs latency, never work. Until the sweeper exists
    this test driver plays its part, but narrowly. A goal whose tick sits unacked in Redis is never
    rung again here, because that message must come back by redelivery, which this test proves.
    Only a goal for which the broker holds no message at all, for LOST_DOORBELL_AFTER seconds in a
    row, is rung.

    A kill between a tick's commit and its enqueue of the next tick loses nothing: the tick's own
    message is acked only after the task function returns, so it is still unacked and comes back
    as the doorbell. What can lose a message is a kill between Redis popping it for the worker's
    BRPOP and kombu recording it in the unacked hash (kombu's Channel._brpop_read, then
    QoS.append): a window of a fraction of a millisecond, never hit in this test's runs so far,
    which is why the figures printed at the end count the re-rings.
    """

    def __init__(self, task_ids: list[str], broker: Broker) -> None:
        self.task_ids = task_ids
        self.broker = broker
        self.missing_since: dict[str, float] = {}
        self.rerung: list[str] = []

    def __call__(self) -> None:
        now = timezone.now()
        runnable = set(
            str(i)
            for i in AgentTask.objects.filter(pk__in=self.task_ids, status__in=sorted(TaskStatus.CLAIMABLE), next_run_at__lte=now)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
            .values_list("id", flat=True)
        )
        for task_id in list(self.missing_since):
            if task_id not in runnable:
                del self.missing_since[task_id]
        with_message = self.broker.task_ids_with_messages(sorted(runnable))
        for task_id in runnable:
            if task_id in with_message:
                self.missing_since.pop(task_id, None)
                continue
            first_seen = self.missing_since.setdefault(task_id, time.monotonic())
            if time.monotonic() - first_seen >= LOST_DOORBELL_AFTER:
                tick.delay(task_id)
                self.rerung.append(task_id)
                del self.missing_since[task_id]


@pytest.mark.django_db(transaction=True)  # committed rows: the workers are other processes
def test_goals_complete_exactly_once_while_the_worker_is_sigkilled_mid_step(
    broker: Broker, side_effect_table: str, worker_env: dict[str, str], tmp_path: Path
) -> None:
    t = KILL_TIMEOUTS
    assert t["CELERY_TASK_SOFT_TIME_LIMIT"] < t["CELERY_TASK_TIME_LIMIT"] < t["HORIZON_LEASE_SECONDS"]
    assert t["HORIZON_LEASE_SECONDS"] + t["CELERY_TASK_TIME_LIMIT"] < t["CELERY_VISIBILITY_TIMEOUT"]
    env = {**worker_env, **{name: str(value) for name, value in t.items()}}
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    workers: list[CeleryWorker] = []

    def fresh_worker() -> CeleryWorker:
        # A new name per incarnation: a log file each, so that redeliveries can be traced.
        worker = CeleryWorker(env=env, name=f"k{len(workers) + 1}", concurrency=2, log_dir=tmp_path / "logs")
        workers.append(worker)
        return worker.start()

    try:
        worker = fresh_worker()
        started = time.monotonic()
        task_ids = create_goals(GOALS)
        kills = 0
        while kills < KILLS:
            # 2-4 s after a worker is ready both its pool processes are inside ticks, most often in
            # the tool's sleep with the journal transaction open, or between two journal writes.
            time.sleep(rng.uniform(2.0, 4.0))
            if sum(n for s, n in statuses(task_ids).items() if s in SETTLED) == len(task_ids):
                break
            worker.kill()
            kills += 1
            worker = fresh_worker()
        lost = LostDoorbells(task_ids, broker)
        wait_until_settled(task_ids, timeout=WAIT_TIMEOUT, workers=workers, on_poll=lost)
        elapsed = time.monotonic() - started
        # Every message a killed worker held must come back and be acked by the live worker:
        # wait until the broker holds nothing, at most a visibility timeout and a few sweeps.
        drain_deadline = time.monotonic() + t["CELERY_VISIBILITY_TIMEOUT"] + 15
        while (broker.queued() or broker.unacked()) and time.monotonic() < drain_deadline:
            time.sleep(0.5)
        left_in_broker = len(broker.queued()) + len(broker.unacked())
    finally:
        for w in workers:
            w.stop()

    # Redelivery, traced through the logs: a tick a killed worker had received but not finished
    # must be received again by a later worker (the same message id, restored from Redis's
    # unacked hash after the visibility timeout).
    logs = [worker_messages(w.log_path) for w in workers]
    orphaned: set[str] = set()
    redelivered: set[str] = set()
    for i, (received, finished, _) in enumerate(logs[:-1]):
        mine = received - finished
        later = set().union(*(r for r, _, _ in logs[i + 1 :]))
        orphaned |= mine
        redelivered |= mine & later
    problems = [line for _, _, lines in logs for line in lines]
    tasks = AgentTask.objects.filter(pk__in=task_ids)
    takeovers = tasks.aggregate(n=Sum("resume_count"))["n"]
    resumed_events = Event.objects.filter(task_id__in=task_ids, type=TASK_RESUMED).count()
    retried_steps = Step.objects.filter(task_id__in=task_ids, attempts__gt=1).count()
    # A resumed step replays its journal: the model's tool call (c0) is a hit whenever the kill came
    # after it; the tool's own result (c1) too when the kill came after the tool's transaction had
    # committed, and then the tool must not have run again.
    hits = [
        p.get("journal_hits", 0)
        for p in Event.objects.filter(task_id__in=task_ids, type=STEP_COMPLETED).values_list("payload", flat=True)
    ]
    print(
        f"\nkill test (seed {seed}): {GOALS} goals x {STEPS} steps in {elapsed:.1f}s; {kills} kills, "
        f"{len(workers)} worker starts; {len(orphaned)} ticks orphaned by kills, {len(redelivered)} of them redelivered; "
        f"{takeovers} lease takeovers ({resumed_events} committed), {retried_steps} steps re-run after a kill, "
        f"{sum(1 for h in hits if h)} of them replaying journaled calls, {sum(1 for h in hits if h >= 2)} the tool's result; "
        f"{len(lost.rerung)} doorbells re-rung for a lost message {lost.rerung}"
    )

    assert kills >= 3, f"only {kills} kills landed before the goals completed: the run is too short to test anything"
    assert_each_side_effect_once_and_history_intact(task_ids, side_effect_table)
    assert left_in_broker == 0, "messages of killed workers were never redelivered and acked"
    assert orphaned, "no kill landed while a tick was in flight"
    assert redelivered == orphaned, f"ticks of killed workers never redelivered: {sorted(orphaned - redelivered)}"
    assert not problems, "ticks that did not succeed:\n" + "\n".join(problems)
    # A takeover claim counts in resume_count at once; its task.resumed event commits only with the
    # tick, so a takeover whose own worker was killed in turn leaves no event.
    assert 1 <= resumed_events <= takeovers
