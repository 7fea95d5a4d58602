"""The approval decision service on PostgreSQL: approve, reject, edit-then-approve, the permission,
two admins at once, stale approvals and invalid edits (issue 5, item 2's rules)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection

from agents.errors import InvalidInput, NotAllowed
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.tools import default_registry
from tasks_app.models import AgentTask, Approval, Event
from tasks_app.services.approvals import approval_decide
from tasks_app.services.control import agent_task_cancel
from tasks_app.store import DjangoStore
from tests.support.mail_tool import registered_mail_tool
from tests.support.queue_model import QueueModel, call, final, plan

pytestmark = pytest.mark.django_db(transaction=True)

SENT: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def mail_tool():  # type: ignore[no-untyped-def]
    """A risky tool registered for these tests only (the decision service validates edits against it)."""
    with registered_mail_tool("test_send_mail", SENT):
        yield


def user(name: str, *, may_decide: bool = True) -> User:
    u = User.objects.create_user(name, password="pw", is_staff=True)
    if may_decide:
        u.user_permissions.add(Permission.objects.get(codename="decide_approval"))
    return User.objects.get(pk=u.pk)  # fresh, so that the permission cache is empty


def waiting_for_a_mail(model: QueueModel | None = None) -> tuple[Runner, str, Approval]:
    model = model or QueueModel(
        plan=[plan("mail")], step=[call("test_send_mail", {"to": "ceo@acme", "subject": "hi"}), final("done")]
    )
    profiles = {"default": AgentProfile(name="default", approval_risks=("external",))}
    runner = Runner(DjangoStore(), model, default_registry, profiles=profiles)
    result = runner.start("tell the CEO")
    assert result.status == "requires_human"
    return runner, result.task_id, Approval.objects.get(task_id=result.task_id)


def test_approving_applies_once_names_the_user_and_wakes_the_task() -> None:
    runner, task_id, approval = waiting_for_a_mail()
    assert approval.status == "pending" and approval.action == {
        "tool": "test_send_mail",
        "arguments": {"to": "ceo@acme", "subject": "hi"},
    }
    decided = approval_decide(approval_id=approval.pk, user=user("alice"), approve=True, comment="fine")
    assert decided.status == "approved" and decided.decided_by == "alice"
    event = Event.objects.filter(task_id=task_id).order_by("-seq").first()
    assert event is not None and event.type == "approval.decided" and event.payload["by"] == "alice"
    task = AgentTask.objects.get(pk=task_id)
    assert task.status == "running" and task.next_run_at is not None and task.enqueued_at is not None
    assert runner.run(task_id).status == "completed"
    assert SENT == [{"to": "ceo@acme", "subject": "hi"}]


def test_rejecting_sends_the_comment_to_the_model_and_nothing_runs() -> None:
    model = QueueModel(plan=[plan("mail")], step=[call("test_send_mail", {"to": "all@acme", "subject": "x"}), final("skipped")])
    runner, task_id, approval = waiting_for_a_mail(model)
    approval_decide(approval_id=approval.pk, user=user("bob"), approve=False, comment="not to everyone")
    assert runner.run(task_id).status == "completed" and SENT == []
    assert "not to everyone" in model.requests[-1].messages[-1]["content"]


def test_edit_then_approve_runs_the_edited_arguments_and_refuses_invalid_ones() -> None:
    runner, task_id, approval = waiting_for_a_mail()
    alice = user("alice")
    for bad, message in [
        # The argument, what it expects and what was given: never a raw JSON schema.
        ({"to": "ops@acme"}, "argument 'subject' is missing: it expects text"),
        ({"to": "ops@acme", "subject": "hi", "cc": "x"}, r"argument 'cc' is not one this tool takes \(it takes .*subject"),
        ({"to": 5, "subject": "hi"}, r"argument 'to' expects text \(a JSON string\); you gave a number 5"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            approval_decide(approval_id=approval.pk, user=alice, approve=True, edited_arguments=bad)
    assert Approval.objects.get(pk=approval.pk).status == "pending"  # nothing decided
    approval_decide(approval_id=approval.pk, user=alice, approve=True, edited_arguments={"to": "ops@acme", "subject": "hi"})
    assert runner.run(task_id).status == "completed"
    assert SENT == [{"to": "ops@acme", "subject": "hi"}]


def test_a_user_without_the_permission_cannot_decide() -> None:
    _, _, approval = waiting_for_a_mail()
    with pytest.raises(NotAllowed, match="decide_approval"):
        approval_decide(approval_id=approval.pk, user=user("mallory", may_decide=False), approve=True)
    assert Approval.objects.get(pk=approval.pk).status == "pending"


def test_two_admins_approving_at_once_apply_one_decision() -> None:
    _, task_id, approval = waiting_for_a_mail()
    admins = [user("alice"), user("bob")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(admin: User) -> None:
        try:
            barrier.wait()
            approval_decide(approval_id=approval.pk, user=admin, approve=True)
            outcomes.append("applied")
        except InvalidInput as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(a,)) for a in admins]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcomes.count("applied") == 1
    assert any("already decided" in o or "stale" in o for o in outcomes if o != "applied")
    assert Event.objects.filter(task_id=task_id, type="approval.decided").count() == 1


def test_an_approval_the_task_no_longer_waits_for_is_refused() -> None:
    _, task_id, approval = waiting_for_a_mail()
    agent_task_cancel(task_id=task_id, reason="changed our minds")
    with pytest.raises(InvalidInput, match="stale"):
        approval_decide(approval_id=approval.pk, user=user("alice"), approve=True)
    assert Approval.objects.get(pk=approval.pk).status == "pending"
    assert AgentTask.objects.get(pk=task_id).status == "cancelled"


def test_a_decided_or_unknown_approval_is_refused() -> None:
    _, _, approval = waiting_for_a_mail()
    alice = user("alice")
    approval_decide(approval_id=approval.pk, user=alice, approve=False, comment="no")
    with pytest.raises(InvalidInput, match="already decided"):
        approval_decide(approval_id=approval.pk, user=alice, approve=True)
    with pytest.raises(InvalidInput, match="no approval #999999"):
        approval_decide(approval_id=999999, user=alice, approve=True)
