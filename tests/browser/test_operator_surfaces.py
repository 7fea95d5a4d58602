"""Issue 19's proof in a real browser, against gunicorn with DEBUG off (tests/browser/conftest.py).

The bundled approval scenario (agents/scenarios/approval_demo.json) driven from the browser: the
admin index and the inbox are styled (the stylesheet is loaded and applied), the decide link is on a
1280 px screen, code is shown as code; approve a `run_python` call and see its output on the
timeline; reject a step without a reason (refused) and with one (the agent re-plans, the failed step
stays visible); edit a call's arguments with an invalid then a valid value. Screenshots go to
artifacts/after/ (git-ignored). The agent runs in this process between decisions, as `drive` would.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from agents.scripted import BUNDLED, ScriptedModel
from tasks_app.models import AgentTask, Approval
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.browser.conftest import SCREENSHOTS, WIDTH

WAIT_SECONDS = 20
PASSWORD = "s3cret-pass"


def scenario() -> dict[str, Any]:
    return json.loads((BUNDLED / "approval_demo.json").read_text())


def waiting_task(goal: str) -> tuple[AgentTask, Approval]:
    task = agent_task_create(goal=goal)
    drive(task)
    task.refresh_from_db()
    assert task.status == "requires_human", task.status_reason
    return task, Approval.objects.get(task=task, status="pending")


def drive(task: AgentTask) -> None:
    agent_task_drive(task_id=str(task.pk), model=ScriptedModel(scenario()))


def log_in(browser: Any, base: str, next_url: str) -> None:
    from selenium.webdriver.common.by import By

    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    browser.get(f"{base}{reverse('admin:login')}?next={next_url}")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    click_through(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    assert urlsplit(browser.current_url).path == next_url, browser.current_url  # logged in, and sent on


def click_through(browser: Any, element: Any) -> None:
    """Click, then wait for the next page: a click can return before its navigation starts, and a
    lookup made then searches the page being left (the admin index was not found once on CI)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    leaving = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, WAIT_SECONDS).until(ec.staleness_of(leaving))


def assert_styled(browser: Any) -> None:
    """The admin's stylesheet was served and applied: its rules are readable and the header is coloured."""
    found = browser.execute_script(
        """
        const sheet = [...document.styleSheets].find(s => (s.href || "").endsWith("/static/admin/css/base.css"));
        let rules = -1;  // no such stylesheet
        try { rules = sheet ? sheet.cssRules.length : -1; } catch (e) { rules = -2; }  // linked but not served
        return {
          rules: rules,
          header: getComputedStyle(document.getElementById("header")).backgroundColor,
          font: getComputedStyle(document.body).fontFamily,
        };
        """
    )
    assert found["rules"] > 50, found  # the file arrived (an unserved one has no rules)
    assert found["header"] not in ("rgba(0, 0, 0, 0)", "transparent"), found  # base.css colours the header
    assert "serif" not in found["font"].replace("sans-serif", ""), found  # not the browser's default font


def shoot(browser: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, min(max(height + 120, 900), 4000))
    path = SCREENSHOTS / f"{name}.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 0
    browser.set_window_size(WIDTH, 900)
    print(f"screenshot: {path}")


def message(browser: Any, kind: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return (
        WebDriverWait(browser, WAIT_SECONDS)
        .until(ec.presence_of_element_located((By.CSS_SELECTOR, f"ul.messagelist li.{kind}")))
        .text
    )


def decide_page(browser: Any, base: str, approval: Approval) -> None:
    browser.get(base + reverse("admin:tasks_app_approval_decide", args=[approval.pk]))


@pytest.mark.django_db(transaction=True)
def test_the_approval_scenario_end_to_end_in_the_browser_under_gunicorn(chromium: Any, gunicorn_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser, base = chromium, gunicorn_url
    task, approval = waiting_task("Archive the stale customer accounts")
    assert approval.kind == "tool" and approval.action["tool"] == "run_python"

    # The admin index: styled, and the reports are linked from it.
    log_in(browser, base, reverse("admin:index"))
    reports = browser.find_element(By.ID, "horizon-reports")
    assert_styled(browser)
    for link in ("Approvals inbox", "Outcomes", "Stuck tasks", "Branches"):
        assert reports.find_element(By.LINK_TEXT, link).get_attribute("href")
    shoot(browser, "admin-index")

    # The inbox: styled, the decide link on a 1280 px screen, the code as code (its own lines).
    browser.get(base + reverse("admin:tasks_app_approval_changelist"))
    assert_styled(browser)
    link = browser.find_element(By.CSS_SELECTOR, "a.decide-link")
    box = browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); const list = document.querySelector('#changelist .results');"
        "return {right: r.right, width: window.innerWidth, scroll: document.documentElement.scrollWidth,"
        " listScroll: list.scrollWidth, listWidth: list.clientWidth};",
        link,
    )
    assert box["right"] <= box["width"] == WIDTH and box["scroll"] <= WIDTH, box  # visible, no sideways scrolling
    assert box["listScroll"] <= box["listWidth"], box  # every column of the list on screen, none scrolled away
    code = browser.find_element(By.CSS_SELECTOR, "pre.proposed-code").text
    assert "rows = open('stale.csv').read().splitlines()[1:]\nopen('archive.csv', 'w')" in code and "\\n'.join" in code
    assert "Archive the stale customer accounts" in browser.find_element(By.ID, "result_list").text
    shoot(browser, "inbox")

    # Approve the run_python call on its decide page; in-process mode says what continues the task.
    click_through(browser, link)
    assert "rows = open('stale.csv')" in browser.find_element(By.ID, "proposed-code").text
    browser.find_element(By.ID, "approve-button").click()
    said = message(browser, "success")
    assert "nothing runs it until you run: " in said and said.endswith(f"python manage.py drive --task {task.pk}"), said
    drive(task)  # what that command does
    task.refresh_from_db()
    assert task.status == "requires_human"  # the next step asks before emailing anyone
    email = Approval.objects.get(task=task, status="pending")
    assert email.kind == "step"

    # Reject without a reason: refused. With one: the agent re-plans around it.
    decide_page(browser, base, email)
    browser.find_element(By.ID, "reject-button").click()
    assert "a rejection needs a comment" in message(browser, "error")
    assert Approval.objects.get(pk=email.pk).status == "pending"
    browser.find_element(By.ID, "id_comment").send_keys("Do not email customers; leave a note instead")
    browser.find_element(By.ID, "reject-button").click()
    assert "Rejected" in message(browser, "success")
    drive(task)
    task.refresh_from_db()
    assert task.status == "completed", task.status_reason

    # The timeline: the tool's output, durations, every plan version with the failed step kept.
    browser.get(base + reverse("admin:tasks_app_agenttask_timeline", args=[task.pk]))
    assert_styled(browser)
    steps = browser.find_element(By.ID, "steps-body").text
    assert "run_python · ok" in steps and "archived 3 accounts" in steps and "write_file · ok" in steps
    assert "Leave the owners a note" in steps
    earlier = browser.find_element(By.ID, "earlier-body").text
    assert "Email the account owners" in earlier and "failed" in earlier and "Do not email customers" in earlier
    assert "v1" in browser.find_element(By.ID, "plan-versions").text and "v2" in browser.find_element(By.ID, "plan-versions").text
    first = browser.find_element(By.ID, "step-1").text.split("\n")
    assert first[0] == "2" or first[0].startswith("2 ")  # numbered from 1: index 1 is step 2
    shoot(browser, "timeline")
    # The step's transcript is one click away.
    click_through(browser, browser.find_element(By.CSS_SELECTOR, "#step-1 a[href*='/transcript/']"))
    assert "calls run_python" in browser.find_element(By.ID, "transcript").text


@pytest.mark.django_db(transaction=True)
def test_an_edit_with_an_invalid_then_a_valid_argument_in_the_browser(chromium: Any, gunicorn_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser, base = chromium, gunicorn_url
    task, approval = waiting_task("Archive with a reviewed script")
    log_in(browser, base, reverse("admin:tasks_app_approval_decide", args=[approval.pk]))
    assert_styled(browser)
    arguments = browser.find_element(By.ID, "id_arguments")
    arguments.clear()
    arguments.send_keys('{"code": 123}')
    browser.find_element(By.ID, "approve-edited-button").click()
    refused = message(browser, "error")
    # The user's language: the argument, what it expects, what was given; no JSON schema.
    assert "argument 'code' expects text (a JSON string); you gave a number 123" in refused, refused
    assert "{'type'" not in refused
    assert Approval.objects.get(pk=approval.pk).status == "pending"

    arguments = browser.find_element(By.ID, "id_arguments")
    arguments.clear()
    arguments.send_keys('{"code": "print(\'edited: nothing archived\')"}')
    browser.find_element(By.ID, "approve-edited-button").click()
    assert "Approved with edited arguments" in message(browser, "success")
    drive(task)
    browser.get(base + reverse("admin:tasks_app_agenttask_timeline", args=[task.pk]))
    steps = browser.find_element(By.ID, "steps-body").text
    assert "edited: nothing archived" in steps and "print('edited: nothing archived')" in steps
