"""Every endpoint needs a token (401 without, or with a wrong or revoked one) and answers 404 for
another owner's task or approval, with the same body as for an id that does not exist."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from tasks_app.models import AgentTask, ApiToken, Approval
from tasks_app.services.tasks import agent_task_create
from tests.api.conftest import ApiClient, client_for, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def endpoints(task_id: str, approval_id: int) -> list[tuple[str, str, dict | None]]:
    t, a = f"/api/tasks/{task_id}", f"/api/approvals/{approval_id}"
    return [
        ("get", f"{t}", None),
        ("get", f"{t}/events", None),
        ("get", f"{t}/checkpoints", None),
        ("get", f"{t}/approvals", None),
        ("post", f"{t}/signals", {"name": "go"}),
        ("post", f"{t}/cancel", {}),
        ("post", f"{t}/pause", {}),
        ("post", f"{t}/resume", None),
        ("post", f"{t}/fork", {"checkpoint_seq": 1}),
        ("get", f"{t}/branches", None),
        ("get", f"{a}", None),
        ("post", f"{a}/approve", {}),
        ("post", f"{a}/reject", {}),
        ("post", f"{a}/edit", {"arguments": {}}),
    ]


def call(api: ApiClient, method: str, path: str, body: dict | None):  # type: ignore[no-untyped-def]
    return api.get(path) if method == "get" else api.post(path, body)


def bobs_task_and_approval(bob: ApiClient) -> tuple[str, int]:
    created = bob.post("/api/tasks", {"goal": "bob's secret plan"})
    assert created.status_code == 201, created.content
    task_id = created.json()["id"]
    approval = Approval.objects.create(
        task_id=task_id, key=f"{task_id}/p1/s0", kind="step", step_index=0, plan_version=1, action={"step": "x"}, digest="d"
    )
    return task_id, approval.pk


def test_every_endpoint_answers_401_without_a_valid_token(anonymous: ApiClient, bob: ApiClient) -> None:
    task_id, approval_id = bobs_task_and_approval(bob)
    wrong = ApiClient(Client(), bob.token[:-4] + "AAAA")  # type: ignore[index]
    garbage = ApiClient(Client(), "not-a-token")
    every = [*endpoints(task_id, approval_id), ("get", "/api/tasks", None), ("post", "/api/tasks", {"goal": "x"})]
    for api in (anonymous, wrong, garbage):
        for method, path, body in every:
            response = call(api, method, path, body)
            assert response.status_code == 401, (method, path, response.content)
            assert response.json()["detail"].startswith("authentication required")
            assert response["WWW-Authenticate"].startswith("Bearer")
    assert AgentTask.objects.count() == 1  # nothing was created or changed
    assert AgentTask.objects.get().status == "pending"


def test_a_revoked_token_or_an_inactive_user_is_refused(bob: ApiClient) -> None:
    assert bob.get("/api/tasks").status_code == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    assert bob.get("/api/tasks").status_code == 401
    ApiToken.objects.update(revoked_at=None)
    ApiToken.objects.get().user.__class__.objects.update(is_active=False)
    assert bob.get("/api/tasks").status_code == 401


def test_another_owners_objects_answer_404_exactly_like_unknown_ids(alice: ApiClient, bob: ApiClient) -> None:
    task_id, approval_id = bobs_task_and_approval(bob)
    unknown = endpoints(str(uuid.uuid4()), 987654)
    malformed = endpoints("not-a-uuid", 987655)
    for (method, path, body), (_, unknown_path, _), (_, bad_path, _) in zip(
        endpoints(task_id, approval_id), unknown, malformed, strict=True
    ):
        theirs = call(alice, method, path, body)
        nobody = call(alice, method, unknown_path, body)
        bad = call(alice, method, bad_path, body)
        assert theirs.status_code == nobody.status_code == bad.status_code == 404, (path, theirs.content)
        assert theirs.content == nobody.content == bad.content == b'{"detail": "not found"}'
    assert alice.get("/api/tasks").json()["items"] == []
    # Bob's task was not touched by any of it.
    task = AgentTask.objects.get(pk=task_id)
    assert task.status == "pending" and not task.signals.exists()
    assert Approval.objects.get(pk=approval_id).status == "pending"
    # Bob sees his own.
    assert [t["id"] for t in bob.get("/api/tasks").json()["items"]] == [task_id]
    assert bob.get(f"/api/tasks/{task_id}").json()["goal"] == "bob's secret plan"


def test_tasks_without_an_owner_are_seen_only_by_superusers(alice: ApiClient) -> None:
    cli_task = agent_task_create(goal="made by the CLI")  # no owner
    assert alice.get(f"/api/tasks/{cli_task.pk}").status_code == 404
    root = client_for(make_user("root", superuser=True))
    assert root.get(f"/api/tasks/{cli_task.pk}").json()["id"] == str(cli_task.pk)
    assert [t["id"] for t in root.get("/api/tasks").json()["items"]] == [str(cli_task.pk)]


def test_tokens_are_stored_only_as_a_hash(alice: ApiClient) -> None:
    row = ApiToken.objects.get()
    raw = alice.token
    assert raw is not None and raw.startswith(f"hzn_{row.prefix}_")
    assert row.digest == hashlib.sha256(raw.encode()).hexdigest()
    stored = [str(v) for v in ApiToken.objects.values_list(flat=False).get()]
    assert all(raw not in v and raw.split("_", 2)[2] not in v for v in stored)


def test_a_staff_session_works_and_needs_csrf_for_writes(alice: ApiClient) -> None:
    staff = make_user("admin", superuser=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    assert browser.get("/api/tasks").status_code == 200
    refused = browser.post("/api/tasks", '{"goal": "x"}', content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get("/api/docs")  # sets the CSRF cookie, as the docs page does for staff
    token = browser.cookies["csrftoken"].value
    created = browser.post("/api/tasks", '{"goal": "x"}', content_type="application/json", headers={"X-CSRFToken": token})
    assert created.status_code == 201
    assert AgentTask.objects.get().owner == staff
