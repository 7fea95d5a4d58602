"""The admin on PostgreSQL: task pages and filters, the timeline and its JSON, the approvals inbox.

Decisions go through the admin (actions and the decide page) with the Django test client; tasks
are run by the real runner with a scripted model, so the approvals are the runtime's own.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.tools import default_registry
from tasks_app.models import AgentTask, Approval, Event, WorkspaceFile
from tasks_app.services.control import agent_task_cancel
from tasks_app.services.tasks import agent_task_create
from tasks_app.store import DjangoStore
from tests.conftest import make_scenario

pytestmark = pytest.mark.django_db

INBOX = "/admin/tasks_app/approval/"


# --- helpers -----------------------------------------------------------------------------------


def flagged_scenario() -> dict[str, Any]:
    """Three steps; the planner flags step 1 as needing a person's approval."""
    scenario = make_scenario(3)
    scenario["plan"][1] = {**scenario["plan"][1], "title": "Delete the old tenant", "needs_approval": True}
    scenario["replan"] = [{"title": "Archive the old tenant", "instructions": "Archive it."}]  # after a rejection
    return scenario


def runner(scenario: dict[str, Any], **profile: Any) -> Runner:
    return Runner(
        DjangoStore(), ScriptedModel(scenario), default_registry, profiles={"default": AgentProfile(name="default", **profile)}
    )


def waiting_step_task(goal: str = "Retire tenant Acme") -> tuple[AgentTask, Approval, Runner]:
    run = runner(flagged_scenario())
    # Created by this runner, so that the task keeps this runner's profile (tasks keep the profile
    # they started with).
    task = AgentTask.objects.get(pk=run.create(goal))
    assert run.run(str(task.pk)).status == "requires_human"
    return AgentTask.objects.get(pk=task.pk), Approval.objects.get(task=task, status="pending"), run


def waiting_tool_task(goal: str = "Write the welcome note") -> tuple[AgentTask, Approval, Runner]:
    """A task whose step 0 calls write_file, a "write" tool that this profile sends for approval."""
    scenario = make_scenario(
        1, tool_steps={0: [{"tool": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}, {"final": "ok"}]}
    )
    run = runner(scenario, approval_risks=("write",))
    # Created by this runner, so that the task keeps this runner's profile (tasks keep the profile
    # they started with).
    task = AgentTask.objects.get(pk=run.create(goal))
    assert run.run(str(task.pk)).status == "requires_human"
    return AgentTask.objects.get(pk=task.pk), Approval.objects.get(task=task, status="pending"), run


def staff(username: str, *perms: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms, content_type__app_label="tasks_app"))
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def decider() -> Client:
    return client_for(staff("alice", "view_approval", "decide_approval", "view_agenttask"))


@pytest.fixture
def viewer() -> Client:
    return client_for(staff("victor", "view_approval", "view_agenttask"))


def act(client: Client, action: str, *approvals: Approval, **extra: str) -> Any:
    data = {"action": action, "index": "0", ACTION_CHECKBOX_NAME: [str(a.pk) for a in approvals], **extra}
    return client.post(INBOX, data, follow=True)


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def decided_events(task: AgentTask) -> list[dict[str, Any]]:
    return list(Event.objects.filter(task=task, type="approval.decided").order_by("seq").values_list("payload", flat=True))


# --- tasks -------------------------------------------------------------------------------------


def test_a_staff_user_sees_tasks_with_their_steps_and_events(admin_client) -> None:  # type: ignore[no-untyped-def]
    call_command("run_goal", "Onboard Acme Corp", stdout=StringIO())
    task = AgentTask.objects.get()
    listing = admin_client.get("/admin/tasks_app/agenttask/")
    assert listing.status_code == 200 and b"Onboard Acme Corp" in listing.content
    assert reverse("admin:tasks_app_agenttask_timeline", args=[task.pk]).encode() in listing.content
    page = admin_client.get(f"/admin/tasks_app/agenttask/{task.pk}/change/")
    assert page.status_code == 200
    assert b"Write the welcome note" in page.content and b"task.completed" in page.content


def test_the_task_list_filters_stalled_tasks_and_tasks_waiting_for_a_human(admin_client) -> None:  # type: ignore[no-untyped-def]
    waiting, _, _ = waiting_step_task("Waits for alice")
    expired = agent_task_create(goal="Lease ran out")
    AgentTask.objects.filter(pk=expired.pk).update(
        status="running", lease_owner="gone:1:x", lease_expires_at=timezone.now() - timedelta(minutes=5)
    )
    flagged = agent_task_create(goal="Flagged stuck")
    AgentTask.objects.filter(pk=flagged.pk).update(stuck_flagged_at=timezone.now())
    agent_task_create(goal="Fresh and fine")

    def goals(query: str) -> set[str]:
        response = admin_client.get(f"/admin/tasks_app/agenttask/?{query}")
        assert response.status_code == 200
        return {t.goal for t in response.context["cl"].result_list}

    assert goals("stalled=yes") == {"Lease ran out", "Flagged stuck"}
    assert goals("stalled=no") == {"Waits for alice", "Fresh and fine"}
    assert goals("human=yes") == goals("human=approval") == {"Waits for alice"}
    assert goals("status__exact=requires_human") == {"Waits for alice"}
    assert goals("profile__exact=default") == {"Waits for alice", "Lease ran out", "Flagged stuck", "Fresh and fine"}
    assert waiting.status == "requires_human"


def test_operator_actions_pause_resume_and_cancel_through_the_services(admin_client) -> None:  # type: ignore[no-untyped-def]
    task = agent_task_create(goal="Control me")

    def do(action: str) -> str:
        admin_client.post("/admin/tasks_app/agenttask/", {"action": action, "index": "0", ACTION_CHECKBOX_NAME: [str(task.pk)]})
        return AgentTask.objects.get(pk=task.pk).status

    assert do("pause_tasks") == "paused"
    assert do("resume_tasks") == "running"
    assert do("cancel_tasks") == "cancelled"
    by = Event.objects.filter(task=task, type__in=["task.paused", "task.continued", "task.cancelled"]).values_list(
        "payload", flat=True
    )
    assert [p["by"] for p in by] == ["admin"] * 3
    assert admin_client.post(f"/admin/tasks_app/agenttask/{task.pk}/delete/", {"post": "yes"}).status_code == 403


def test_events_and_checkpoints_cannot_be_edited_or_deleted(admin_client) -> None:  # type: ignore[no-untyped-def]
    from agents.errors import AppendOnlyError

    call_command("run_goal", "Onboard Acme Corp", stdout=StringIO())
    event = Event.objects.first()
    assert event is not None
    event.payload = {"tampered": True}
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    checkpoint_id = AgentTask.objects.get().checkpoints.first().pk
    assert admin_client.post(f"/admin/tasks_app/checkpoint/{checkpoint_id}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/tasks_app/agenttask/add/").status_code == 403
    assert admin_client.get("/admin/tasks_app/event/").status_code == 200
    assert admin_client.get(f"/admin/tasks_app/event/{event.pk}/change/").status_code == 200  # a read-only view
    assert admin_client.post(f"/admin/tasks_app/event/{event.pk}/change/", {"type": "x"}).status_code == 403
    assert admin_client.post(f"/admin/tasks_app/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/tasks_app/event/add/").status_code == 403
    assert admin_client.get("/admin/tasks_app/checkpoint/add/").status_code == 403
    assert Event.objects.get(pk=event.pk).payload != {"tampered": True}


# --- the timeline ------------------------------------------------------------------------------


def test_the_timeline_page_shows_plan_events_checkpoints_usage_and_approvals(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, _ = waiting_step_task()
    page = decider.get(reverse("admin:tasks_app_agenttask_timeline", args=[task.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Retire tenant Acme", "Step 0", "Delete the old tenant", "Step 2", "needs approval", "requires_human"):
        assert text in html
    assert 'id="step-0"' in html and 'id="step-2"' in html
    assert "task.created" in html and "plan.created" in html and "task.escalated" in html
    assert f'id="event-{task.last_event_seq}"' in html
    assert "Checkpoints" in html and "prompt tokens" in html and f"{task.cost_usd:.4f}" in html
    assert reverse("admin:tasks_app_approval_decide", args=[approval.pk]) in html  # alice may decide it
    assert reverse("admin:tasks_app_agenttask_timeline_json", args=[task.pk]) in html  # the live poll
    assert "function poll()" in html  # the live updates are an inline script ...
    assert all(
        src.startswith("/static/") for src in re.findall(r'(?:src|href)="(https?:[^"]*|/static/[^"]*)"', html)
    )  # ... nothing external


def test_the_timeline_json_returns_the_events_after_a_seq_and_the_current_state(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, run = waiting_step_task()
    url = reverse("admin:tasks_app_agenttask_timeline_json", args=[task.pk])
    first = decider.get(url, {"after_seq": 0}).json()
    assert [e["seq"] for e in first["events"]] == list(range(1, task.last_event_seq + 1))
    assert first["task"]["status"] == "requires_human" and not first["task"]["terminal"] and not first["more"]
    assert [s["status"] for s in first["steps"]] == ["completed", "pending", "pending"]
    assert first["approvals"][0]["status"] == "pending" and first["approvals"][0]["decide_url"]
    assert decider.get(url, {"after_seq": task.last_event_seq}).json()["events"] == []

    act(decider, "approve_selected", approval)
    run.run(str(task.pk))
    later = decider.get(url, {"after_seq": task.last_event_seq}).json()
    types = [e["type"] for e in later["events"]]
    assert types[0] == "approval.decided" and types[-1] == "task.completed"
    assert all(e["seq"] > task.last_event_seq for e in later["events"])
    assert later["task"]["terminal"] and later["last_seq"] == later["events"][-1]["seq"]
    assert [s["status"] for s in later["steps"]] == ["completed"] * 3
    assert later["approvals"][0]["decided_by"] == "alice" and later["approvals"][0]["decide_url"] == ""
    assert decider.get(url, {"after_seq": "x"}).status_code == 400


def test_the_timeline_needs_a_staff_login_and_a_known_task(client, decider) -> None:  # type: ignore[no-untyped-def]
    task = agent_task_create(goal="Private")
    url = reverse("admin:tasks_app_agenttask_timeline", args=[task.pk])
    assert client.get(url).status_code == 302  # to the admin login
    assert client.get(url + "../timeline.json").status_code == 302
    assert decider.get("/admin/tasks_app/agenttask/00000000-0000-0000-0000-000000000000/timeline/").status_code == 404
    assert decider.get("/admin/tasks_app/agenttask/not-a-uuid/timeline.json").status_code == 404
    nobody = client_for(staff("nobody"))
    assert nobody.get(url).status_code == 403


# --- the approvals inbox -----------------------------------------------------------------------


def test_the_inbox_lists_pending_approvals_first_with_the_action_readable(decider) -> None:  # type: ignore[no-untyped-def]
    _, older, _ = waiting_step_task("Older request")
    _, decided, _ = waiting_step_task("Already decided")
    _, tool, _ = waiting_tool_task("Newest request")
    act(decider, "approve_selected", decided)

    page = decider.get(INBOX)
    assert page.status_code == 200 and b"Approvals inbox" in page.content
    rows = list(page.context["cl"].result_list)
    assert [a.pk for a in rows] == [older.pk, tool.pk, decided.pk]  # pending (longest waiting first), then decisions
    html = page.content.decode()
    assert html.index("Older request") < html.index("Newest request") < html.index("Already decided")
    assert "Delete the old tenant" in html and "Do part 1." in html  # a step: its title and instructions
    assert "call write_file" in html and "path: a.txt" in html  # a tool call: each argument as written
    assert "asked 20" in html and "approved by alice" in html  # when it was asked, beside the decide link
    assert reverse("admin:tasks_app_agenttask_timeline", args=[older.task_id]) in html
    assert 'value="approve_selected"' in html and 'value="reject_selected"' in html
    assert decider.get(f"{INBOX}add/").status_code == 403
    assert decider.post(f"{INBOX}{older.pk}/delete/", {"post": "yes"}).status_code == 403


def test_approving_in_the_inbox_names_the_user_and_the_task_then_completes(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, run = waiting_step_task()
    response = act(decider, "approve_selected", approval)
    # In-process mode: the message says what continues the task (no worker will).
    continues = f"python manage.py drive --task {task.pk}"
    assert any("Approved: 'Delete the old tenant'" in m and continues in m for m in messages_of(response))
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by.username == "alice" and approval.decided_at
    (event,) = decided_events(task)
    assert event["by"] == "alice" and event["decision"] == "approved" and event["approval_id"] == approval.pk
    task.refresh_from_db()
    assert task.status == "running" and task.next_run_at is not None  # enqueued: due at once
    assert run.run(str(task.pk)).status == "completed"


def test_rejecting_asks_for_a_comment_then_rejects_with_it(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, run = waiting_step_task()
    ask = decider.post(INBOX, {"action": "reject_selected", "index": "0", ACTION_CHECKBOX_NAME: [str(approval.pk)]})
    assert ask.status_code == 200 and b'name="comment"' in ask.content and b"Delete the old tenant" in ask.content
    approval.refresh_from_db()
    assert approval.status == "pending"  # nothing decided before the comment is confirmed

    done = decider.post(
        INBOX,
        {
            "action": "reject_selected",
            "confirm": "reject",
            "comment": "archive it instead",
            ACTION_CHECKBOX_NAME: [str(approval.pk)],
        },
        follow=True,
    )
    assert any(m.startswith("Rejected:") for m in messages_of(done))
    approval.refresh_from_db()
    assert approval.status == "rejected" and approval.comment == "archive it instead"
    (event,) = decided_events(task)
    assert event["by"] == "alice" and event["decision"] == "rejected" and event["comment"] == "archive it instead"
    result = run.run(str(task.pk))
    assert result.status == "completed" and "Archive the old tenant" in [s.title for s in result.steps]  # re-planned


def test_the_decide_page_approves_or_rejects_one_approval_with_a_comment(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, _ = waiting_step_task()
    url = reverse("admin:tasks_app_approval_decide", args=[approval.pk])
    assert decider.get(f"{INBOX}{approval.pk}/change/").url == url  # the row's page is the decide page
    page = decider.get(url)
    assert page.status_code == 200 and b"Delete the old tenant" in page.content and b'value="approve"' in page.content
    assert b"approve_edited" not in page.content  # a step has no arguments to edit
    response = decider.post(url, {"decision": "approve", "comment": "go ahead"}, follow=True)
    assert response.redirect_chain[-1][0] == INBOX
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.comment == "go ahead"
    assert decided_events(task)[0]["comment"] == "go ahead"


def test_edit_then_approve_runs_the_call_with_the_edited_arguments(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, run = waiting_tool_task()
    url = reverse("admin:tasks_app_approval_decide", args=[approval.pk])
    page = decider.get(url)
    assert b'name="arguments"' in page.content and b"&quot;content&quot;: &quot;hi&quot;" in page.content
    edited = {"path": "b.txt", "content": "hello"}
    response = decider.post(url, {"decision": "approve_edited", "arguments": json.dumps(edited)}, follow=True)
    assert any(m.startswith("Approved with edited arguments") for m in messages_of(response))
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.edited_arguments == edited
    assert decided_events(task)[0]["edited_arguments"] == edited
    assert run.run(str(task.pk)).status == "completed"
    assert list(WorkspaceFile.objects.filter(task=task).values_list("path", "content")) == [("b.txt", "hello")]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"path": "b.txt", ', "not valid JSON"),
        ('["b.txt"]', "must be a JSON object"),
        ('{"path": 5, "content": "x"}', "do not fit write_file"),
        ('{"content": "x"}', "do not fit write_file"),
    ],
)
def test_an_invalid_edit_is_refused_with_a_message_and_nothing_is_decided(decider, arguments: str, message: str) -> None:  # type: ignore[no-untyped-def]
    task, approval, _ = waiting_tool_task()
    url = reverse("admin:tasks_app_approval_decide", args=[approval.pk])
    response = decider.post(url, {"decision": "approve_edited", "arguments": arguments})
    assert response.status_code == 200  # the page again, with the text as typed
    assert any(message in m and m.startswith("Not decided") for m in messages_of(response))
    assert arguments.replace('"', "&quot;") in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending" and decided_events(task) == []
    assert AgentTask.objects.get(pk=task.pk).status == "requires_human"


def test_a_staff_user_without_the_permission_cannot_decide(viewer) -> None:  # type: ignore[no-untyped-def]
    task, approval, _ = waiting_step_task()
    page = viewer.get(INBOX)
    assert page.status_code == 200 and b"Delete the old tenant" in page.content
    assert b"approve_selected" not in page.content and b"reject_selected" not in page.content
    # The changelist runs only the actions it offers this user: a forged POST just shows the list.
    response = act(viewer, "approve_selected", approval)
    assert response.status_code == 200 and not any(m.startswith("Approved") for m in messages_of(response))
    url = reverse("admin:tasks_app_approval_decide", args=[approval.pk])
    decide_page = viewer.get(url)
    assert (
        decide_page.status_code == 200
        and b'name="decision"' not in decide_page.content
        and b"may not decide" in decide_page.content
    )
    assert viewer.post(url, {"decision": "approve"}).status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending" and decided_events(task) == []
    timeline = viewer.get(reverse("admin:tasks_app_agenttask_timeline", args=[task.pk]))
    assert url.encode() not in timeline.content


def test_a_second_approval_of_the_same_action_is_refused_with_a_message(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, _ = waiting_step_task()
    bob = client_for(staff("bob", "view_approval", "decide_approval"))
    act(decider, "approve_selected", approval)
    second = bob.post(reverse("admin:tasks_app_approval_decide", args=[approval.pk]), {"decision": "reject"})
    assert any("already decided (approved)" in m for m in messages_of(second))
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by.username == "alice"
    assert len(decided_events(task)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_admins_approving_at_the_same_moment_apply_one_decision() -> None:
    task, approval, _ = waiting_step_task()
    clients = [client_for(staff(name, "view_approval", "decide_approval")) for name in ("alice", "bob")]
    start = threading.Barrier(2)
    results: list[str] = []

    def approve(client: Client) -> None:
        from django.db import connection

        start.wait()
        try:
            # The page's own text: the test client's captured context is shared between threads.
            html = act(client, "approve_selected", approval).content.decode()
            results.append("Approved" if "Approved: " in html else "Not decided" if "already decided" in html else html)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=approve, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["Approved", "Not decided"]
    assert len(decided_events(task)) == 1
    assert Approval.objects.get(pk=approval.pk).status == "approved"


def test_an_approval_for_a_task_that_moved_on_is_refused_as_stale(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, _ = waiting_step_task()
    agent_task_cancel(task_id=str(task.pk), reason="no longer needed")
    response = act(decider, "approve_selected", approval)
    assert any("is stale" in m for m in messages_of(response))
    approval.refresh_from_db()
    assert approval.status == "pending" and decided_events(task) == []
    assert AgentTask.objects.get(pk=task.pk).status == "cancelled"


def test_an_approval_marked_stale_by_the_runtime_cannot_be_decided(decider) -> None:  # type: ignore[no-untyped-def]
    task, approval, _ = waiting_step_task()
    # The runtime marks an approval stale when the action under its key changed; a stale row is
    # closed for good.
    Approval.objects.filter(pk=approval.pk).update(status="stale")
    response = decider.post(reverse("admin:tasks_app_approval_decide", args=[approval.pk]), {"decision": "approve"})
    assert response.status_code == 200 and any("already decided (stale)" in m for m in messages_of(response))
    assert b'name="decision"' not in response.content  # no longer offered
    assert decided_events(task) == []
