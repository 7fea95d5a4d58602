"""The API changes real state on PostgreSQL: create → drive → completed; events and checkpoints
paged; signals, pause, resume, cancel; approve, reject and edit-then-approve of a gated tool call.

Tasks are created through the API and driven by the in-process driver (agent_task_drive) with a
scripted model, as `manage.py drive` would drive them.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from tasks_app.models import AgentTask, Approval, Checkpoint, Event, Signal
from tasks_app.services.audit import events_verify
from tasks_app.services.tasks import agent_task_drive
from tests.api.conftest import SENT, ApiClient, client_for, make_user
from tests.support.queue_model import QueueModel, call, final, plan

pytestmark = pytest.mark.django_db(transaction=True)


def create(api: ApiClient, **body: Any) -> str:
    response = api.post("/api/tasks", {"goal": "write a report", **body})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    return str(response.json()["id"])


def test_create_drive_get_shows_completed_with_result_and_usage(alice: ApiClient) -> None:
    task_id = create(alice, context={"audience": "board"}, max_steps=10)
    assert AgentTask.objects.get(pk=task_id).owner == User.objects.get(username="alice")
    agent_task_drive(task_id=task_id, model=QueueModel(plan=[plan("gather", "write")], step=[final("facts"), final("report")]))
    task = alice.get(f"/api/tasks/{task_id}").json()
    assert task["status"] == "completed", task
    assert task["result"] is not None and "report" in str(task["result"])
    assert task["usage"]["steps_completed"] == 2 and task["usage"]["model_calls"] >= 3
    assert task["usage"]["prompt_tokens"] > 0 and task["usage"]["max_steps"] == 10
    row = AgentTask.objects.get(pk=task_id)
    assert task["last_event_seq"] == row.last_event_seq

    # Events, paged by sequence number, come back whole and in order.
    seqs: list[int] = []
    after = 0
    while True:
        page = alice.get(f"/api/tasks/{task_id}/events", after_seq=after, limit=3).json()
        seqs += [e["seq"] for e in page["items"]]
        after = page["next_after_seq"]
        if not page["more"]:
            break
    assert seqs == list(range(1, row.last_event_seq + 1))
    types = [e["type"] for e in alice.get(f"/api/tasks/{task_id}/events", limit=200).json()["items"]]
    assert types == list(Event.objects.filter(task_id=task_id).order_by("seq").values_list("type", flat=True))
    assert types[0] == "task.created" and types[-1] == "task.completed"
    tail = alice.get(f"/api/tasks/{task_id}/events", after_seq=row.last_event_seq).json()
    assert tail == {"items": [], "next_after_seq": row.last_event_seq, "more": False}

    checkpoints = alice.get(f"/api/tasks/{task_id}/checkpoints").json()["items"]
    stored = Checkpoint.objects.filter(task_id=task_id).order_by("seq").values_list("seq", flat=True)
    assert [c["seq"] for c in checkpoints] == list(stored)
    assert checkpoints and checkpoints[-1]["event_seq"] == row.last_event_seq


def test_a_signal_through_the_api_wakes_a_waiting_task(alice: ApiClient) -> None:
    task_id = create(alice)
    model = QueueModel(plan=[plan("wait")], step=[call("wait_for_signal", {"names": ["go"]}), final("went on")])
    agent_task_drive(task_id=task_id, model=model)
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "waiting"
    sent = alice.post(f"/api/tasks/{task_id}/signals", {"name": "go", "payload": {"ok": True}})
    assert sent.status_code == 202 and sent.json()["name"] == "go"
    signal = Signal.objects.get(task_id=task_id)
    assert signal.payload == {"ok": True} and signal.consumed_key is None
    assert Event.objects.filter(task_id=task_id, type="signal.received").exists()
    agent_task_drive(task_id=task_id, model=model)
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "completed"
    assert Signal.objects.get(task_id=task_id).consumed_key is not None
    # A finished task reads no more signals: a clear 400, nothing stored.
    late = alice.post(f"/api/tasks/{task_id}/signals", {"name": "go"})
    assert late.status_code == 400 and "will never read a signal" in late.json()["detail"]
    assert Signal.objects.filter(task_id=task_id).count() == 1


def test_pause_resume_cancel_through_the_api(alice: ApiClient) -> None:
    task_id = create(alice)
    paused = alice.post(f"/api/tasks/{task_id}/pause", {"reason": "hold on"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert AgentTask.objects.get(pk=task_id).status_reason == "hold on"
    assert agent_task_drive(task_id=task_id, model=QueueModel()) == 0  # a paused task is not driven
    resumed = alice.post(f"/api/tasks/{task_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    cancelled = alice.post(f"/api/tasks/{task_id}/cancel", {"reason": "no longer needed"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    event = Event.objects.filter(task_id=task_id).order_by("-seq").first()
    assert event is not None and event.type == "task.cancelled" and event.payload["by"] == "api:alice"
    again = alice.post(f"/api/tasks/{task_id}/cancel", {})
    assert again.status_code == 400 and "is cancelled" in again.json()["detail"]
    assert alice.post(f"/api/tasks/{task_id}/resume").status_code == 400
    assert alice.post(f"/api/tasks/{task_id}/pause", {"reason": "r" * 2001}).status_code == 422


# --- approvals ----------------------------------------------------------------------------------


def mail_model() -> QueueModel:
    return QueueModel(plan=[plan("mail")], step=[call("test_api_send_mail", {"to": "ceo@acme", "subject": "hi"}), final("done")])


def waiting_for_approval(api: ApiClient, model: QueueModel) -> tuple[str, int]:
    task_id = create(api, profile="gated")
    agent_task_drive(task_id=task_id, model=model)
    assert api.get(f"/api/tasks/{task_id}").json()["status"] == "requires_human"
    approvals = api.get(f"/api/tasks/{task_id}/approvals").json()["items"]
    assert len(approvals) == 1 and approvals[0]["status"] == "pending"
    assert approvals[0]["action"] == {"tool": "test_api_send_mail", "arguments": {"to": "ceo@acme", "subject": "hi"}}
    return task_id, approvals[0]["id"]


def test_approve_through_the_api_runs_the_call_once(alice: ApiClient, gated: None) -> None:
    model = mail_model()
    task_id, approval_id = waiting_for_approval(alice, model)
    decided = alice.post(f"/api/approvals/{approval_id}/approve", {"comment": "fine"})
    assert decided.status_code == 200, decided.content
    assert decided.json()["status"] == "approved" and decided.json()["decided_by"] == "alice"
    assert AgentTask.objects.get(pk=task_id).status == "running"
    agent_task_drive(task_id=task_id, model=model)
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "completed"
    assert SENT == [{"to": "ceo@acme", "subject": "hi"}]
    twice = alice.post(f"/api/approvals/{approval_id}/approve", {})
    assert twice.status_code == 400 and "already decided" in twice.json()["detail"]


def test_reject_through_the_api_runs_nothing(alice: ApiClient, gated: None) -> None:
    model = mail_model()
    task_id, approval_id = waiting_for_approval(alice, model)
    decided = alice.post(f"/api/approvals/{approval_id}/reject", {"comment": "not the CEO"})
    assert decided.status_code == 200 and decided.json()["status"] == "rejected"
    agent_task_drive(task_id=task_id, model=model)
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "completed"
    assert SENT == []
    assert "not the CEO" in str(model.requests[-1].messages)


def test_edit_through_the_api_runs_the_edited_arguments_and_refuses_bad_ones(alice: ApiClient, gated: None) -> None:
    model = mail_model()
    task_id, approval_id = waiting_for_approval(alice, model)
    bad = alice.post(f"/api/approvals/{approval_id}/edit", {"arguments": {"to": "ops@acme"}})
    assert bad.status_code == 400 and "argument 'subject' is missing: it expects text" in bad.json()["detail"]
    assert Approval.objects.get(pk=approval_id).status == "pending"
    edited = alice.post(f"/api/approvals/{approval_id}/edit", {"arguments": {"to": "ops@acme", "subject": "hi"}})
    assert edited.status_code == 200 and edited.json()["edited_arguments"] == {"to": "ops@acme", "subject": "hi"}
    agent_task_drive(task_id=task_id, model=model)
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "completed"
    assert SENT == [{"to": "ops@acme", "subject": "hi"}]


def test_deciding_needs_the_decide_permission(gated: None) -> None:
    carol = client_for(make_user("carol", may_decide=False))
    task_id, approval_id = waiting_for_approval(carol, mail_model())
    refused = carol.post(f"/api/approvals/{approval_id}/approve", {})
    assert refused.status_code == 403 and "decide_approval" in refused.json()["detail"]
    assert Approval.objects.get(pk=approval_id).status == "pending"
    assert carol.get(f"/api/approvals/{approval_id}").json()["task_id"] == task_id


def test_fork_through_the_api_from_an_early_checkpoint_and_compare_branches(alice: ApiClient, bob: ApiClient) -> None:
    task_id = create(alice, max_steps=10)
    agent_task_drive(task_id=task_id, model=QueueModel(plan=[plan("gather", "write")], step=[final("facts"), final("report")]))
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "completed"
    # Checkpoint 2 follows the first step: the fork re-runs only the second one.
    forked = alice.post(f"/api/tasks/{task_id}/fork", {"checkpoint_seq": 2})
    assert forked.status_code == 201, forked.content
    fork_id = forked.json()["id"]
    assert fork_id != task_id and AgentTask.objects.get(pk=fork_id).owner == User.objects.get(username="alice")
    second = QueueModel(plan=[], step=[final("another report")])
    agent_task_drive(task_id=fork_id, model=second)
    fork = alice.get(f"/api/tasks/{fork_id}").json()
    assert fork["status"] == "completed" and "another report" in str(fork["result"])
    assert len(second.requests) == 1  # the plan and step 1 came from the source's journal
    assert AgentTask.objects.get(pk=task_id).result == alice.get(f"/api/tasks/{task_id}").json()["result"]

    branches = alice.get(f"/api/tasks/{task_id}/branches").json()["items"]
    assert [(b["task_id"], b["depth"], b["source_id"], b["checkpoint_seq"]) for b in branches] == [
        (task_id, 0, None, None),
        (fork_id, 1, task_id, 2),
    ]
    assert all(b["status"] == "completed" for b in branches)

    # A checkpoint that does not exist, or one where the task had ended, is refused with a reason.
    missing = alice.post(f"/api/tasks/{task_id}/fork", {"checkpoint_seq": 999})
    assert missing.status_code == 400 and "no checkpoint 999" in missing.json()["detail"]
    last = AgentTask.objects.get(pk=task_id).checkpoint_seq
    ended = alice.post(f"/api/tasks/{task_id}/fork", {"checkpoint_seq": last})
    assert ended.status_code == 400 and "nothing is left to run" in ended.json()["detail"]
    # Bob can neither fork Alice's task nor see its branches.
    assert bob.post(f"/api/tasks/{task_id}/fork", {"checkpoint_seq": 2}).status_code == 404
    assert bob.get(f"/api/tasks/{task_id}/branches").status_code == 404
    assert [r.ok for r in events_verify(task_ids=[task_id, fork_id])] == [True, True]
    assert AgentTask.objects.count() == 2
