"""Sub-agents on real `celery worker` processes, PostgreSQL and Redis: a parent fans out to three
children, the workers run them (their first ticks rung by the parent's tick), each child's end rings
the parent, and the parent completes with their results. Every child step calls the side-effect
tool, whose rows prove each child's step ran exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from agents.status import TaskStatus
from tasks_app.models import AgentTask, Event
from tasks_app.services.tasks import agent_task_create
from tests.support.broker import Broker
from tests.support.processes import CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

CHILDREN = 3


def scenario() -> dict:
    children = [{"goal": f"Research part {i} of the report", "context": {"part": i}} for i in range(CHILDREN)]
    goals = {
        f"part {i} of": {
            "name": f"child-{i}",
            "plan": [{"title": f"Research part {i}"}, {"title": f"Summarise part {i}"}],
            "default_step": [{"tool": "record_side_effect", "arguments": {}}, {"final": f"part {i}: {{title}} done"}],
        }
        for i in range(CHILDREN)
    }
    return {
        "name": "celery-fan-out",
        "plan": [{"title": "Split the work"}, {"title": "Write the report"}],
        "steps": {
            "0": [{"tool": "spawn_subtasks", "arguments": {"children": children}}, {"final": "children finished"}],
            "1": [{"final": "report written"}],
        },
        "goals": goals,
    }


@pytest.mark.django_db(transaction=True)
def test_a_parent_fans_out_to_three_children_on_real_workers(
    broker: Broker, side_effect_table: str, worker_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "fan_out.json"
    path.write_text(json.dumps(scenario()))
    env = {**worker_env, "HORIZON_SCENARIO": str(path)}
    workers = [CeleryWorker(env=env, name=f"s{i}", concurrency=2, log_dir=tmp_path / "logs") for i in (1, 2)]
    try:
        for w in workers:
            w.start()
        with override_settings(HORIZON_DISPATCH="celery"):
            parent = str(agent_task_create(goal="Write the report").pk)
        deadline = time.monotonic() + 120
        while AgentTask.objects.get(pk=parent).status not in TaskStatus.TERMINAL | {TaskStatus.REQUIRES_HUMAN}:
            if time.monotonic() > deadline:
                rows = AgentTask.objects.values_list("goal", "status", "next_run_at", "lease_owner")
                pytest.fail(f"not settled: {list(rows)}\n" + "\n".join(w.log_path.read_text()[-3000:] for w in workers))
            time.sleep(0.3)
    finally:
        for w in workers:
            w.stop()

    record = AgentTask.objects.get(pk=parent)
    assert record.status == TaskStatus.COMPLETED, record.status_reason
    children = list(AgentTask.objects.filter(parent_id=parent).order_by("goal"))
    assert [c.status for c in children] == [TaskStatus.COMPLETED] * CHILDREN
    assert [c.result["output"] for c in children] == [f"part {i}: Summarise part {i} done" for i in range(CHILDREN)]
    step0 = record.steps.get(index=0)
    results = next(m for m in step0.transcript if m.get("role") == "tool")["content"]
    assert all(f"part {i}: Summarise part {i} done" in results for i in range(CHILDREN))
    assert Event.objects.filter(task_id=parent, type="child.ended").count() == CHILDREN
    # Each child step's side effect happened exactly once (the table's primary key is the call's key).
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT task_id, step FROM {side_effect_table} ORDER BY task_id, step")
        rows = cursor.fetchall()
    assert sorted(rows) == sorted((str(c.pk), s) for c in children for s in (0, 1))
    # The parent's usage includes its children's.
    assert record.prompt_tokens > sum(c.prompt_tokens for c in children) > 0
