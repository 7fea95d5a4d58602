"""Webhook services: validate a callback URL; queue a notification; deliver it, one attempt at a time.

When a tick's commit or an operator change moves a task that has a callback URL to completed,
failed, cancelled or requires_human, DjangoStore calls `task_status_changed` inside the same
transaction as the status change: the WebhookDelivery row commits with it or not at all (an outbox),
so a crash after the commit loses no notification. The row is unique per (task, event_seq), so a
repeated call is a no-op. Sending starts after commit: a Celery task when dispatch is "celery"
(tasks_app/dispatch.py), the in-process driver (`manage.py drive`) otherwise, and the beat sweep
for any due delivery whose message was lost. Signatures: tasks_app/services/webhook_signatures.py.

A delivery is claimed by a conditional UPDATE that moves its next_attempt_at past the attempt's
timeout, so two deliverers (a Celery retry and the sweep's re-ring, or two drive processes) never
send it at once; every attempt is recorded on the row (status code, error, attempt count, next try).
A 2xx answer delivers it; anything else (another status, a refused connection, a timeout, a redirect)
is retried with exponential backoff until HORIZON_WEBHOOK_MAX_ATTEMPTS, then the row is `failed`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import outbound
from agents.errors import InvalidInput
from agents.status import TaskStatus
from tasks_app import dispatch
from tasks_app.conf import settings
from tasks_app.models import AgentTask, WebhookDelivery
from tasks_app.services.webhook_signatures import SIGNATURE_HEADER, sign

logger = logging.getLogger("horizon.webhooks")

CALLBACK_URL_MAX = 2000
BACKOFF_MAX_SECONDS = 3600.0
RESPONSE_READ_BYTES = 1024  # a receiver's answer is read this far, then dropped
_url_validator = URLValidator(schemes=["http", "https"])
NOTIFY_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.REQUIRES_HUMAN})


def task_status_changed(using: str, task_id: str, status: str, event_seq: int) -> None:
    """Inside the status change's transaction: queue a delivery if the task has a callback URL."""
    if status not in NOTIFY_STATUSES:
        return
    url = AgentTask.objects.using(using).filter(pk=task_id).values_list("callback_url", flat=True).first()
    if not url:
        return
    try:
        with transaction.atomic(using=using):
            delivery = WebhookDelivery.objects.using(using).create(
                task_id=task_id, event_seq=event_seq, task_status=status, url=url, next_attempt_at=timezone.now()
            )
    except IntegrityError:
        return  # already queued for this status change
    if settings.HORIZON_DISPATCH == "celery":
        dispatch.webhook_delivery_on_commit(delivery.pk)


def private_address(host: str) -> str | None:
    """The first address `host` resolves to that is not public (loopback, private, link-local such as a
    cloud metadata service), or None. An unresolvable host is None: its delivery fails on its own."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            return str(address)
    return None


def _refused_host(url: str) -> str | None:
    """Why a callback to `url` must not be sent (None: it may). Private addresses are refused unless
    HORIZON_WEBHOOK_ALLOW_PRIVATE: API users must not reach the servers behind Horizon (SSRF)."""
    if settings.HORIZON_WEBHOOK_ALLOW_PRIVATE:
        return None
    host = urlsplit(url).hostname or ""
    address = private_address(host)
    return f"the callback URL's host {host} is a private address ({address})" if address else None


def callback_url_validated(url: str | None) -> str:
    """An http(s) URL without credentials, or "" for none. Raises InvalidInput."""
    url = (url or "").strip()
    if not url:
        return ""
    if len(url) > CALLBACK_URL_MAX:
        raise InvalidInput(f"the callback URL is {len(url)} characters; the limit is {CALLBACK_URL_MAX}")
    try:
        _url_validator(url)
    except ValidationError:
        raise InvalidInput("the callback URL must be an absolute http:// or https:// URL") from None
    if urlsplit(url).username is not None:
        raise InvalidInput("the callback URL must not carry credentials")
    refused = _refused_host(url)
    if refused:
        raise InvalidInput(refused)
    return url


def _payload(delivery: WebhookDelivery) -> dict[str, Any]:
    task = delivery.task
    return {
        "delivery_id": delivery.pk,
        "task_id": str(task.pk),
        "status": delivery.task_status,
        "event_seq": delivery.event_seq,
        "status_reason": task.status_reason,
        "result": task.result if delivery.task_status == "completed" else None,
        "created_at": delivery.created_at.isoformat(),
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """One POST; HORIZON_WEBHOOK_TIMEOUT bounds the whole exchange, not each read (agents/outbound.py).
    A redirect is an answer, not an instruction: following it could send the payload anywhere."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        answer = outbound.exchange(
            "POST",
            parts.scheme,
            parts.hostname or "",
            port,
            target,
            timeout=settings.HORIZON_WEBHOOK_TIMEOUT,
            headers=headers,
            body=body,
            max_bytes=RESPONSE_READ_BYTES,
        )
    except outbound.TotalTimeout as exc:
        return None, f"TotalTimeout: {exc}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= answer.status < 300:
        return answer.status, ""
    return answer.status, f"HTTP {answer.status}"


def backoff_seconds(attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: the base, doubled each time, at most an hour."""
    return float(min(settings.HORIZON_WEBHOOK_BACKOFF * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS))


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt at a due delivery. None when it is not due, done, or someone else is at it."""
    now = timezone.now()
    claim_until = now + timedelta(seconds=settings.HORIZON_WEBHOOK_TIMEOUT + 60)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=claim_until)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("task").get(pk=delivery_id)
    body = json.dumps(_payload(delivery), sort_keys=True, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Horizon-Webhook/1",
        SIGNATURE_HEADER: sign(body),
        "X-Horizon-Delivery": str(delivery.pk),
        "X-Horizon-Event": f"task.{delivery.task_status}",
    }
    # Checked again when sending: the name may resolve elsewhere now than when the task was created.
    # (A resolver that answers differently between this check and the connection is not covered.)
    refused = _refused_host(delivery.url)
    code, error = (None, f"refused: {refused}") if refused else _post(delivery.url, body, headers)
    attempts = delivery.attempts + 1
    done = timezone.now()
    attempt = {"attempt": attempts, "at": done.isoformat(), "status_code": code, "error": error}
    fields: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": code,
        "last_error": error,
        "attempt_log": [*delivery.attempt_log, attempt],
    }
    if code is not None and 200 <= code < 300:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=done, next_attempt_at=None, last_error="")
    elif attempts >= settings.HORIZON_WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        logger.warning("webhook #%s to %s failed for good after %s attempts: %s", delivery.pk, delivery.url, attempts, error)
    else:
        fields.update(next_attempt_at=done + timedelta(seconds=backoff_seconds(attempts)))
    # Guarded by our claim: only the deliverer that claimed this attempt records it.
    WebhookDelivery.objects.filter(pk=delivery_id, next_attempt_at=claim_until).update(**fields)
    delivery.refresh_from_db()
    return delivery


def webhook_due_in(*, delivery_id: int) -> float | None:
    """Seconds until a pending delivery's next attempt (0 if due now); None when it is done."""
    due = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    # A small margin: a countdown that lands a hair early would find it not yet due.
    return None if due is None else max(0.0, (due - timezone.now()).total_seconds()) + 0.05


def webhook_due_ids(*, limit: int = 100, older_than: float = 0.0) -> list[int]:
    """Pending deliveries due at least `older_than` seconds ago, oldest first."""
    due_at = timezone.now() - timedelta(seconds=older_than)
    rows = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=due_at)
    return list(rows.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def webhook_deliver_due(*, limit: int = 100) -> int:
    """The in-process driver's delivery: attempt every due delivery once, here. Returns attempts made."""
    return sum(webhook_deliver(delivery_id=pk) is not None for pk in webhook_due_ids(limit=limit))


def webhook_ring_due(*, limit: int = 500) -> int:
    """The sweep's re-ring: enqueue due deliveries whose own message (a retry, the first send) is late."""
    ids = webhook_due_ids(limit=limit, older_than=settings.HORIZON_SWEEP_REDELIVER_AFTER)
    for pk in ids:
        dispatch.webhook_delivery_now(pk)
    return len(ids)
