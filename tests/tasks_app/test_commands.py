"""Every command's happy path and its errors, through call_command on PostgreSQL."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tasks_app.models import AgentTask, Event, WorkspaceFile

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_run_goal_drives_the_demo_to_completion_and_says_which_model_it_used() -> None:
    output = run("run_goal", "Onboard Acme Corp")
    assert "offline scripted model" in output
    assert "planned 7 steps" in output and "step 7/7 Write the welcome note" in output
    task = AgentTask.objects.get()
    assert task.status == "completed" and task.steps_completed == 7
    assert f"task {task.id}: completed" in output
    assert WorkspaceFile.objects.filter(task=task).count() == 6
    assert task.steps.filter(status="completed").count() == 7


def test_run_goal_json_output() -> None:
    data = json.loads(run("run_goal", "Onboard Acme Corp", "--json"))
    assert data["status"] == "completed" and len(data["steps"]) == 7 and data["checkpoint"]["seq"] == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["   "], "the goal is empty"),
        (["x" * 5000], "the limit is 4000"),
        (["ok", "--context", "{oops"], "--context is not valid JSON"),
        (["ok", "--context", "[1, 2]"], "must be a JSON object"),
    ],
)
def test_run_goal_refuses_bad_input_and_writes_nothing(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("run_goal", *args)
    assert not AgentTask.objects.exists() and not Event.objects.exists()


def test_a_malformed_scenario_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"plan": "not a list"}')
    with pytest.raises(CommandError, match="'plan' must be a non-empty list"):
        run("run_goal", "ok", "--scenario", str(bad))
    with pytest.raises(CommandError, match="not valid JSON"):
        bad.write_text("{")
        run("drive", "--scenario", str(bad))
    assert not AgentTask.objects.exists()


def test_drive_resumes_a_task_where_it_stopped() -> None:
    from tasks_app.services.tasks import agent_task_create

    task = agent_task_create(goal="Onboard Acme Corp")
    partial = run("drive", "--max-ticks", "3")
    assert "3 ticks run" in partial
    task.refresh_from_db()
    assert task.steps_completed == 2
    output = run("drive", "--task", str(task.id))
    assert "resuming task" in output and "from checkpoint #3" in output
    assert f"task {task.id}: completed" in output
    task.refresh_from_db()
    assert task.status == "completed"


@pytest.mark.parametrize("command", ["drive", "task_status"])
@pytest.mark.parametrize("bad_id", ["nope", "00000000-0000-0000-0000-000000000000"])
def test_unknown_task_ids_are_command_errors(command: str, bad_id: str) -> None:
    args = ["--task", bad_id] if command == "drive" else [bad_id]
    with pytest.raises(CommandError, match="no task with id"):
        run(command, *args)


def test_task_status_shows_steps_and_usage() -> None:
    run("run_goal", "Onboard Acme Corp")
    task = AgentTask.objects.get()
    output = run("task_status", str(task.id))
    assert "completed" in output and "[completed] step 7: Write the welcome note" in output
    data = json.loads(run("task_status", str(task.id), "--json"))
    assert data["usage"]["steps_completed"] == 7 and data["checkpoint"] == {"seq": 8, "event_seq": 10}


def test_create_goal_from_arguments_and_from_files(tmp_path: Path) -> None:
    created = run("create_goal", "Write a report", "--context", '{"team": "ops"}')
    task_id = created.splitlines()[0]  # the id alone on the first line, then the next command
    assert f"python manage.py drive --task {task_id}" in created
    task = AgentTask.objects.get(pk=task_id)
    assert (task.goal, task.context, task.status) == ("Write a report", {"team": "ops"}, "pending")
    yaml_file = tmp_path / "goal.yaml"
    yaml_file.write_text("goal: Migrate the billing tables\ncontext:\n  stage: 2\nmax_steps: 12\n")
    task = AgentTask.objects.get(pk=run("create_goal", "--file", str(yaml_file)).splitlines()[0])
    assert (task.goal, task.context, task.max_steps) == ("Migrate the billing tables", {"stage": 2}, 12)
    json_file = tmp_path / "goal.json"
    json_file.write_text('{"goal": "From JSON"}')
    assert AgentTask.objects.get(pk=json.loads(run("create_goal", "--file", str(json_file), "--json"))["id"]).goal == "From JSON"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("goal: [unclosed", "not valid JSON or YAML"),
        ("- just\n- a list\n", "must hold an object"),
        ("goal: ok\ncolour: red\n", "unknown fields in the goal file: colour"),
        ("context: {}\n", "give a goal"),
        ("goal: 42\n", "the goal must be a string"),
        ("goal: ''\n", "the goal is empty"),
    ],
)
def test_create_goal_refuses_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "goal.yaml"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("create_goal", "--file", str(path))
    assert not AgentTask.objects.exists()


def test_create_goal_with_a_missing_file() -> None:
    with pytest.raises(CommandError, match="cannot read"):
        run("create_goal", "--file", "/nonexistent/goal.yaml")


def test_the_driver_defers_a_task_whose_model_is_briefly_unavailable() -> None:
    from agents.errors import TransientError
    from agents.scripted import ScriptedModel
    from agents.types import LLMRequest, LLMResponse
    from tasks_app.services.tasks import agent_task_create, agent_task_drive
    from tests.conftest import make_scenario

    class Busy(ScriptedModel):
        def complete(self, request: LLMRequest) -> LLMResponse:
            raise TransientError("the endpoint is overloaded", retry_after=60)

    task = agent_task_create(goal="Wait for the model")
    assert agent_task_drive(model=Busy(make_scenario(1))) == 0
    task.refresh_from_db()
    assert task.lease_owner is None and task.status == "running"  # nothing lost, not due for a minute
    assert (task.next_run_at - task.updated_at).total_seconds() > 50
