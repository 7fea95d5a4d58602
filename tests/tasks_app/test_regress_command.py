"""The regress command through call_command on PostgreSQL: a recorded task replays cleanly; one whose
recording the current code no longer matches fails the command (a CI regression test); errors."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agents.scripted import ScriptedModel
from tasks_app.models import AgentTask, JournalEntry
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.conftest import make_scenario

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def run(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def recorded_task() -> str:
    scenario = make_scenario(
        2, tool_steps={0: [{"tool": "write_file", "arguments": {"path": "a.txt", "content": "x"}}, {"final": "wrote"}]}
    )
    task = agent_task_create(goal="Write a file and report")
    agent_task_drive(task_id=str(task.id), model=ScriptedModel(scenario))
    assert AgentTask.objects.get(pk=task.id).status == "completed"
    return str(task.id)


def test_recorded_tasks_replay_without_divergence() -> None:
    first, second = recorded_task(), recorded_task()
    out = run("regress", first, second)
    assert f"task {first}: no divergence" in out
    assert f"task {second}: no divergence" in out
    reports = json.loads(run("regress", first, "--json"))
    assert reports[0]["diverged"] is False
    assert reports[0]["tool_calls"] == 1
    assert reports[0]["replay_status"] == "completed"


def test_a_recording_the_code_no_longer_matches_fails_the_command() -> None:
    task_id = recorded_task()
    # As if the recording had been made by code that asked step 1 something else.
    key = f"{task_id}/p1/s1/c0"
    assert JournalEntry.objects.filter(key=key).update(request_digest="0" * 64) == 1
    out = StringIO()
    with pytest.raises(CommandError, match=f"1 of 1 task\\(s\\) diverge: {task_id}"):
        call_command("regress", task_id, stdout=out, stderr=StringIO())
    assert f"request differs at key {key}" in out.getvalue()


def test_json_output_names_the_divergence() -> None:
    task_id = recorded_task()
    JournalEntry.objects.filter(key=f"{task_id}/p1/plan/c0").update(request_digest="0" * 64)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("regress", task_id, "--json", stdout=out, stderr=StringIO())
    report = json.loads(out.getvalue())[0]
    assert report["divergence"]["kind"] == "model_call"
    assert report["divergence"]["key"] == f"{task_id}/p1/plan/c0"


@pytest.mark.parametrize("bad", [UNKNOWN, "not-a-uuid"])
def test_unknown_task_is_a_command_error(bad: str) -> None:
    with pytest.raises(CommandError, match="unknown task"):
        run("regress", bad)


def test_a_task_id_is_required() -> None:
    with pytest.raises(CommandError):
        run("regress")
