"""The outcomes report per agent profile, the stuck-task report (selector, command, admin pages).

Tasks reach their states through the real runner where the report reads what the runner wrote
(events of an escalation, the wait's event); rows are then aged with an UPDATE of their
timestamps, since the report is about time that has passed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from agents.scripted import ScriptedModel
from agents.status import TaskStatus
from tasks_app.models import AgentTask
from tasks_app.selectors.outcomes import outcomes_by_profile
from tasks_app.selectors.stuck import stuck_tasks
from tasks_app.services.control import agent_task_cancel
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.conftest import make_scenario
from tests.support.queue_model import QueueModel

pytestmark = pytest.mark.django_db


def completed(profile: str, *, cost: float, minutes: float) -> AgentTask:
    task = agent_task_create(goal=f"done in {minutes} min", profile=profile)
    agent_task_drive(task_id=str(task.pk), model=ScriptedModel(make_scenario(1)))
    created = timezone.now() - timedelta(days=1)
    AgentTask.objects.filter(pk=task.pk).update(
        created_at=created, progress_at=created + timedelta(minutes=minutes), cost_usd=cost
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    return task


def escalated_then_cancelled() -> AgentTask:
    task = agent_task_create(goal="an unplannable goal")
    agent_task_drive(task_id=str(task.pk), model=QueueModel(plan=["not a plan"] * 5))  # type: ignore[arg-type]
    task.refresh_from_db()
    assert task.status == TaskStatus.REQUIRES_HUMAN
    agent_task_cancel(task_id=str(task.pk), reason="nobody can plan it")
    return task


@pytest.fixture
def known_outcomes() -> None:
    completed("default", cost=0.30, minutes=10)
    completed("default", cost=0.10, minutes=20)
    failed = agent_task_create(goal="failed")
    AgentTask.objects.filter(pk=failed.pk).update(status=TaskStatus.FAILED, cost_usd=5.0)
    escalated_then_cancelled()
    agent_task_create(goal="still pending")
    completed("careful", cost=0.05, minutes=60)


def test_outcomes_per_profile(known_outcomes: None) -> None:
    rows = {r.profile: r for r in outcomes_by_profile()}
    assert set(rows) == {"default", "careful"}
    default = rows["default"]
    assert (default.tasks, default.active, default.completed, default.failed, default.cancelled) == (5, 1, 2, 1, 1)
    assert default.completion_rate == pytest.approx(2 / 4)  # completed / ended
    assert default.escalated == 1 and default.escalation_rate == pytest.approx(1 / 5)
    assert default.mean_cost_usd == pytest.approx(0.20)  # completed tasks only: the failed one's 5.0 is not in it
    assert default.mean_duration == timedelta(minutes=15)
    careful = rows["careful"]
    assert (careful.tasks, careful.completion_rate, careful.escalation_rate) == (1, 1.0, 0.0)
    assert careful.mean_duration == timedelta(hours=1) and careful.mean_cost_usd == pytest.approx(0.05)


def test_outcomes_of_no_tasks() -> None:
    assert outcomes_by_profile() == []


# --- the stuck report ----------------------------------------------------------------------------


def aged(task: AgentTask, **columns: object) -> AgentTask:
    AgentTask.objects.filter(pk=task.pk).update(**columns)
    task.refresh_from_db()
    return task


def signal_wait() -> AgentTask:
    """A task whose step waits for the signal `go`, without a timeout (the runner's own wait)."""
    model = ScriptedModel(
        make_scenario(1, tool_steps={0: [{"tool": "wait_for_signal", "arguments": {"names": ["go"]}}, {"final": "went"}]})
    )
    task = agent_task_create(goal="wait for go")
    agent_task_drive(task_id=str(task.pk), model=model)
    task.refresh_from_db()
    assert task.status == TaskStatus.WAITING and task.next_run_at is None
    return task


@pytest.fixture
def stuck() -> dict[str, AgentTask]:
    now = timezone.now()
    hours = timedelta(hours=1)
    t = {}
    t["late"] = aged(agent_task_create(goal="late"), deadline=now - hours)
    t["late_but_done"] = aged(agent_task_create(goal="ended"), deadline=now - hours, status=TaskStatus.COMPLETED)
    t["expired_lease"] = aged(
        agent_task_create(goal="owner died"), status=TaskStatus.RUNNING, lease_owner="gone:1", lease_expires_at=now - hours
    )
    t["quiet_lease"] = aged(
        agent_task_create(goal="owner alive, no progress"),
        status=TaskStatus.RUNNING,
        lease_owner="slow:2",
        lease_expires_at=now + hours,
        progress_at=now - 2 * hours,  # HORIZON_STUCK_AFTER is 1 h
    )
    t["busy_lease"] = aged(
        agent_task_create(goal="owner alive, progressing"),
        status=TaskStatus.RUNNING,
        lease_owner="fast:3",
        lease_expires_at=now + hours,
        progress_at=now,
    )
    t["old_signal_wait"] = aged(signal_wait(), updated_at=now - timedelta(days=8))
    t["new_signal_wait"] = aged(signal_wait(), updated_at=now - hours)
    t["timer_past_deadline"] = aged(
        agent_task_create(goal="sleeps past its deadline"),
        status=TaskStatus.WAITING,
        next_run_at=now + timedelta(days=3),
        deadline=now + timedelta(days=1),
    )
    t["timer_before_deadline"] = aged(
        agent_task_create(goal="sleeps, then goes on"),
        status=TaskStatus.WAITING,
        next_run_at=now + timedelta(days=1),
        deadline=now + timedelta(days=3),
    )
    # A parent waiting for its sub-agents (a children wait re-checks on a timer), one of them paused.
    t["parent_of_paused"] = aged(agent_task_create(goal="fan out"), status=TaskStatus.WAITING, next_run_at=now + hours)
    t["paused_child"] = aged(
        agent_task_create(goal="part 1"),
        parent=t["parent_of_paused"],
        status=TaskStatus.PAUSED,
        updated_at=now - timedelta(days=8),
    )
    t["parent_of_new_pause"] = aged(agent_task_create(goal="fan out again"), status=TaskStatus.WAITING, next_run_at=now + hours)
    t["newly_paused_child"] = aged(
        agent_task_create(goal="part 2"), parent=t["parent_of_new_pause"], status=TaskStatus.PAUSED, updated_at=now - hours
    )
    t["human_30h"] = aged(
        agent_task_create(goal="asked a person long ago"),
        status=TaskStatus.REQUIRES_HUMAN,
        status_reason="budget exhausted",
        updated_at=now - timedelta(hours=30),
    )
    t["human_1h"] = aged(agent_task_create(goal="asked a person"), status=TaskStatus.REQUIRES_HUMAN, updated_at=now - hours)
    return t


def reported(**kwargs: float) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in stuck_tasks(**kwargs):
        found.setdefault(row.category, set()).add(row.task_id)
    return found


def test_each_stuck_category(stuck: dict[str, AgentTask]) -> None:
    ids = {name: str(task.pk) for name, task in stuck.items()}
    found = reported()
    assert found == {
        "past_deadline": {ids["late"]},
        "lease_without_progress": {ids["expired_lease"], ids["quiet_lease"]},
        "wait_never_satisfied": {ids["old_signal_wait"], ids["timer_past_deadline"], ids["parent_of_paused"]},
        "waiting_for_human": {ids["human_30h"]},
    }
    rows = {(r.category, r.task_id): r for r in stuck_tasks()}
    assert "waits for signal go with no timeout" in rows[("wait_never_satisfied", ids["old_signal_wait"])].detail
    assert "after the deadline" in rows[("wait_never_satisfied", ids["timer_past_deadline"])].detail
    assert f"waits for sub-agent {ids['paused_child']}, paused" in rows[("wait_never_satisfied", ids["parent_of_paused"])].detail
    assert "expired" in rows[("lease_without_progress", ids["expired_lease"])].detail
    assert "no tick committed" in rows[("lease_without_progress", ids["quiet_lease"])].detail
    assert "budget exhausted" in rows[("waiting_for_human", ids["human_30h"])].detail
    # The thresholds move the human and wait categories.
    assert reported(human_hours=0.5)["waiting_for_human"] == {ids["human_30h"], ids["human_1h"]}
    assert "waiting_for_human" not in reported(human_hours=48)
    assert reported(wait_hours=0.5)["wait_never_satisfied"] == {
        ids["old_signal_wait"],
        ids["new_signal_wait"],
        ids["timer_past_deadline"],
        ids["parent_of_paused"],
        ids["parent_of_new_pause"],
    }


def test_stuck_tasks_command(stuck: dict[str, AgentTask]) -> None:
    out = StringIO()
    with pytest.raises(SystemExit) as found:  # stuck tasks reported: exit 1, so cron or a check can alert
        call_command("stuck_tasks", "--json", "--human-hours", "0.5", stdout=out)
    assert found.value.code == 1
    rows = json.loads(out.getvalue())
    assert {r["category"] for r in rows} == {
        "past_deadline",
        "lease_without_progress",
        "wait_never_satisfied",
        "waiting_for_human",
    }
    assert sum(r["category"] == "waiting_for_human" for r in rows) == 2
    assert all(r["since"] is None or "T" in r["since"] for r in rows)
    out = StringIO()
    with pytest.raises(SystemExit) as found:
        call_command("stuck_tasks", stdout=out)
    assert found.value.code == 1
    text = out.getvalue()
    assert "past_deadline (1)" in text and str(stuck["late"].pk) in text and "waiting_for_human (1)" in text
    with pytest.raises(CommandError, match="--human-hours must be a positive"):
        call_command("stuck_tasks", "--human-hours", "0")


def test_stuck_tasks_command_with_nothing_stuck() -> None:
    out = StringIO()
    call_command("stuck_tasks", stdout=out)
    assert out.getvalue().strip() == "no stuck tasks"


# --- the admin pages ----------------------------------------------------------------------------


def staff_viewer(client: Client) -> None:
    client.force_login(User.objects.get(pk=clerk_with_view().pk))


def clerk_with_view() -> User:
    clerk = User.objects.create_user("viewer", password="x", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_agenttask"))
    return clerk


def test_report_pages_need_a_staff_login_with_view_permission() -> None:
    client = Client()
    for url in ("/admin/reports/outcomes/", "/admin/reports/stuck/"):
        assert client.get(url).status_code == 302  # to the admin login
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    assert client.get("/admin/reports/outcomes/").status_code == 403  # staff, but may not view tasks
    clerk.user_permissions.add(Permission.objects.get(codename="view_agenttask"))
    client.force_login(User.objects.get(pk=clerk.pk))
    assert client.get("/admin/reports/outcomes/").status_code == 200
    assert client.get("/admin/reports/stuck/").status_code == 200


def test_outcomes_page(known_outcomes: None) -> None:
    client = Client()
    staff_viewer(client)
    page = client.get("/admin/reports/outcomes/").content.decode()
    assert 'class="profile-default"' in page and 'class="profile-careful"' in page
    default_row = page.split('class="profile-default"')[1].split("</tr>")[0]
    assert '<td class="completion">50%</td>' in default_row
    assert '<td class="escalation">20%</td>' in default_row
    assert '<td class="cost">0.2000</td>' in default_row
    assert '<td class="duration">15 min 00 s</td>' in default_row  # humanised, never 0:15:00


def test_stuck_page(stuck: dict[str, AgentTask]) -> None:
    client = Client()
    staff_viewer(client)
    page = client.get("/admin/reports/stuck/?human_hours=0.5&wait_hours=bad").content.decode()
    for category, count in (
        ("past_deadline", 1),
        ("lease_without_progress", 2),
        ("wait_never_satisfied", 3),
        ("waiting_for_human", 2),
    ):
        assert f'<h2 id="{category}">{category} ({count})</h2>' in page
    assert f"/admin/tasks_app/agenttask/{stuck['late'].pk}/timeline/" in page


# --- the embedded default: the same reads on SQLite ----------------------------------------------


@pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])
def test_reports_and_gauges_work_on_sqlite() -> None:
    from agents.types import NewTask
    from tasks_app.observability.collector import DatabaseCollector
    from tasks_app.store import DjangoStore

    store = DjangoStore(using="sqlite")
    done = store.create_task(NewTask(goal="done", context={}))
    late = store.create_task(NewTask(goal="late", context={}))
    now = timezone.now()
    tasks = AgentTask.objects.using("sqlite")
    tasks.filter(pk=done).update(
        status=TaskStatus.COMPLETED, cost_usd=0.5, created_at=now - timedelta(minutes=30), progress_at=now
    )
    tasks.filter(pk=late).update(deadline=now - timedelta(hours=1))
    try:
        (row,) = outcomes_by_profile(using="sqlite")
        assert (row.tasks, row.completed, row.completion_rate, row.mean_cost_usd) == (2, 1, 1.0, 0.5)
        assert row.mean_duration == timedelta(minutes=30)
        assert [(r.category, r.task_id) for r in stuck_tasks(using="sqlite")] == [("past_deadline", str(late))]
        gauges = {m.name: m.samples for m in DatabaseCollector(using="sqlite").collect()}
        by_status = {s.labels["status"]: s.value for s in gauges["horizon_tasks"]}
        assert by_status["completed"] == 1 and by_status["pending"] == 1
        assert gauges["horizon_approvals_pending"][0].value == 0
    finally:
        tasks.all().delete()
