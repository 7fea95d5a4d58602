"""Fixtures of the JSON API tests: users, their tokens, and a client that speaks JSON with a bearer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tasks_app.runtime import profiles
from tasks_app.services.api_tokens import api_token_create
from tests.support.mail_tool import registered_mail_tool

SENT: list[dict[str, Any]] = []


@dataclass
class ApiClient:
    client: Client
    token: str | None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params, headers=self._headers())

    def post(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body if body is not None else {})
        return self.client.post(path, data, content_type="application/json", headers=self._headers())


def make_user(name: str, *, superuser: bool = False, may_decide: bool = False) -> User:
    user = User.objects.create_user(name, password="pw", is_superuser=superuser, is_staff=superuser)
    if may_decide:
        user.user_permissions.add(Permission.objects.get(codename="decide_approval"))
    return User.objects.get(pk=user.pk)


def client_for(user: User | None) -> ApiClient:
    return ApiClient(Client(), api_token_create(user=user)[1] if user is not None else None)


@pytest.fixture
def alice() -> ApiClient:
    return client_for(make_user("alice", may_decide=True))


@pytest.fixture
def bob() -> ApiClient:
    return client_for(make_user("bob", may_decide=True))


@pytest.fixture
def anonymous() -> ApiClient:
    return ApiClient(Client(), None)


@pytest.fixture
def gated(tmp_path: Path, settings: Any) -> Iterator[None]:
    """Profile "gated" asks a person before any "external" tool call; test_api_send_mail is one (tests only)."""
    path = tmp_path / "profiles.yaml"
    path.write_text("gated:\n  approval_risks: [external]\n")
    settings.HORIZON_PROFILES_FILE = str(path)
    profiles.cache_clear()  # read once per process; this test's file is new
    with registered_mail_tool("test_api_send_mail", SENT):
        yield
    profiles.cache_clear()
