"""Webhooks: a local receiver on 127.0.0.1 verifies the HMAC signature of each notification; a
failed attempt (500) is retried and every attempt is recorded in the WebhookDelivery table; the
in-process driver delivers in embedded mode and a real Celery worker delivers in distributed mode."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from tasks_app.models import AgentTask, WebhookDelivery
from tasks_app.services.tasks import agent_task_drive
from tasks_app.services.webhook_signatures import SIGNATURE_HEADER, sign, verify_signature, webhook_secret
from tasks_app.services.webhooks import webhook_deliver
from tests.api.conftest import ApiClient
from tests.support.broker import Broker
from tests.support.processes import CeleryWorker, database_url
from tests.support.queue_model import QueueModel, call, final, plan

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A webhook endpoint on 127.0.0.1: records each request and answers the next status of `answers`
    (200 once they run out)."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/horizon"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self, index: int, secret: bytes) -> dict[str, Any]:
        """The index-th request's JSON, after checking its signature as a receiver must."""
        request = self.requests[index]
        assert verify_signature(request["headers"][SIGNATURE_HEADER], request["body"], secret=secret)
        return dict(json.loads(request["body"]))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def two_steps() -> QueueModel:
    return QueueModel(plan=[plan("a", "b")], step=[final("A"), final("B")])


def test_completion_is_notified_signed_and_delivered_by_the_in_process_driver(alice: ApiClient, receiver: Receiver) -> None:
    created = alice.post("/api/tasks", {"goal": "notify me", "callback_url": receiver.url})
    task_id = created.json()["id"]
    assert created.json()["callback_url"] == receiver.url
    agent_task_drive(task_id=task_id, model=two_steps())  # ticks to completion, then sends what is due

    assert len(receiver.requests) == 1
    body = receiver.verified(0, webhook_secret())
    assert body["task_id"] == task_id and body["status"] == "completed" and "B" in str(body["result"])
    headers = receiver.requests[0]["headers"]
    assert headers["X-Horizon-Event"] == "task.completed" and headers["Content-Type"] == "application/json"
    delivery = WebhookDelivery.objects.get(task_id=task_id)
    assert body["delivery_id"] == delivery.pk and body["event_seq"] == delivery.event_seq
    assert delivery.event_seq == AgentTask.objects.get(pk=task_id).last_event_seq
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)

    # What the signature protects against: a changed body, another key, a replay later on.
    raw, header = receiver.requests[0]["body"], headers[SIGNATURE_HEADER]
    assert not verify_signature(header, raw.replace(b"completed", b"failed"), secret=webhook_secret())
    assert not verify_signature(header, raw, secret=b"someone else's key")
    assert not verify_signature(header, raw, secret=webhook_secret(), now=time.time() + 3600)
    old = sign(raw, timestamp=int(time.time()) - 3600)
    assert not verify_signature(old, raw, secret=webhook_secret())

    # Nothing more is sent: the delivery is done and a later drive finds nothing due.
    agent_task_drive()
    assert len(receiver.requests) == 1


def test_a_failed_attempt_is_retried_after_its_backoff_and_both_are_recorded(
    alice: ApiClient, receiver: Receiver, settings: Any
) -> None:
    settings.HORIZON_WEBHOOK_BACKOFF = 10.0
    receiver.answers = [500]
    task_id = alice.post("/api/tasks", {"goal": "retry me", "callback_url": receiver.url}).json()["id"]
    agent_task_drive(task_id=task_id, model=two_steps())
    delivery = WebhookDelivery.objects.get(task_id=task_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == ("pending", 1, 500, "HTTP 500")
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 8 < wait <= 10

    agent_task_drive()  # not due yet: nothing is sent
    assert len(receiver.requests) == 1
    # Ten seconds later (moved, not waited for), the next drive sends it again.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    agent_task_drive()
    assert len(receiver.requests) == 2
    first, second = receiver.verified(0, webhook_secret()), receiver.verified(1, webhook_secret())
    assert first == second  # the same notification, signed afresh
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert [(a["attempt"], a["status_code"]) for a in delivery.attempt_log] == [(1, 500), (2, 200)]


def test_after_the_last_attempt_a_delivery_fails_for_good(alice: ApiClient, settings: Any) -> None:
    settings.HORIZON_WEBHOOK_MAX_ATTEMPTS = 2
    settings.HORIZON_WEBHOOK_BACKOFF = 0.0
    settings.HORIZON_WEBHOOK_TIMEOUT = 2.0
    # Nothing listens on this port: every attempt is a refused connection.
    dead = Receiver()
    url = dead.url
    dead.close()
    task_id = alice.post("/api/tasks", {"goal": "nobody listens", "callback_url": url}).json()["id"]
    agent_task_drive(task_id=task_id, model=two_steps())
    agent_task_drive()
    delivery = WebhookDelivery.objects.get(task_id=task_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, None)
    assert "Connection refused" in delivery.last_error and delivery.next_attempt_at is None
    assert webhook_deliver(delivery_id=delivery.pk) is None  # a failed delivery is not attempted again


def test_waiting_for_a_person_and_cancelling_are_notified_but_running_and_waiting_are_not(
    alice: ApiClient, receiver: Receiver
) -> None:
    task_id = alice.post("/api/tasks", {"goal": "wait", "callback_url": receiver.url}).json()["id"]
    model = QueueModel(plan=[plan("a")], step=[call("wait_for_signal", {"names": ["go"]}), final("x")])
    agent_task_drive(task_id=task_id, model=model)
    assert AgentTask.objects.get(pk=task_id).status == "waiting"
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()
    assert alice.post(f"/api/tasks/{task_id}/pause", {}).status_code == 200
    assert alice.post(f"/api/tasks/{task_id}/resume").status_code == 200
    assert not WebhookDelivery.objects.exists()
    assert alice.post(f"/api/tasks/{task_id}/cancel", {"reason": "enough"}).status_code == 200
    agent_task_drive()
    assert [receiver.verified(i, webhook_secret())["status"] for i in range(len(receiver.requests))] == ["cancelled"]


def test_requires_human_is_notified(alice: ApiClient, receiver: Receiver, gated: None) -> None:
    created = alice.post("/api/tasks", {"goal": "ask first", "profile": "gated", "callback_url": receiver.url})
    task_id = created.json()["id"]
    model = QueueModel(plan=[plan("send")], step=[call("test_api_send_mail", {"to": "x", "subject": "y"}), final("done")])
    agent_task_drive(task_id=task_id, model=model)
    assert AgentTask.objects.get(pk=task_id).status == "requires_human"
    assert receiver.verified(0, webhook_secret())["status"] == "requires_human"
    assert receiver.requests[0]["headers"]["X-Horizon-Event"] == "task.requires_human"


def test_a_celery_worker_delivers_and_retries(alice: ApiClient, receiver: Receiver, broker: Broker, tmp_path: Path) -> None:
    """Distributed mode: the worker ticks the task to completion, then its own deliver_webhook task
    sends the notification (500), retries it after the backoff (a Celery countdown) and succeeds."""
    receiver.answers = [500]
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps({"name": "hook", "plan": [{"title": "only", "instructions": "do it"}], "default_step": [{"final": "done"}]})
    )
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "HORIZON_SCENARIO": str(scenario),
        "HORIZON_TEST_SQLITE_ALIAS": "",
        "HORIZON_VAR_DIR": str(tmp_path / "var"),
        "OPENAI_BASE_URL": "",
        "OPENAI_API_KEY": "",
        "HORIZON_WEBHOOK_BACKOFF": "1",
    }
    with CeleryWorker(env=env, name="hooks", log_dir=tmp_path / "logs") as worker:
        with override_settings(HORIZON_DISPATCH="celery"):
            task_id = alice.post("/api/tasks", {"goal": "via celery", "callback_url": receiver.url}).json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            delivery = WebhookDelivery.objects.filter(task_id=task_id).first()
            if delivery is not None and delivery.status != "pending":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no delivery finished in 60 s; worker log:\n{worker.log()}")
    assert AgentTask.objects.get(pk=task_id).status == "completed"
    assert (delivery.status, delivery.attempts) == ("delivered", 2), worker.log()
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 200]
    assert [receiver.verified(i, webhook_secret())["status"] for i in range(2)] == ["completed", "completed"]
    assert "horizon.deliver_webhook" in worker.log()


def test_deliveries_are_routed_to_the_control_queue() -> None:
    from horizon_project.celery import app

    assert app.amqp.router.route({}, "horizon.deliver_webhook")["queue"].name == "horizon.control"


def test_the_sweep_rerings_a_due_delivery_whose_message_was_lost(alice: ApiClient, broker: Broker, settings: Any) -> None:
    from tasks_app.services.webhooks import task_status_changed
    from tasks_app.tasks import sweep as sweep_task

    settings.HORIZON_DISPATCH = "celery"
    task_id = alice.post("/api/tasks", {"goal": "lost", "callback_url": "http://127.0.0.1:9/x"}).json()["id"]
    AgentTask.objects.filter(pk=task_id).update(status="running")
    task_status_changed("default", task_id, "completed", 99)  # as a commit would; its message then gets lost
    broker.client.delete("horizon.control")
    delivery = WebhookDelivery.objects.get(task_id=task_id)
    assert sweep_task()["webhooks_rung"] == 0  # just due: its own message may still be on its way
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert sweep_task()["webhooks_rung"] == 1
    queued = broker.client.lrange("horizon.control", 0, -1)
    assert [m for m in queued if b"horizon.deliver_webhook" in m and str(delivery.pk).encode() in m]
    broker.client.delete("horizon.control")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/x", "http://localhost/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x"],
)
def test_private_callback_addresses_are_refused_unless_allowed(alice: ApiClient, settings: Any, url: str) -> None:
    settings.HORIZON_WEBHOOK_ALLOW_PRIVATE = False
    refused = alice.post("/api/tasks", {"goal": "ssrf", "callback_url": url})
    assert refused.status_code == 400 and "is a private address" in refused.json()["detail"]
    assert not AgentTask.objects.exists()
    settings.HORIZON_WEBHOOK_ALLOW_PRIVATE = True
    assert alice.post("/api/tasks", {"goal": "ssrf", "callback_url": url}).status_code == 201


def test_a_delivery_to_an_address_that_became_private_is_not_sent(alice: ApiClient, receiver: Receiver, settings: Any) -> None:
    task_id = alice.post("/api/tasks", {"goal": "x", "callback_url": receiver.url}).json()["id"]
    settings.HORIZON_WEBHOOK_ALLOW_PRIVATE = False  # e.g. its name now resolves to an internal address
    agent_task_drive(task_id=task_id, model=two_steps())
    delivery = WebhookDelivery.objects.get(task_id=task_id)
    assert receiver.requests == []
    assert delivery.attempts == 1 and delivery.last_error.startswith("refused: the callback URL's host 127.0.0.1")


def test_manage_py_drive_delivers_in_embedded_mode(alice: ApiClient, receiver: Receiver, tmp_path: Path) -> None:
    from io import StringIO

    from django.core.management import call_command

    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps({"name": "s", "plan": [{"title": "only", "instructions": "x"}], "default_step": [{"final": "ok"}]})
    )
    task_id = alice.post("/api/tasks", {"goal": "embedded", "callback_url": receiver.url}).json()["id"]
    call_command("drive", "--scenario", str(scenario), stdout=StringIO())
    assert AgentTask.objects.get(pk=task_id).status == "completed"
    assert receiver.verified(0, webhook_secret())["task_id"] == task_id
    assert WebhookDelivery.objects.get(task_id=task_id).status == "delivered"
