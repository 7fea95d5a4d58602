"""API tokens: create one (the raw token is returned once and never stored), authenticate a bearer."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.contrib.auth.models import User
from django.utils import timezone

from agents.errors import InvalidInput
from tasks_app.models import ApiToken

TOKEN_PREFIX = "hzn"
NAME_MAX = 100
TOKEN_MAX_CHARS = 200  # a longer bearer is refused before any hashing or lookup


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(*, user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`: (the row, the raw token). Only the raw token's SHA-256 is stored."""
    name = (name or "").strip()
    if len(name) > NAME_MAX:
        raise InvalidInput(f"a token name is at most {NAME_MAX} characters")
    if not user.is_active:
        raise InvalidInput(f"user {user.get_username()} is inactive")
    lookup = secrets.token_hex(6)  # 12 hex characters: the row's index key, not a secret
    raw = f"{TOKEN_PREFIX}_{lookup}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(user=user, name=name, prefix=lookup, digest=_digest(raw))
    return token, raw


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The live token this bearer is, or None (unknown, revoked, malformed, or its user inactive)."""
    if not raw or len(raw) > TOKEN_MAX_CHARS:
        return None
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1], revoked_at__isnull=True).first()
    # Compared in constant time: the prefix is public, the rest must not leak through timing.
    if token is None or not hmac.compare_digest(token.digest, _digest(raw)) or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        # At most one write a minute per token: a busy client does not rewrite the row on every call.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
