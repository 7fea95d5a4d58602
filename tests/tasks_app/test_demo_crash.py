"""The demo's crash and resume, as a user runs it: a real SIGKILL of the run_goal process on SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The embedded default as a new user has it: a fresh SQLite file, in-process dispatch."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "HORIZON_VAR_DIR": str(tmp_path),
        "HORIZON_DISPATCH": "inprocess",
    }
    env.pop("HORIZON_TEST_SQLITE_ALIAS", None)
    assert manage("migrate", "--verbosity", "0", env=env).returncode == 0
    return env


def test_a_killed_run_resumes_from_its_last_checkpoint(env: dict[str, str]) -> None:
    crashed = manage("run_goal", "Onboard Acme Corp", "--crash-after", "3", env=env)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert "step 2/7" in crashed.stdout and "step 3/7" not in crashed.stdout
    task_id = crashed.stdout.split("drive --task ")[1].split()[0]

    resumed = manage("drive", "--task", task_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed"
    assert [s["status"] for s in result["steps"]] == ["completed"] * 7
    assert [s["attempts"] for s in result["steps"]] == [1] * 7  # nothing ran twice
    assert result["ticks"] == 5  # steps 3..7 only

    status = json.loads(manage("task_status", task_id, "--json", env=env).stdout)
    assert status["events"] == 10 and status["checkpoint"] == {"seq": 8, "event_seq": 10}


def test_a_run_killed_mid_step_reuses_the_journaled_calls(env: dict[str, str]) -> None:
    crashed = manage("run_goal", "Onboard Acme Corp", "--crash-in-step", "3", env=env)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert "--crash-in-step 3" in crashed.stdout and "step 3/7" not in crashed.stdout
    task_id = crashed.stdout.split("drive --task ")[1].split()[0]

    # The dead process still holds the lease; the driver sees its pid is gone and frees it at once.
    resumed = manage("drive", "--task", task_id, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "step 3/7 Provision the workspace" in resumed.stdout
    assert "(2 journaled calls reused)" in resumed.stdout  # the model's tool call and the tool result
    status = json.loads(manage("task_status", task_id, "--json", env=env).stdout)
    assert status["status"] == "completed" and status["resume_count"] == 1
    assert [s["attempts"] for s in status["steps"]] == [1, 1, 2, 1, 1, 1, 1]
