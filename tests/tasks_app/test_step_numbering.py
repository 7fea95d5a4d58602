"""One step numbering on every surface (issue 19, item 4): the same step is "step 2" everywhere.

The database, journal keys and event payloads keep the 0-based `index`; every rendering a person (or
an API client reading `step_number`) sees is index + 1. One task of the bundled approval scenario
waits at its second step (index 1, a `run_python` call); every surface is asked about that step.
"""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from agents.scripted import BUNDLED
from tasks_app.models import AgentTask, Approval, Event, Step
from tasks_app.services.api_tokens import api_token_create
from tests.support.commands import run_command as run

pytestmark = pytest.mark.django_db

SCENARIO = str(BUNDLED / "approval_demo.json")
TITLE = "Archive the stale accounts"  # the scenario's second step: index 1, "step 2"


@pytest.fixture
def waiting() -> tuple[AgentTask, Approval, str]:
    """The task, its pending approval at step 2, and run_goal's output (which stopped there)."""
    output, code = run("run_goal", "Archive the stale customer accounts", "--scenario", SCENARIO)
    assert code == 3, output
    task = AgentTask.objects.get()
    approval = Approval.objects.get(task=task, status="pending")
    assert (approval.step_index, Step.objects.get(task=task, index=1).title) == (1, TITLE)
    return task, approval, output


def test_every_surface_calls_the_second_step_step_2(waiting: tuple[AgentTask, Approval, str]) -> None:
    task, approval, run_goal_output = waiting
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.force_login(admin)

    # run_goal: "step 1/3 ..." for the first step, "step 2/3 waits for a person" for this one.
    assert "step 1/3 List the stale accounts" in run_goal_output and "step 2/3 waits for a person" in run_goal_output

    # The admin's task page (its steps inline) and the inbox.
    page = browser.get(reverse("admin:tasks_app_agenttask_change", args=[task.pk])).content.decode()
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*" + re.escape(TITLE) + r".*?</tr>", page, re.S)
    assert row and re.search(r">\s*step 2\s*<", row.group(0)), row
    inbox = browser.get(reverse("admin:tasks_app_approval_changelist")).content.decode()
    assert "step 2, tool call" in inbox
    decide = browser.get(reverse("admin:tasks_app_approval_decide", args=[approval.pk])).content.decode()
    assert "<dd>step 2 (plan version 1)</dd>" in decide

    # The timeline page and its JSON.
    timeline = browser.get(reverse("admin:tasks_app_agenttask_timeline", args=[task.pk])).content.decode()
    step_row = re.search(r'<tr id="step-1"[^>]*>\s*<td class="num">(\d+)</td>', timeline)
    assert step_row and step_row.group(1) == "2"
    data = browser.get(reverse("admin:tasks_app_agenttask_timeline_json", args=[task.pk]), {"after_seq": 0}).json()
    step = next(s for s in data["steps"] if s["title"] == TITLE)
    assert (step["index"], step["number"]) == (1, 2)
    assert [a["step"] for a in data["approvals"]] == ["step 2"]
    escalated = next(e for e in data["events"] if e["type"] == "task.escalated")
    assert json.loads(json.dumps(escalated))["summary"]  # the raw payload is still there for the curious

    # The API: step_index stays 0-based (as stored), step_number is the one people read.
    token = api_token_create(user=admin)[1]
    api = Client().get(f"/api/approvals/{approval.pk}", headers={"Authorization": f"Bearer {token}"}).json()
    assert (api["step_index"], api["step_number"]) == (1, 2)

    # The commands.
    status, _ = run("task_status", str(task.pk))
    assert f"step 2: {TITLE}" in status
    assert json.loads(run("task_status", str(task.pk), "--json")[0])["steps"][1] == {
        "index": 1,
        "number": 2,
        "title": TITLE,
        "status": "running",
        "attempts": 1,
    }
    listing, _ = run("approvals")
    assert "step 2: tool run_python" in listing
    events, _ = run("follow_events", str(task.pk), "--timeout", "0")
    assert "step 1 'List the stale accounts'" in events  # a step.completed line: index 0 is step 1

    # Once decided and run, the completed step is "step 2" in the event lines too.
    call_command("approve", str(approval.pk), "--user", "root", stdout=StringIO())
    run("drive", "--task", str(task.pk), "--scenario", SCENARIO)
    done = Event.objects.filter(task=task, type="step.completed", payload__index=1).get()
    assert done.payload["index"] == 1  # stored 0-based
    events, _ = run("follow_events", str(task.pk), "--timeout", "0")
    assert f"step 2 '{TITLE}'" in events


def test_the_escalation_reason_names_the_same_step(waiting: tuple[AgentTask, Approval, str]) -> None:
    task, _, _ = waiting
    reason = Event.objects.get(task=task, type="task.escalated").payload["reason"]
    assert "at step 2" in reason and "at step 1 " not in reason, reason
    task.refresh_from_db()
    assert "at step 2" in task.status_reason, task.status_reason
