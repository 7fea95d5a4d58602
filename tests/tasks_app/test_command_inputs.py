"""Hostile input to the management commands: one line, a non-zero exit, nothing written.

The values are those the agent boundary meets (a NUL, a lone surrogate, a 10,000-character path,
deep nesting, numbers of thousands of digits, bytes that are not UTF-8), fed as JSON options, as
YAML and JSON files and as file paths; negative counts are refused by every count option.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tasks_app.models import AgentTask, GoalTemplate, Signal

REPO = Path(__file__).resolve().parents[2]
LONG_PATH = "/tmp/" + "d" * 9995  # 10,000 characters
JSON_VALUES = {
    "nul": '{"a": "\\u0000"}',
    "surrogate": '{"a": "\\ud800"}',
    "deep": '{"a": ' + "[" * 3000 + "]" * 3000 + "}",
    "huge": '{"a": ' + "9" * 5000 + "}",
    "nan": '{"a": NaN}',
}
FILES = {
    "binary": b"\xff\xfe\x00\x01goal: x\n",
    "nul_json": b'{"goal": "a\\u0000b"}',
    "nul_yaml": b'goal: "a\\0b"\n',
    "nul_raw": b"goal: a\x00b\n",
    "surrogate_json": b'{"goal": "a\\ud800b"}',
    "deep_yaml": b"goal: x\ncontext: " + b"[" * 3000 + b"]" * 3000 + b"\n",
    "huge_yaml": b"goal: x\ncontext: {n: " + b"9" * 5000 + b"}\n",
    "bad_yaml": b"goal: [unclosed\ncontext: {\n  a: b\n",
    "date_yaml": b"goal: x\ncontext: {when: 2026-01-01}\n",
    "long_goal_yaml": b"goal: " + b"d/" * 5000 + b"\n",
    "long_goal_json": b'{"goal": "' + b"d/" * 5000 + b'"}',
}


def _refused(*args: Any) -> str:
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400, message
    assert "Traceback" not in message
    return message


def _nothing_written() -> None:
    assert AgentTask.objects.count() == 0 and Signal.objects.count() == 0 and GoalTemplate.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(JSON_VALUES))
def test_json_options_refuse_hostile_values(kind: str) -> None:
    raw = JSON_VALUES[kind]
    task = AgentTask.objects.create(goal="existing")
    for args in (
        ("run_goal", "a goal", "--context", raw),
        ("create_goal", "a goal", "--context", raw),
        ("schedule_goal", "weekly", "--goal", "g", "--every", "60", "--context", raw),
        ("send_signal", str(task.pk), "go", "--payload", raw),
        ("approve", "1", "--user", "nobody", "--arguments", raw),
    ):
        message = _refused(*args)
        assert message.startswith(("--context", "--payload", "--arguments")), message
    task.delete()
    _nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(FILES))
def test_goal_and_scenario_files_refuse_hostile_content(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "input.yaml"
    path.write_bytes(FILES[kind])
    _refused("create_goal", "--file", str(path))
    _refused("run_goal", "a goal", "--scenario", str(path))
    _refused("drive", "--scenario", str(path))
    _nothing_written()


@pytest.mark.django_db
def test_a_ten_thousand_character_path_and_a_lone_surrogate_argument_are_one_line() -> None:
    assert "cannot read the goal file" in _refused("create_goal", "--file", LONG_PATH)
    assert "cannot read scenario" in _refused("run_goal", "a goal", "--scenario", LONG_PATH)
    _refused("drive", "--scenario", LONG_PATH)
    # argv holds bytes that are not UTF-8 as lone surrogates.
    assert "lone surrogate" in _refused("create_goal", "goal \udcff")
    assert "lone surrogate" in _refused("run_goal", "goal \udcff")
    _nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ("run_goal", "g", "--crash-after", "-1"),
        ("run_goal", "g", "--crash-in-step", "-1"),
        ("drive", "--max-ticks", "-1"),
        ("search_history", "x", "q", "--limit", "-1"),
        ("create_goal", "g", "--max-steps", "-1"),
        ("create_goal", "g", "--deadline-hours", "-1"),
        ("create_goal", "g", "--deadline-hours", "nan"),
        ("schedule_goal", "n", "--goal", "g", "--every", "-1"),
        ("fork_task", "x", "--checkpoint", "-1"),
        ("follow_events", "x", "--after", "-1"),
        ("follow_events", "x", "--timeout", "-1"),
        ("stuck_tasks", "--human-hours", "-1"),
        ("approve", "-1", "--user", "u"),
        ("search_history", "x", "q", "--limit", "9" * 5000),
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_negative_counts_are_refused(args: tuple[str, ...]) -> None:
    message = _refused(*args)
    assert "must be" in message or "not a whole number" in message, message
    _nothing_written()


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "HORIZON_VAR_DIR": str(tmp_path)}
    env.pop("HORIZON_TEST_SQLITE_ALIAS", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return env


def test_real_processes_print_one_line_and_exit_non_zero(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_bytes(FILES["bad_yaml"])
    runs = [
        ["run_goal", "x", "--context", json.dumps({"a": "\u0000"})],
        ["run_goal", "x", "--scenario", str(binary)],
        ["create_goal", "--file", str(binary)],
        ["create_goal", "--file", str(bad_yaml)],
        ["create_goal", "--file", LONG_PATH],
        [b"create_goal", b"goal \xff"],  # bytes that are not UTF-8, as a shell passes them
        ["drive", "--max-ticks", "-1"],
    ]
    for args in runs:
        done = subprocess.run(
            [sys.executable.encode(), b"manage.py", *[a if isinstance(a, bytes) else a.encode() for a in args]],
            cwd=REPO,
            env=sqlite_env,
            capture_output=True,
            timeout=120,
        )
        err = done.stderr.decode(errors="replace").strip()
        assert done.returncode != 0 and done.stdout == b"", (args, done.stdout)
        assert len(err.splitlines()) == 1, (args, err)  # argparse's usage block too is left out
        assert "Traceback" not in err and done.returncode in (1, 2)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("select count(*) from tasks_app_agenttask").fetchone() == (0,)
