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


# --- the deploy gate (issue 15): verbatim, changed, escalate ---------------------------------


def test_the_gate_says_verbatim_for_a_history_this_build_asks_exactly() -> None:
    task_id = recorded_task()
    out = run("regress", "--gate", task_id)
    assert f"task {task_id} (completed): verbatim" in out
    assert "1 verbatim, 0 changed, 0 escalate" in out


def test_the_gate_says_changed_when_a_recorded_request_renders_differently() -> None:
    task_id = recorded_task()
    key = f"{task_id}/p1/s1/c0"
    JournalEntry.objects.filter(key=key).update(request_digest="0" * 64)  # recorded by other code
    out = run("regress", "--gate", task_id)  # a change is no reason to stop a deploy
    assert f"task {task_id} (completed): changed: 1 recorded request(s) render differently, first at {key}" in out
    [report] = json.loads(run("regress", "--gate", task_id, "--json"))
    assert report["verdict"] == "changed" and report["changes"][0]["key"] == key
    assert report["replay"]["replay_status"] == "completed"


def test_the_gate_refuses_a_deploy_that_removed_a_tool_a_running_step_called() -> None:
    from agents.tools import default_registry
    from tests.support.mail_tool import registered_mail_tool

    scenario = make_scenario(
        2,
        tool_steps={
            0: [
                {"tool": "gate_send_mail", "arguments": {"to": "ops", "subject": "hi"}},
                {"tool": "wait_for_signal", "arguments": {"names": ["go"]}},
                {"final": "sent"},
            ]
        },
    )
    sent: list[dict[str, Any]] = []
    with registered_mail_tool("gate_send_mail", sent):
        task = agent_task_create(goal="Mail ops, then wait")
        agent_task_drive(task_id=str(task.id), model=ScriptedModel(scenario))
        assert AgentTask.objects.get(pk=task.id).status == "waiting" and len(sent) == 1
        out = run("regress", "--gate", "--in-flight")
        assert f"task {task.id} (waiting): changed" not in out  # the same build: nothing changed
    assert "gate_send_mail" not in default_registry.tools  # the deploy removed it
    out = StringIO()
    with pytest.raises(CommandError, match=f"1 of 1 task\\(s\\) would escalate on this build: {task.id}"):
        call_command("regress", "--gate", "--in-flight", stdout=out, stderr=StringIO())
    assert "to tool 'gate_send_mail' cannot be honoured: this build has no tool 'gate_send_mail'" in out.getvalue()
    assert len(sent) == 1  # the gate called nothing
