"""The sweep runs every 5 s: it must flood neither Flower nor the worker log (issue 19, item 8).

A real worker with task events on (-E, as the compose file and scripts/stack.sh run it) and an event
receiver in this process, the way Flower listens. Sweeps are sent until one of them recovers a task
whose first message was never sent: that sweep changed something, so it says so at INFO, and the
ticks it enqueued show in the events and the log. The sweeps themselves send no events and leave no
"received"/"succeeded" lines.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from agents.status import TaskStatus
from horizon_project.celery import app
from tasks_app.models import AgentTask
from tasks_app.services.tasks import agent_task_create
from tasks_app.tasks import sweep
from tests.support.broker import Broker
from tests.support.processes import CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

SETTLE_SECONDS = 30.0


class EventLog:
    """Celery task events as Flower receives them, captured in a thread until stopped."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with app.connection_for_read() as conn:
            self._receiver = app.events.Receiver(conn, handlers={"*": self.events.append})
            self._receiver.should_stop = False
            self.ready.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def __enter__(self) -> EventLog:
        self._thread.start()
        assert self.ready.wait(10), "the event receiver did not start"
        time.sleep(0.5)  # its queue is bound to the events exchange before the first event is sent
        return self

    def __exit__(self, *exc: object) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_the_sweep_sends_no_task_events_and_logs_only_what_it_changed(
    worker_env: dict[str, str], broker: Broker, tmp_path: Path
) -> None:
    with override_settings(HORIZON_DISPATCH="inprocess"):
        lost = str(agent_task_create(goal="Its first tick was never sent").id)
    env = {**worker_env, "HORIZON_TOOL_MODULES": "", "HORIZON_SWEEP_REDELIVER_AFTER": "1"}
    sweeps: list[str] = []
    with (
        EventLog() as received,
        CeleryWorker(env=env, name="quiet", concurrency=1, log_dir=tmp_path, extra_args=("-E",)) as worker,
    ):
        started = time.monotonic()
        while AgentTask.objects.get(pk=lost).status != TaskStatus.COMPLETED:
            if time.monotonic() - started > SETTLE_SECONDS:
                pytest.fail(f"not completed after {SETTLE_SECONDS:.0f}s\n{worker.log()[-3000:]}")
            sweeps.append(sweep.apply_async().id)  # as celery-beat sends it
            time.sleep(1.0)
        # Two quiet sweeps after the work is done: nothing changes, nothing is said.
        for _ in range(2):
            sweeps.append(sweep.apply_async().id)  # as celery-beat sends it
        time.sleep(2.0)
        log = worker.log()

    task_events = [e for e in received.events if str(e.get("type", "")).startswith("task-")]
    ticks = {e["uuid"] for e in task_events if e.get("name") == "horizon.tick"}
    assert ticks, f"the receiver saw no tick events: {received.events[:5]}"  # it listens like Flower
    assert not [e for e in task_events if e.get("uuid") in set(sweeps)]  # Flower lists no sweep
    assert "horizon.sweep[" not in log  # no "Task horizon.sweep[...] received / succeeded" lines
    assert "Task horizon.tick[" in log and "succeeded" in log
    # The sweep that re-rang the lost task said so; the ones that found nothing to do said nothing.
    changed = [line for line in log.splitlines() if "sweep: {" in line]
    assert any("'enqueued': 1" in line for line in changed), log[-3000:]
    assert len(changed) < len(sweeps), changed
