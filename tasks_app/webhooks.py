"""Webhooks, the part the store calls: record that a task's status change must be notified, and sign.

When a tick's commit or an operator change moves a task that has a callback URL to completed,
failed, cancelled or requires_human, DjangoStore calls `task_status_changed` inside the same
transaction as the status change: the WebhookDelivery row commits with it or not at all (an outbox),
so a crash after the commit loses no notification. The row is unique per (task, event_seq), so a
repeated call is a no-op. Sending is tasks_app/services/webhooks.py's job, started after commit: a
Celery task when dispatch is "celery", the in-process driver (`manage.py drive`) otherwise, and the
beat sweep for any due delivery whose message was lost.

Signature (Stripe's scheme): `X-Horizon-Signature: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256(secret, f"{t}.{body}"). A receiver recomputes it and refuses a timestamp older than a few
minutes, so a captured request cannot be replayed later (see `verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.secret_strength import secret_problem
from agents.status import TaskStatus
from tasks_app.conf import settings

NOTIFY_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.REQUIRES_HUMAN})
SIGNATURE_HEADER = "X-Horizon-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def task_status_changed(using: str, task_id: str, status: str, event_seq: int) -> None:
    """Inside the status change's transaction: queue a delivery if the task has a callback URL."""
    if status not in NOTIFY_STATUSES:
        return
    from tasks_app.models import AgentTask, WebhookDelivery

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
        from tasks_app.tasks import deliver_webhook

        deliver_webhook.apply_async_on_commit((delivery.pk,))


def webhook_secret() -> bytes:
    if settings.HORIZON_WEBHOOK_SECRET:
        return settings.HORIZON_WEBHOOK_SECRET.encode()
    if settings.PRODUCTION and secret_problem("DJANGO_SECRET_KEY", settings.SECRET_KEY) is not None:
        # Start-up refuses such a key already; this keeps a placeholder out of the signature even if
        # settings were replaced after it (a test, a shell). Development signs with its dev key.
        raise ImproperlyConfigured("the webhook signing key cannot be derived from a placeholder DJANGO_SECRET_KEY")
    # Derived, not the secret key itself: a receiver holding this value learns nothing about SECRET_KEY.
    return hashlib.sha256(b"horizon-webhook-signing:" + settings.SECRET_KEY.encode()).hexdigest().encode()


def sign(body: bytes, *, timestamp: int | None = None, secret: bytes | None = None) -> str:
    """The X-Horizon-Signature header value for this body."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret or webhook_secret(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    header: str, body: bytes, *, secret: bytes, tolerance: float = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """What a receiver does: the MAC matches and the timestamp is recent (a replay is refused)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))
