"""Commands for people, --json for machines (issue 19, items 5 and 6): the text and the exit status of
each command that changed, and a rejection's reason required on every surface."""

from __future__ import annotations

import json
import logging
import re
import shlex
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from agents.scripted import BUNDLED
from tasks_app.management.reporting import EXIT_COMPLETED, EXIT_FAILED, EXIT_NOT_FINISHED, exit_status
from tasks_app.models import AgentTask, Approval
from tasks_app.services.api_tokens import api_token_create
from tests.support.commands import run_command as run

pytestmark = pytest.mark.django_db

SCENARIO = str(BUNDLED / "approval_demo.json")


def decider(name: str = "alice") -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="tasks_app", codename__in=["view_approval", "decide_approval", "view_agenttask"]
        )
    )
    return user


def waiting_task() -> tuple[AgentTask, Approval, str]:
    output, code = run("run_goal", "Archive the stale customer accounts", "--scenario", SCENARIO)
    assert code == EXIT_NOT_FINISHED, output
    task = AgentTask.objects.get()
    return task, Approval.objects.get(task=task, status="pending"), output


# --- run_goal ---------------------------------------------------------------------------------------


def test_run_goal_that_completes_exits_0_and_says_so() -> None:
    output, code = run("run_goal", "Onboard Acme Corp")
    assert code == EXIT_COMPLETED
    assert re.search(r"task \S+: completed", output) and "next:" not in output


def test_run_goal_waiting_for_a_person_exits_3_with_the_command_that_continues_it() -> None:
    task, approval, output = waiting_task()
    lines = output.splitlines()
    assert not [line for line in lines if re.fullmatch(r"\s*step \d+/\d+ :\s*", line)]  # no blank step lines
    assert "  step 2/3 waits for a person (see below)" in lines
    assert f"task {task.pk}: requires_human" in output
    assert f"python manage.py approve {approval.pk} --user YOU" in output
    assert f"python manage.py reject {approval.pk} --user YOU --comment WHY" in output
    drive = next(line for line in lines if "continue it with:" in line).split("continue it with: ", 1)[1]
    assert drive.endswith(f"python manage.py drive --task {task.pk} --scenario {shlex.quote(SCENARIO)}")

    # The printed command is exact: decided, it runs the task on (to the next approval).
    decider("alice")
    run("approve", str(approval.pk), "--user", "alice")
    argv = shlex.split(drive)[2:]  # without "<this python> manage.py"
    again, code = run(*argv)
    assert code == 0 and "step 2/3 Archive the stale accounts" in again
    assert AgentTask.objects.get(pk=task.pk).status == "requires_human"
    assert again.rstrip().endswith(drive.split(" ", 1)[1])  # drive, too, prints the same exact command


def test_exit_statuses_by_task_status() -> None:
    assert exit_status("completed") == EXIT_COMPLETED == 0
    assert exit_status("failed") == exit_status("cancelled") == EXIT_FAILED == 1
    for live in ("running", "waiting", "requires_human", "paused", "pending"):
        assert exit_status(live) == EXIT_NOT_FINISHED == 3


def test_run_goal_json_keeps_the_result_and_the_exit_status() -> None:
    output, code = run("run_goal", "Archive the stale customer accounts", "--scenario", SCENARIO, "--json")
    assert code == EXIT_NOT_FINISHED and json.loads(output)["status"] == "requires_human"


# --- the other commands -------------------------------------------------------------------------------


def test_follow_events_prints_one_short_line_per_event_and_json_keeps_the_payload() -> None:
    task, _, _ = waiting_task()
    text, code = run("follow_events", str(task.pk), "--timeout", "0")
    lines = [line for line in text.splitlines() if line.startswith("#")]
    assert code == 0 and len(lines) == task.last_event_seq
    assert all(len(line) <= 200 for line in lines), max(lines, key=len)
    assert "profile_config" not in text and "goal 'Archive the stale customer accounts', profile default" in lines[0]
    raw, _ = run("follow_events", str(task.pk), "--timeout", "0", "--json")
    assert "profile_config" in json.loads(raw.splitlines()[0])["payload"]


def test_task_status_formats_usage_and_shows_tool_calls() -> None:
    task, _, _ = waiting_task()
    text, _ = run("task_status", str(task.pk))
    usage = next(line for line in text.splitlines() if line.strip().startswith("usage:"))
    assert re.fullmatch(r"  usage: 1 of 3 steps done; \d+ model calls, \d+ tool calls?, \d+\+\d+ tokens, \$0\.0000", usage), usage
    assert "{'" not in text  # no Python dict
    assert "write_file (ok, " in text and "wrote 85 characters to stale.csv" in text


def test_approvals_shows_each_task_s_goal() -> None:
    waiting_task()
    text, _ = run("approvals")
    assert "goal: Archive the stale customer accounts" in text


def test_create_goal_prints_the_id_then_the_next_command() -> None:
    text, code = run("create_goal", "Write the weekly report")
    task_id = text.splitlines()[0]
    assert code == 0 and AgentTask.objects.filter(pk=task_id).exists()
    assert re.search(rf"run it with: \S*python manage\.py drive --task {task_id}", text), text
    data = json.loads(run("create_goal", "Write it again", "--json")[0])
    assert data["status"] == "pending" and data["next"].endswith(f"python manage.py drive --task {data['id']}")


def test_schedule_goal_prints_the_next_run_time() -> None:
    text, _ = run("schedule_goal", "weekly", "--goal", "Write the weekly report", "--cron", "0 9 * * 1", "--timezone", "UTC")
    found = re.search(r"next run: (\d{4}-\d\d-\d\d \d\d:\d\d) UTC \(in [^)]+\)", text)
    assert found, text
    due = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert due.weekday() == 0 and (due.hour, due.minute) == (9, 0) and due > datetime.now(UTC)
    data = json.loads(run("schedule_goal", "weekly", "--json")[0])
    assert data["next_run"].startswith(due.strftime("%Y-%m-%dT%H:%M")) and data["schedule"].startswith('cron "0 9 * * 1"')
    text, _ = run("schedule_goal", "weekly", "--disable")
    assert "next run" not in text


def test_approve_and_schedule_goal_say_their_message_once(caplog: pytest.LogCaptureFixture) -> None:
    _, approval, _ = waiting_task()
    decider("alice")
    with caplog.at_level(logging.INFO):
        text, _ = run("approve", str(approval.pk), "--user", "alice")
        scheduled, _ = run("schedule_goal", "daily", "--goal", "Say hi", "--every", "86400")
    assert text.count(f"approval #{approval.pk} approved") == 1 and "scheduled every 86400 seconds" in scheduled
    repeated = [r for r in caplog.records if r.levelno >= logging.INFO and r.name in ("horizon.approvals", "horizon.schedules")]
    assert repeated == [], [r.getMessage() for r in repeated]


# --- a rejection needs a reason on every surface --------------------------------------------------------


def test_a_rejection_without_a_reason_is_refused_by_the_cli_the_admin_and_the_api() -> None:
    _, approval, _ = waiting_task()
    alice = decider("alice")

    with pytest.raises(CommandError, match="a rejection needs a --comment"):
        call_command("reject", str(approval.pk), "--user", "alice", "--comment", " ", stdout=StringIO())

    browser = Client()
    browser.force_login(alice)
    inbox = reverse("admin:tasks_app_approval_changelist")
    bulk = {"action": "reject_selected", "index": "0", ACTION_CHECKBOX_NAME: [str(approval.pk)], "confirm": "reject"}
    answer = browser.post(inbox, {**bulk, "comment": ""}, follow=True)
    assert any("a rejection needs a comment" in str(m) for m in answer.context["messages"])
    page = browser.post(reverse("admin:tasks_app_approval_decide", args=[approval.pk]), {"decision": "reject"}, follow=True)
    assert any("a rejection needs a comment" in str(m) for m in page.context["messages"])

    root = User.objects.create_superuser("root", "root@example.com", "pw")  # the API shows others' tasks to a superuser
    token = api_token_create(user=root)[1]
    api = Client().post(
        f"/api/approvals/{approval.pk}/reject",
        json.dumps({"comment": ""}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code in (400, 422) and "comment" in api.content.decode()
    assert Approval.objects.get(pk=approval.pk).status == "pending"  # nothing decided anywhere

    answer = browser.post(inbox, {**bulk, "comment": "Not this quarter"}, follow=True)
    assert any("Rejected" in str(m) for m in answer.context["messages"])
    assert Approval.objects.get(pk=approval.pk).comment == "Not this quarter"


# --- the timeline ----------------------------------------------------------------------------------------


def test_a_resumed_step_keeps_its_first_start_and_the_poll_sends_only_what_is_new() -> None:
    task, approval, _ = waiting_task()
    first_start = AgentTask.objects.get(pk=task.pk).steps.get(index=1).started_at
    assert first_start is not None and first_start <= approval.requested_at  # the step started, then asked
    decider("alice")
    run("approve", str(approval.pk), "--user", "alice")
    run("drive", "--task", str(task.pk), "--scenario", SCENARIO)  # the step resumes and completes
    step = AgentTask.objects.get(pk=task.pk).steps.get(index=1)
    assert step.status == "completed" and step.started_at == first_start and step.finished_at > approval.requested_at

    root = User.objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.force_login(root)
    url = reverse("admin:tasks_app_agenttask_timeline_json", args=[task.pk])
    full = browser.get(url, {"after_seq": 0}).json()
    assert {"task", "events", "steps", "earlier", "plans", "approvals", "checkpoints"} <= set(full)
    archive = next(s for s in full["steps"] if s["index"] == 1)
    assert archive["duration"] != "—" and archive["tokens"] > 0 and archive["cost_usd"] == "0.0000"
    (call,) = archive["tool_calls"]
    assert call["name"] == "run_python" and call["ok"] and "archived 3 accounts" in call["output"] and call["ran"]
    assert "rows = open('stale.csv')" in call["arguments"] and "\\n" not in call["arguments"].split("\n")[1]
    last_seq, last_checkpoint = full["last_seq"], full["checkpoints"][-1]["seq"]
    # Nothing new: the task row alone.
    quiet = browser.get(url, {"after_seq": last_seq, "after_checkpoint": last_checkpoint}).json()
    assert set(quiet) == {"task", "events", "more", "last_seq"} and quiet["events"] == []
    # Something new: only the events and checkpoints after the ones the page has.
    newer = browser.get(url, {"after_seq": last_seq - 1, "after_checkpoint": last_checkpoint - 1}).json()
    assert [e["seq"] for e in newer["events"]] == [last_seq]
    assert [c["seq"] for c in newer["checkpoints"]] == [last_checkpoint]


def test_the_admin_s_decision_message_ends_with_a_command_that_can_be_pasted() -> None:
    task, approval, _ = waiting_task()
    browser = Client()
    browser.force_login(decider("alice"))
    page = browser.post(reverse("admin:tasks_app_approval_decide", args=[approval.pk]), {"decision": "approve"}, follow=True)
    (said,) = [str(m) for m in page.context["messages"]]
    command = said.split("nothing runs it until you run: ", 1)[1]
    assert command.endswith(f"manage.py drive --task {task.pk}"), said  # no full stop glued to the id
