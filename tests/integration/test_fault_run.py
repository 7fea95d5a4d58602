"""The fault run of issue 15, on real workers: an OpenAI-compatible endpoint that misbehaves the way
real ones do (500s and bad tool arguments in 30% of answers, identical tool calls repeated in one
answer), two `celery worker` processes SIGKILLed and restarted throughout, PostgreSQL and Redis.

Before canonical fingerprints, a step resumed after a kill found its recorded answer read back from
jsonb with the arguments' keys in another order, listed the validation errors in that order, and
escalated with "recorded for a different request". Now: no escalation, no code.changed (nothing
changed), every side effect once, every event chain verifies.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from agents import events as ev
from agents.status import TaskStatus
from tasks_app.models import AgentTask, Event, JournalEntry
from tasks_app.services.audit import events_verify
from tasks_app.services.sweep import sweep
from tasks_app.services.tasks import agent_task_create
from tests.integration.conftest import scratch_table
from tests.support.broker import Broker
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import FAULT_TIMEOUTS, CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

TABLE = "it_fault_effect"  # tests.support.fault_tools.TABLE (not imported here: see its docstring)
GOALS = 40
FAULT_RATE = 0.3
KILL_EVERY = 4.0  # seconds


class Misbehaving:
    """A stateless endpoint: a plan of three steps; two tool rounds a step, then an answer; and faults."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def roll(self, p: float) -> bool:
        with self.lock:
            return self.rng.random() < p

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.roll(FAULT_RATE):
            self.counts["500"] += 1
            return {"status": 500}
        if request.get("response_format"):
            steps = [{"title": f"Part {i}", "instructions": "Record it.", "depends_on": list(range(1, i))} for i in (1, 2, 3)]
            return {"content": json.dumps({"steps": steps})}
        rounds = sum(1 for m in request.get("messages", []) if m.get("role") == "tool")
        if rounds >= 2:
            return {"content": "done"}
        arguments: Any = {"text": f"round {rounds}"}
        if self.roll(FAULT_RATE):
            # Arguments the tool does not take, in a key order no store keeps (jsonb puts "zeta" first).
            self.counts["bad_arguments"] += 1
            arguments = '{"alpha": {"y": 1, "b": 2.0}, "text": 3, "zeta": [1.0, "x"]}'
        calls = [{"name": "fault_effect", "arguments": arguments, "id": "call_a"}]
        if self.roll(0.15):
            self.counts["duplicated"] += 1
            calls.append({"name": "fault_effect", "arguments": arguments, "id": "call_b"})
        return {"tool_calls": calls}


@pytest.fixture
def effect_table(transactional_db: None) -> Iterator[str]:
    with scratch_table(TABLE, "(key text PRIMARY KEY, task_id text NOT NULL, text text NOT NULL)") as table:
        yield table


@pytest.mark.django_db(transaction=True)
def test_the_fault_run_ends_without_a_mismatch(
    broker: Broker, effect_table: str, worker_env: dict[str, str], tmp_path: Path
) -> None:
    endpoint = Misbehaving(seed=15)
    started = time.monotonic()
    with FakeOpenAI(responder=endpoint) as server:
        env = {
            **worker_env,
            **{k: str(v) for k, v in FAULT_TIMEOUTS.items()},
            "OPENAI_BASE_URL": server.url,
            "OPENAI_API_KEY": "fault-run",
            "HORIZON_TOOL_MODULES": "tests.support.fault_tools",
            "HORIZON_BREAKER_FAILURES": "1000",  # the run is about resuming, not about the breaker
        }
        workers = [CeleryWorker(env=env, name=f"f{i}", concurrency=2, log_dir=tmp_path / "logs") for i in (1, 2)]
        kills = 0
        try:
            for w in workers:
                w.start()
            with override_settings(HORIZON_DISPATCH="celery"):
                ids = [str(agent_task_create(goal=f"fault run goal {i}", max_attempts=30).pk) for i in range(GOALS)]
                deadline = time.monotonic() + 240
                next_kill = time.monotonic() + KILL_EVERY
                while (
                    AgentTask.objects.filter(pk__in=ids)
                    .exclude(status__in=TaskStatus.TERMINAL | {TaskStatus.REQUIRES_HUMAN})
                    .exists()
                ):
                    if time.monotonic() > deadline:
                        pytest.fail(f"not settled: {Counter(AgentTask.objects.values_list('status', flat=True))}")
                    if time.monotonic() > next_kill:
                        victim = workers[kills % 2]
                        victim.kill()  # SIGKILL, mid-tick or not
                        victim.start()
                        kills += 1
                        next_kill = time.monotonic() + KILL_EVERY
                    sweep()
                    time.sleep(0.5)
        finally:
            for w in workers:
                w.stop()
    duration = time.monotonic() - started

    tasks = list(AgentTask.objects.filter(pk__in=ids))
    escalations = list(Event.objects.filter(task_id__in=ids, type=ev.TASK_ESCALATED).values_list("payload__reason", flat=True))
    mismatches = [r for r in escalations if "different request" in r or "cannot be honoured" in r or "cannot be read" in r]
    print(
        f"\nfault run: {GOALS} goals, {kills} kills, endpoint {dict(endpoint.counts)}; "
        f"{Counter(t.status for t in tasks)}; {len(escalations)} escalations, {len(mismatches)} by mismatch; {duration:.1f} s"
    )
    assert kills >= 3 and endpoint.counts["bad_arguments"] and endpoint.counts["500"] and endpoint.counts["duplicated"]
    assert mismatches == []
    assert escalations == []
    assert [t.status for t in tasks] == [TaskStatus.COMPLETED] * GOALS
    assert not Event.objects.filter(task_id__in=ids, type=ev.CODE_CHANGED).exists()  # nothing changed under them
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key FROM {TABLE}")
        rows = {r[0] for r in cursor.fetchall()}
    recorded = set(JournalEntry.objects.filter(name="fault_effect", status="completed").values_list("key", flat=True))
    assert rows == recorded  # every side effect once, none lost
    assert all(report.ok for report in events_verify(task_ids=ids))
