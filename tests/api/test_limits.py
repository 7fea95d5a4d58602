"""The API's limits: body size (413), page sizes, the creation rate limit (429 + Retry-After, shared
through the database), and clear 4xx JSON for bad input, never a 5xx."""

from __future__ import annotations

import json
import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from agents.runner import CONTEXT_MAX_BYTES, GOAL_MAX_CHARS
from tasks_app.models import AgentTask, ApiRateWindow
from tasks_app.services.rate_limits import rate_limit_hit
from tasks_app.services.tasks import agent_task_create
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_oversized_body_answers_413_before_anything_is_done(alice: ApiClient, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HORIZON_API_MAX_BODY_BYTES = 10_000
    big = {"goal": "x", "context": {"blob": "y" * 20_000}}
    response = alice.post("/api/tasks", big)
    assert response.status_code == 413
    assert response.json()["detail"] == f"the request body is {len(json.dumps(big))} bytes; the limit is 10000"
    task = agent_task_create(goal="mine", owner=User.objects.get(username="alice"))
    assert alice.post(f"/api/tasks/{task.pk}/signals", {"name": "x", "payload": "z" * 20_000}).status_code == 413
    assert AgentTask.objects.count() == 1 and not task.signals.exists()
    assert alice.post("/api/tasks", {"goal": "small"}).status_code == 201


def test_goal_and_context_limits_are_the_services_and_answer_clearly(alice: ApiClient) -> None:
    long_goal = alice.post("/api/tasks", {"goal": "g" * (GOAL_MAX_CHARS + 1)})
    assert long_goal.status_code == 422 and long_goal.json()["errors"][0]["loc"][-1] == "goal"
    blank = alice.post("/api/tasks", {"goal": "   "})  # passes the schema; the service refuses it
    assert blank.status_code == 400 and blank.json() == {"detail": "the goal is empty"}
    big_context = alice.post("/api/tasks", {"goal": "x", "context": {"k": "v" * CONTEXT_MAX_BYTES}})
    assert big_context.status_code == 400 and "the limit is 65536" in big_context.json()["detail"]
    profile = alice.post("/api/tasks", {"goal": "x", "profile": "nope"})
    assert profile.status_code == 400 and "unknown profile 'nope'" in profile.json()["detail"]
    assert AgentTask.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ("{not json", 400, "the request body is not valid JSON"),
        ('{"goal": NaN}', 400, "the request body is refused: NaN is not valid JSON"),
        ('{"goal": "x", "context": {"n": 1e400}}', 400, "the request body is refused: the number 1e400 is out of range"),
        ('{"goal": "a\\u0000b"}', 400, "the request body['goal'] contains a NUL character"),
        ('{"goal": "\\ud800"}', 400, "the request body['goal'] contains a lone surrogate"),
        ('{"goal": "x", "context": ' + "[" * 3000 + "]" * 3000 + "}", 400, "the request body is nested more than 64"),
        ('{"goal": "x", "context": {"n": ' + "9" * 5000 + "}}", 400, "the request body is refused: a number of 5000"),
        ("[1, 2]", 400, "the request body must be a JSON object, not an array"),
        ('{"goal": "x", "owner_id": 999}', 400, "unknown fields: owner_id"),
        ('{"goal": "x", "max_steps": 0}', 422, "the request does not match the schema"),
        ('{"goal": "x", "callback_url": "ftp://example.com/x"}', 400, "the callback URL must be an absolute http"),
        ('{"goal": "x", "callback_url": "http://u:p@example.com/x"}', 400, "the callback URL must not carry credentials"),
    ],
)
def test_bad_bodies_get_a_clear_4xx(alice: ApiClient, body: str, status: int, detail: str) -> None:
    response = alice.client.post("/api/tasks", body, content_type="application/json", headers=alice._headers())
    assert response.status_code == status, response.content
    assert response.json()["detail"].startswith(detail)
    assert AgentTask.objects.count() == 0


def test_list_endpoints_cap_the_page_size_and_page_on(alice: ApiClient, settings) -> None:  # type: ignore[no-untyped-def]
    from tasks_app.api.routes import PAGE_CAP

    for i in range(5):
        assert alice.post("/api/tasks", {"goal": f"task {i}"}).status_code == 201
    over = alice.get("/api/tasks", limit=PAGE_CAP + 1)
    assert over.status_code == 422 and over.json()["errors"][0]["loc"][-1] == "limit"
    assert alice.get("/api/tasks", limit=0).status_code == 422
    first = alice.get("/api/tasks", limit=2).json()
    assert [t["goal"] for t in first["items"]] == ["task 4", "task 3"] and first["next_offset"] == 2
    last = alice.get("/api/tasks", limit=2, offset=4).json()
    assert [t["goal"] for t in last["items"]] == ["task 0"] and last["next_offset"] is None
    task_id = first["items"][0]["id"]
    for path in (f"/api/tasks/{task_id}/events", f"/api/tasks/{task_id}/checkpoints"):
        assert alice.get(path, limit=PAGE_CAP + 1).status_code == 422
        assert alice.get(path, after_seq=-1).status_code == 422
    refused = alice.get("/api/tasks", status="bogus")
    assert refused.status_code == 422
    assert "'cancelled', 'completed', 'failed', 'paused', 'pending'" in refused.content.decode()  # the states, alphabetically
    assert len(alice.get("/api/tasks", status="pending").json()["items"]) == 5


def test_task_creation_is_rate_limited_per_token_with_retry_after(alice: ApiClient, bob: ApiClient, settings) -> None:  # type: ignore[no-untyped-def]
    settings.HORIZON_API_CREATE_LIMIT = 3
    settings.HORIZON_API_CREATE_WINDOW_SECONDS = 3600
    codes = [alice.post("/api/tasks", {"goal": f"g{i}"}).status_code for i in range(3)]
    assert codes == [201, 201, 201]
    refused = alice.post("/api/tasks", {"goal": "one too many"})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert refused.json()["detail"].startswith("too many tasks created")
    assert alice.get("/api/tasks").status_code == 200  # reads are not limited
    assert bob.post("/api/tasks", {"goal": "bob has his own window"}).status_code == 201
    assert AgentTask.objects.count() == 4


def test_the_rate_counter_holds_across_connections_at_once() -> None:
    """Many threads, each its own database connection (as separate web processes would be): exactly `limit` pass."""
    allowed: list[bool] = []
    barrier = threading.Barrier(8)

    def hit() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                allowed.append(rate_limit_hit(key="token:race", limit=17, window_seconds=3600) is None)
        finally:
            connection.close()

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 17 and len(allowed) == 40
    assert ApiRateWindow.objects.get(key="token:race").count == 17


def test_an_unknown_api_path_and_method_are_json_4xx(alice: ApiClient) -> None:
    unknown = alice.get("/api/nope")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "not found"}
    response = Client().put("/api/tasks", "{}", content_type="application/json", headers=alice._headers())
    assert response.status_code == 405 and response.json() == {"detail": "method PUT not allowed"}
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    bad_length = Client().post("/api/tasks", "{}", content_type="application/json", CONTENT_LENGTH="x")
    assert bad_length.status_code == 400 and bad_length.json()["detail"].startswith("invalid Content-Length")


@pytest.mark.parametrize("body", ["[null, null]", "null", '"text"', "7", '{"reason": "r", "extra": 1}'])
@pytest.mark.parametrize("action", ["cancel", "pause"])
def test_a_body_that_is_not_the_declared_object_changes_nothing(alice: ApiClient, body: str, action: str) -> None:
    task_id = alice.post("/api/tasks", {"goal": "keep me"}).json()["id"]
    path = f"/api/tasks/{task_id}/{action}"
    response = alice.client.post(path, body, content_type="application/json", headers=alice._headers())
    assert response.status_code == 400, response.content
    assert AgentTask.objects.get(pk=task_id).status == "pending"


def test_invalid_utf8_is_a_400(alice: ApiClient) -> None:
    response = alice.client.post("/api/tasks", b'{"goal": "\xff"}', content_type="application/json", headers=alice._headers())
    assert response.status_code == 400 and "not UTF-8" in response.json()["detail"]
