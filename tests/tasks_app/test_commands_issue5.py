"""Issue 5's operator commands through call_command on PostgreSQL: follow_events, approvals, approve,
reject, replay and task_status's cost and approvals; each command's happy path and its errors."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import connection

from agents.scripted import ScriptedModel
from tasks_app.models import AgentTask, Approval, Checkpoint, Event
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.conftest import make_scenario

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def run(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def finished_task(steps: int = 2) -> str:
    task = agent_task_create(goal="Write a short report")
    agent_task_drive(task_id=str(task.id), model=ScriptedModel(make_scenario(steps)))
    assert AgentTask.objects.get(pk=task.id).status == "completed"
    return str(task.id)


def waiting_for_approval() -> tuple[str, Approval]:
    """A task whose second step the planner flagged: it waits for a person before running it."""
    scenario = make_scenario(2)
    scenario["plan"][1]["needs_approval"] = True
    task = agent_task_create(goal="Send the invoices")
    agent_task_drive(task_id=str(task.id), model=ScriptedModel(scenario))
    task.refresh_from_db()
    assert task.status == "requires_human"
    return str(task.id), Approval.objects.get(task=task, status="pending")


def drive_to_end(task_id: str) -> AgentTask:
    agent_task_drive(task_id=task_id, model=ScriptedModel(make_scenario(2)))
    return AgentTask.objects.get(pk=task_id)


def user(name: str, *, may_decide: bool = True) -> User:
    u = User.objects.create_user(name, password="pw", is_staff=True)
    if may_decide:
        u.user_permissions.add(Permission.objects.get(codename="decide_approval"))
    return u


# follow_events


def test_follow_events_prints_a_finished_task_s_log_and_stops() -> None:
    task_id = finished_task()
    output = run("follow_events", task_id)
    lines = output.splitlines()
    assert lines[0].startswith("#1") and "task.created" in lines[0]
    assert "plan.created" in lines[1] and "task.completed" in lines[-2]
    assert lines[-1] == f"task {task_id} ended: completed"


def test_follow_events_after_a_seq_and_as_json() -> None:
    task_id = finished_task()
    total = Event.objects.filter(task_id=task_id).count()
    events = [json.loads(line) for line in run("follow_events", task_id, "--after", "2", "--json").splitlines()]
    assert [e["seq"] for e in events] == list(range(3, total + 1))
    assert events[-1]["type"] == "task.completed" and "result" in events[-1]["payload"]


def test_follow_events_stops_at_the_timeout_while_the_task_has_not_ended() -> None:
    task = agent_task_create(goal="Not driven")
    started = time.monotonic()
    output = run("follow_events", str(task.id), "--timeout", "0.3", "--interval", "0.05")
    assert time.monotonic() - started < 5
    assert "task.created" in output and f"timed out after 0.3 s; task {task.id} is pending" in output


@pytest.mark.django_db(transaction=True)
def test_follow_events_prints_events_as_another_process_writes_them() -> None:
    """The driver runs in another thread (its own connection, its own commits) while the command polls."""
    task = agent_task_create(goal="Write a short report")
    task_id = str(task.id)

    def drive() -> None:
        time.sleep(0.3)
        try:
            agent_task_drive(task_id=task_id, model=ScriptedModel(make_scenario(3)))
        finally:
            connection.close()

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        output = run("follow_events", task_id, "--timeout", "30", "--interval", "0.05")
    finally:
        driver.join()
    types = [line.split()[2] for line in output.splitlines() if line.startswith("#")]
    assert types == ["task.created", "plan.created", "step.completed", "step.completed", "step.completed", "task.completed"]
    assert output.splitlines()[-1] == f"task {task_id} ended: completed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no task with id 'nope'"),
        ([UNKNOWN], "no task with id"),
        ([UNKNOWN, "--after", "-1"], "argument --after: must be 0 or more"),
        ([UNKNOWN, "--timeout", "-2"], "argument --timeout: must be a finite number, 0 or more"),
        ([UNKNOWN, "--interval", "0"], "--interval must be between"),
        ([UNKNOWN, "--after", "two"], "'two' is not a whole number"),
    ],
)
def test_follow_events_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("follow_events", *args)


# approvals, approve, reject


def test_approvals_lists_the_pending_ones_then_approve_lets_the_task_finish() -> None:
    task_id, approval = waiting_for_approval()
    listing = run("approvals")
    assert f"#{approval.pk}  task {task_id}" in listing and "step 2: Step 1" in listing
    assert run("approvals", "--task", task_id) == listing
    data = json.loads(run("approvals", "--json"))
    assert [(a["id"], a["kind"], a["status"]) for a in data] == [(approval.pk, "step", "pending")]
    status = run("task_status", task_id)
    assert f"waiting for approval #{approval.pk}" in status

    user("alice")
    output = run("approve", approval.pk, "--user", "alice", "--comment", "go ahead")
    said = output.strip()
    assert said.startswith(f"approval #{approval.pk} approved by alice; nothing runs it until you run: ")
    assert said.endswith(f"python manage.py drive --task {task_id}") and "\n" not in said
    approval.refresh_from_db()
    assert (approval.status, approval.comment, approval.decided_by.username) == ("approved", "go ahead", "alice")
    assert run("approvals") == "no approvals pending\n"
    assert drive_to_end(task_id).status == "completed"


def test_reject_needs_a_comment_and_tells_the_agent_why() -> None:
    task_id, approval = waiting_for_approval()
    user("bob")
    with pytest.raises(CommandError, match="the following arguments are required: --comment"):
        run("reject", approval.pk, "--user", "bob")
    with pytest.raises(CommandError, match="a rejection needs a --comment"):
        run("reject", approval.pk, "--user", "bob", "--comment", "   ")
    output = run("reject", approval.pk, "--user", "bob", "--comment", "not this quarter")
    assert f"approval #{approval.pk} rejected by bob" in output
    event = Event.objects.filter(task_id=task_id, type="approval.decided").get()
    assert event.payload["decision"] == "rejected" and event.payload["comment"] == "not this quarter"
    with pytest.raises(CommandError, match="already decided"):
        run("approve", approval.pk, "--user", "bob")


def test_approve_errors_name_the_problem_and_decide_nothing() -> None:
    _, approval = waiting_for_approval()
    user("mallory", may_decide=False)
    user("alice")
    cases = [
        ([approval.pk, "--user", "nobody"], "no user 'nobody'"),
        ([approval.pk, "--user", "mallory"], "mallory may not decide approvals"),
        ([999_999, "--user", "alice"], "no approval #999999"),
        (["seven", "--user", "alice"], "'seven' is not a whole number"),
        ([approval.pk], "the following arguments are required: --user"),
        ([approval.pk, "--user", "alice", "--arguments", "{oops"], "--arguments is not valid JSON"),
        ([approval.pk, "--user", "alice", "--arguments", "[1]"], "--arguments must be a JSON object"),
        # A step's approval has no tool arguments to edit.
        ([approval.pk, "--user", "alice", "--arguments", "{}"], "only a tool call's arguments can be edited"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError, match=message):
            run("approve", *args)
    with pytest.raises(CommandError, match="mallory may not decide"):
        run("reject", approval.pk, "--user", "mallory", "--comment", "no")
    approval.refresh_from_db()
    assert approval.status == "pending" and not Event.objects.filter(type="approval.decided").exists()


def test_approvals_errors() -> None:
    for bad in ("nope", UNKNOWN):
        with pytest.raises(CommandError, match="no task with id"):
            run("approvals", "--task", bad)


# replay


def test_replay_matches_for_a_finished_task() -> None:
    task_id = finished_task(3)
    checkpoint = Checkpoint.objects.filter(task_id=task_id).order_by("-seq").first()
    assert checkpoint is not None
    output = run("replay", task_id)
    assert output.startswith(f"task {task_id}: matches: checkpoint #{checkpoint.seq}")
    data = json.loads(run("replay", task_id, "--json"))
    assert data["matches"] is True and data["differences"] == {} and data["state"]["status"] == "completed"
    assert data["checkpoint"] == {"seq": checkpoint.seq, "event_seq": checkpoint.event_seq}


def test_replay_of_a_task_without_a_checkpoint() -> None:
    task = agent_task_create(goal="Not driven")
    assert "no checkpoint yet; its 1 events replay cleanly" in run("replay", str(task.id))


def test_replay_names_the_keys_that_differ_and_exits_non_zero() -> None:
    task_id = finished_task(2)
    checkpoint = Checkpoint.objects.filter(task_id=task_id).order_by("-seq").first()
    assert checkpoint is not None
    tampered = {**checkpoint.state, "tool_calls": 99, "status": "running"}
    Checkpoint.objects.filter(pk=checkpoint.pk).update(state=tampered)
    out = StringIO()
    with pytest.raises(CommandError, match=f"checkpoint #{checkpoint.seq} differs in status, tool_calls"):
        call_command("replay", task_id, stdout=out)
    assert "tool_calls: checkpoint 99, replayed 0" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("replay", task_id, "--json", stdout=(out := StringIO()))
    assert json.loads(out.getvalue())["differences"]["status"] == {"checkpoint": "running", "replayed": "completed"}


def test_replay_of_a_log_this_code_cannot_read() -> None:
    task_id = finished_task(1)
    last = Event.objects.filter(task_id=task_id).order_by("-seq").first()
    assert last is not None
    Event.objects.create(task_id=task_id, seq=last.seq + 1, type="task.teleported", payload={})
    with pytest.raises(CommandError, match="cannot be replayed: event .* unknown type 'task.teleported'"):
        run("replay", task_id)


def test_replay_errors() -> None:
    for bad in ("nope", UNKNOWN):
        with pytest.raises(CommandError, match="no task with id"):
            run("replay", bad)


# task_status: the issue asks for cost too


def test_task_status_shows_cost() -> None:
    task_id = finished_task(1)
    AgentTask.objects.filter(pk=task_id).update(cost_usd=0.0125)
    data = json.loads(run("task_status", task_id, "--json"))
    assert data["usage"]["cost_usd"] == 0.0125 and data["pending_approvals"] == []
    assert "$0.0125" in run("task_status", task_id)


# The older commands' errors (their happy paths are in test_commands.py and test_control.py).


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send_signal", UNKNOWN, "go"], "no task with id"),
        (["send_signal", "nope", "go"], "no task with id"),
        (["task_control", "cancel", UNKNOWN], "no task with id"),
        (["task_control", "pause", "nope"], "no task with id"),
        (["task_control", "resume", UNKNOWN], "no task with id"),
        (["task_control", "stop", UNKNOWN], "invalid choice: 'stop'"),
        (["drive", "--task", UNKNOWN], "no task with id"),
        (["create_goal"], "give a goal"),
    ],
)
def test_every_command_refuses_unknown_ids_and_bad_input(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_sweep_and_drive_run_on_an_idle_database() -> None:
    assert json.loads(run("sweep")) == json.loads(run("sweep"))
    assert "0 ticks run; nothing more is due" in run("drive", "--scenario", "agents/scenarios/tenant_onboarding.json")


@pytest.mark.django_db
def test_search_history_finds_events_and_reports_errors() -> None:
    from agents.scripted import ScriptedModel
    from tasks_app.services.tasks import agent_task_create, agent_task_drive
    from tests.conftest import make_scenario

    task = agent_task_create(goal="Onboard Acme Corp")
    agent_task_drive(task_id=str(task.pk), model=ScriptedModel(make_scenario(2)))
    out = StringIO()
    call_command("search_history", str(task.pk), "Step 1", "--json", stdout=out)
    hits = json.loads(out.getvalue())
    assert any(h["type"] == "step.completed" and "Step 1" in h["excerpt"] for h in hits)
    with pytest.raises(CommandError, match="no task with id"):
        call_command("search_history", "not-a-task", "x")
    with pytest.raises(CommandError, match="at least one word"):
        call_command("search_history", str(task.pk), "!!")
