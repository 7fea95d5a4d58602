"""Issue 5's proof in a real browser: headless Chromium logs into the admin, approves a step in the
inbox, watches the task's timeline page follow the task to completion, and keeps a screenshot.

Debian's chromium and chromedriver are required (scripts/ensure_browser.sh installs them; the test
command runs it): when they are missing this test fails, it never skips (the `chromium` fixture in
tests/browser/conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from agents.scripted import ScriptedModel
from tasks_app.models import AgentTask, Approval, Event
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.conftest import make_scenario

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "artifacts"
WAIT_SECONDS = 20


def flagged_scenario() -> dict[str, Any]:
    scenario = make_scenario(3, name="browser")
    scenario["plan"][1] = {**scenario["plan"][1], "title": "Delete the old tenant", "needs_approval": True}
    return scenario


@pytest.mark.django_db(transaction=True)
def test_an_operator_approves_a_step_in_the_browser_and_the_task_completes(chromium: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium  # tests/browser/conftest.py; this test's screenshots show the whole timeline page
    browser.set_window_size(1400, 2200)
    wait = WebDriverWait(browser, WAIT_SECONDS)
    operator = User.objects.create_user("operator", password="s3cret-pass", is_staff=True)
    operator.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="tasks_app", codename__in=["view_approval", "decide_approval", "view_agenttask"]
        )
    )
    scenario = flagged_scenario()
    task = agent_task_create(goal="Retire tenant Acme")
    agent_task_drive(task_id=str(task.pk), model=ScriptedModel(scenario))
    task.refresh_from_db()
    assert task.status == "requires_human"
    approval = Approval.objects.get(task=task, status="pending")

    # Log in; the admin sends us on to the inbox.
    inbox = reverse("admin:tasks_app_approval_changelist")
    browser.get(f"{live_server.url}{reverse('admin:login')}?next={inbox}")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("s3cret-pass")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    assert "Delete the old tenant" in browser.find_element(By.ID, "result_list").text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "inbox.png"))

    # Approve the pending step with the admin action.
    browser.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{approval.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("approve_selected")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    success = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success")))
    assert "Approved: 'Delete the old tenant'" in success.text
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by == operator

    # Open the timeline while the task still has to run, then run it: the page follows it live.
    browser.get(live_server.url + reverse("admin:tasks_app_agenttask_timeline", args=[task.pk]))
    assert browser.find_element(By.ID, "task-status").text == "running"
    agent_task_drive(task_id=str(task.pk), model=ScriptedModel(scenario))
    task.refresh_from_db()
    assert task.status == "completed", task.status_reason
    last = Event.objects.filter(task=task).order_by("-seq").first()
    assert last is not None and last.type == "task.completed"
    wait.until(ec.text_to_be_present_in_element((By.ID, "task-status"), "completed"))
    wait.until(ec.presence_of_element_located((By.ID, f"event-{last.seq}")))
    assert "ended" in browser.find_element(By.ID, "live-state").text
    steps = browser.find_element(By.ID, "steps-body").text
    assert steps.count("completed") == 3 and "Delete the old tenant" in steps
    assert "operator" in browser.find_element(By.ID, "approvals-body").text

    shot = ARTIFACTS / "timeline.png"
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 0
    print(f"timeline screenshot: {shot}")
    assert AgentTask.objects.get(pk=task.pk).status == "completed"
