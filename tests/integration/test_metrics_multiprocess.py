"""Metrics recorded inside a real prefork `celery worker` show up at /metrics served by another process.

The worker runs with PROMETHEUS_MULTIPROC_DIR set (as every process of a deployment would), its pool
children tick the goals, and this process (standing in for the web process) serves /metrics with
the same directory: the counts must be the workers' exactly, since this process ticked nothing. The
worker also logs in JSON, each tick's line carrying its task, step, lease epoch and worker.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from django.db.models import Sum
from django.test import Client, override_settings

from agents.status import TaskStatus
from tasks_app.models import AgentTask
from tasks_app.services.tasks import agent_task_create
from tests.support.processes import CeleryWorker

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

GOALS, STEPS = 3, 2


def scrape(directory: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with override_settings(PROMETHEUS_MULTIPROC_DIR=str(directory)):
        response = Client().get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def test_worker_metrics_reach_the_web_process(worker_env: dict[str, str], tmp_path: Path) -> None:
    scenario = tmp_path / "noop.json"
    scenario.write_text(
        json.dumps({"name": "obs", "plan": [{"title": f"Step {i}"} for i in range(STEPS)], "default_step": [{"final": "ok"}]})
    )
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        **worker_env,
        "HORIZON_SCENARIO": str(scenario),
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "HORIZON_LOG_FORMAT": "json",
        "HORIZON_LOG_LEVEL": "DEBUG",
    }
    worker = CeleryWorker(env=env, name="obs", concurrency=2, log_dir=tmp_path)
    with worker:
        with override_settings(HORIZON_DISPATCH="celery"):
            ids = [str(agent_task_create(goal=f"Metrics goal {i}").pk) for i in range(GOALS)]
        deadline = time.monotonic() + 90
        while AgentTask.objects.filter(pk__in=ids, status=TaskStatus.COMPLETED).count() < GOALS:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.3)
    # The worker has stopped (its children ran worker_process_shutdown); their files stay.
    files = sorted(p.name for p in directory.iterdir())
    assert files and all(str(os.getpid()) not in name for name in files), files

    samples = scrape(directory)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    assert value("horizon_ticks_total", decision="plan", result="committed") == GOALS
    assert value("horizon_ticks_total", decision="step", result="committed") == GOALS * STEPS
    assert value("horizon_step_duration_seconds_count") == GOALS * STEPS
    assert value("horizon_tick_overhead_seconds_count") == GOALS * (STEPS + 1)
    spent = AgentTask.objects.filter(pk__in=ids).aggregate(calls=Sum("model_calls"), prompt=Sum("prompt_tokens"))
    calls = sum(v for (name, _), v in samples.items() if name == "horizon_model_calls_total")
    prompt = sum(
        v for (name, labels), v in samples.items() if name == "horizon_model_tokens_total" and ("kind", "prompt") in labels
    )
    assert calls == spent["calls"] == GOALS * (STEPS + 1)
    assert prompt == spent["prompt"] > 0
    assert value("horizon_tasks", status="completed") == GOALS  # from the database, at scrape time

    # The worker's own log: JSON lines, the tick lines with the tick's context.
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    ticks = [line for line in lines if line["logger"] == "horizon.tick"]
    assert len(ticks) == GOALS * (STEPS + 1)
    assert {line["task_id"] for line in ticks} == set(ids)
    assert all(line["epoch"] and line["worker"] for line in ticks)
    assert sorted(line["step"] for line in ticks if line["step"] is not None) == sorted(list(range(STEPS)) * GOALS)
