"""Timeouts are totals: a server that trickles one byte per second never trips a per-read timeout,
and must still end fetch_url, a webhook delivery and a model call at their total timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings
from django.utils import timezone

from agents.errors import TransientError
from agents.llm.client import OpenAIModel
from agents.llm.config import EndpointConfig
from agents.tools import fetch
from agents.tools.registry import ToolContext, ToolError
from agents.types import LLMRequest
from tasks_app.models import AgentTask, WebhookDelivery
from tasks_app.services.webhooks import webhook_deliver

BODY_START = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"


class Trickle:
    """Accepts connections, reads the request head, then answers one byte per second: from the status
    line on (`head_at_once` False) or after a complete head (True)."""

    def __init__(self, *, head_at_once: bool) -> None:
        self.head_at_once = head_at_once
        self.server = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            slow = b"x" * 1000
            if self.head_at_once:
                conn.sendall(BODY_START)
            else:
                slow = BODY_START + slow
            for byte in slow:
                if self.stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(1.0)

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture(params=["headers", "body"])
def trickle(request: pytest.FixtureRequest) -> Iterator[Trickle]:
    server = Trickle(head_at_once=request.param == "body")
    yield server
    server.close()


def test_fetch_url_ends_at_its_total_timeout(trickle: Trickle, tool_limits: None) -> None:
    fetch.configure(allowed_hosts=["127.0.0.1"], timeout=3.0)
    ctx = ToolContext(task_id="t", step_index=0, idempotency_key="k", store=None)
    started = time.monotonic()
    with pytest.raises(ToolError, match="took longer than the 3 s limit"):
        fetch.fetch_url(ctx, f"http://127.0.0.1:{trickle.port}/slow")
    elapsed = time.monotonic() - started
    assert 2.9 <= elapsed < 4.5, elapsed  # was 1000 s: each byte reset the per-read timeout


@pytest.mark.django_db
@override_settings(HORIZON_WEBHOOK_TIMEOUT=2.0, HORIZON_WEBHOOK_ALLOW_PRIVATE=True)
def test_a_webhook_delivery_ends_at_its_total_timeout(trickle: Trickle) -> None:
    task = AgentTask.objects.create(goal="g", callback_url=f"http://127.0.0.1:{trickle.port}/hook")
    delivery = WebhookDelivery.objects.create(
        task=task, event_seq=1, task_status="completed", url=task.callback_url, next_attempt_at=timezone.now()
    )
    started = time.monotonic()
    done = webhook_deliver(delivery_id=delivery.pk)
    elapsed = time.monotonic() - started
    assert done is not None and done.status == WebhookDelivery.Status.PENDING
    assert "TotalTimeout" in done.last_error and done.attempts == 1
    assert 1.9 <= elapsed < 3.5, elapsed


def test_a_model_call_attempt_ends_at_its_total_timeout(trickle: Trickle) -> None:
    config = EndpointConfig(base_url=f"http://127.0.0.1:{trickle.port}/v1", api_key="k", model="m", timeout=2.0, max_retries=0)
    model = OpenAIModel(config)
    started = time.monotonic()
    with pytest.raises(TransientError):
        model.complete(LLMRequest(purpose="step", messages=({"role": "user", "content": "hi"},)))
    elapsed = time.monotonic() - started
    model.close()
    assert 1.9 <= elapsed < 3.5, elapsed
