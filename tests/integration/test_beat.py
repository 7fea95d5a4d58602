"""The sweeper end to end: two real `celery beat` processes and one real `celery worker`.

Nothing in this process rings a doorbell. One task's first message was never sent (it was created
with in-process dispatch), the other was claimed by a worker that died holding its lease. Only the
beats' `horizon.sweep` messages, run by the worker, can bring either back; two beats running at
once (as after a careless deploy) must not double the stalled task's recovery.
"""

from __future__ import annotations

import importlib
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.test import override_settings
from django.utils import timezone

from agents.events import TASK_STALLED
from agents.status import TaskStatus
from tasks_app.models import AgentTask, Event
from tasks_app.services.tasks import agent_task_create
from tasks_app.store import DjangoStore
from tests.support.broker import Broker
from tests.support.processes import CeleryBeat, CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

DEAD_OWNER = "dead-host:999999:w1"
SETTLE_TIMEOUT = 30.0  # two beat intervals of 5 s, a tick per step, and process start-up, with room
SCHEDULE_MIGRATION = importlib.import_module("tasks_app.migrations.0005_sweep_schedule")


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    """Overrides the conftest's: two plain steps, no tools, so the test measures the sweep, not the work."""
    path = tmp_path / "scenario.json"
    path.write_text(
        json.dumps(
            {
                "name": "beat",
                "plan": [{"title": f"Step {i}", "instructions": f"Do part {i}."} for i in range(2)],
                "steps": {},
                "default_step": [{"final": "done: {title}"}],
            }
        )
    )
    return path


def describe(task_ids: list[str], worker: CeleryWorker, beats: list[CeleryBeat]) -> str:
    lines = [
        f"  {t.id} {t.status} owner={t.lease_owner} next_run_at={t.next_run_at} enqueued_at={t.enqueued_at} "
        f"reason={t.status_reason!r}"
        for t in AgentTask.objects.filter(pk__in=task_ids)
    ]
    tail = worker.log_path.read_bytes()[-3000:].decode(errors="replace") if worker.log_path.exists() else "(no log)"
    lines.append(f"--- worker ---\n{tail}")
    lines += [f"--- {b.name} ---\n{b.log()[-2000:]}" for b in beats]
    return "\n".join(lines)


@pytest.mark.django_db(transaction=True)
def test_two_beats_and_a_worker_recover_a_lost_doorbell_and_a_dead_lease_once(
    worker_env: dict[str, str], broker: Broker, tmp_path: Path
) -> None:
    # Transactional tests before this one flushed the migrated schedule row: write it again, with
    # the migration's own (idempotent) code.
    SCHEDULE_MIGRATION.create_schedule(apps, None)

    with override_settings(HORIZON_DISPATCH="inprocess"):
        lost = str(agent_task_create(goal="Its first tick was never sent").id)
        stalled = str(agent_task_create(goal="Its worker died holding the lease").id)
    lease = DjangoStore().claim(stalled, owner=DEAD_OWNER, lease_seconds=300)
    assert lease is not None
    AgentTask.objects.filter(pk=stalled).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    assert broker.queued() == []  # no doorbell at all: only a sweep can ring one

    env = {
        **worker_env,
        "HORIZON_TOOL_MODULES": "",
        # agent_task_create stamped the lost task's enqueued_at as though its message were sent:
        # the sweep re-rings it once this much time passed without a claim.
        "HORIZON_SWEEP_REDELIVER_AFTER": "2",
    }
    # Two pool processes: the two beats' sweeps can run at the same moment, as on a real fleet.
    worker = CeleryWorker(env=env, name="sweep-worker", concurrency=2, log_dir=tmp_path)
    beats = [CeleryBeat(env=env, name=f"beat{i}", run_dir=tmp_path / f"beat{i}") for i in (1, 2)]
    task_ids = [lost, stalled]
    try:
        worker.start()
        for beat in beats:
            beat.start()
        started = time.monotonic()
        while True:
            statuses = dict(AgentTask.objects.filter(pk__in=task_ids).values_list("id", "status"))
            if all(s == TaskStatus.COMPLETED for s in statuses.values()):
                break
            if time.monotonic() - started > SETTLE_TIMEOUT:
                pytest.fail(f"not completed after {SETTLE_TIMEOUT:.0f}s\n{describe(task_ids, worker, beats)}")
            assert all(b.alive() for b in beats), describe(task_ids, worker, beats)
            time.sleep(0.3)
        # Let both beats fire at least once more: a late sweep must not touch finished tasks.
        time.sleep(6)
        assert all(b.alive() for b in beats), describe(task_ids, worker, beats)
    finally:
        for beat in beats:
            beat.stop()
        worker.stop()

    assert [e.payload for e in Event.objects.filter(task_id=stalled, type=TASK_STALLED)] == [{"previous_owner": DEAD_OWNER}]
    assert not Event.objects.filter(task_id=lost, type=TASK_STALLED).exists()
    for task_id in task_ids:
        task = AgentTask.objects.get(pk=task_id)
        assert task.status == TaskStatus.COMPLETED and task.steps_completed == 2
        seqs = list(Event.objects.filter(task_id=task_id).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, task.last_event_seq + 1))
    assert AgentTask.objects.get(pk=stalled).resume_count == 1
    # Both beats really ran the schedule, and the worker ran their sweeps without an error.
    for beat in beats:
        assert "Sending due task horizon.sweep" in beat.log(), beat.log()
    worker_log = worker.log_path.read_text(errors="replace")
    # The sweeps that recovered the two tasks said so; routine sweeps leave no lines (test_sweep_quiet.py).
    assert "sweep: {" in worker_log and "Task horizon.tick[" in worker_log and "succeeded" in worker_log
    assert "raised unexpected" not in worker_log, worker_log[-3000:]
