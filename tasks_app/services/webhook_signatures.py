"""Webhook signatures (Stripe's scheme), what Horizon sends and what a receiver checks.

`X-Horizon-Signature: t=<unix seconds>,v1=<hex>` where hex is HMAC-SHA256(secret, f"{t}.{body}").
A receiver recomputes it and refuses a timestamp older than a few minutes, so a captured request
cannot be replayed later (see `verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.core.exceptions import ImproperlyConfigured

from agents.secret_strength import secret_problem
from tasks_app.conf import settings

SIGNATURE_HEADER = "X-Horizon-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def webhook_secret() -> bytes:
    configured: str = settings.HORIZON_WEBHOOK_SECRET
    if configured:
        return configured.encode()
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
