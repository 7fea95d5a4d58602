"""Exactly-once spawn across a real process death, on PostgreSQL: a process is SIGKILLed right after
its spawn's transaction committed (children and journal row) and before its tick's commit; a real
`manage.py drive --task` then frees the dead process's lease, resumes the step from the journal,
spawns nobody again, drives the three children and completes the parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from agents.scripted import ScriptedModel
from agents.status import TaskStatus
from tasks_app.models import AgentTask
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.support.processes import REPO, database_url
from tests.support.subtask_scenarios import fan_out_scenario

pytestmark = pytest.mark.django_db(transaction=True)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_a_process_killed_after_the_spawn_commit_spawns_nobody_twice(tmp_path: Path) -> None:
    scenario = fan_out_scenario()
    path = tmp_path / "fan_out.json"
    path.write_text(json.dumps(scenario))
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "HORIZON_SCENARIO": str(path),
        "HORIZON_TEST_SQLITE_ALIAS": "",
        "HORIZON_DISPATCH": "inprocess",
        "HORIZON_VAR_DIR": str(tmp_path),
    }
    parent = str(agent_task_create(goal="Write the report").pk)
    agent_task_drive(task_id=parent, model=ScriptedModel(scenario), max_ticks=1)  # the plan

    killed = run(["-m", "tests.support.spawn_crash", parent], env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "spawned 3 children; dying" in killed.stdout
    row = AgentTask.objects.get(pk=parent)
    assert row.status == TaskStatus.RUNNING and row.lease_owner is not None  # the dead process's lease
    assert AgentTask.objects.filter(parent_id=parent).count() == 3
    assert JournalRow.objects.get(key=f"{parent}/p1/s0/c1").status == "started"

    resumed = run(["manage.py", "drive", "--task", parent, "--json"], env)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed"
    assert AgentTask.objects.filter(parent_id=parent).count() == 3  # nobody spawned twice
    assert set(AgentTask.objects.filter(parent_id=parent).values_list("status", flat=True)) == {TaskStatus.COMPLETED}
    assert AgentTask.objects.get(pk=parent).resume_count == 1
