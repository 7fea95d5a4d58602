"""API tokens from the command and the admin (the raw token shown once, only a hash stored), and the
docs page: served from this server, every asset it references fetched locally, no external URL."""

from __future__ import annotations

import hashlib
import re
import urllib.request
from io import StringIO
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from tasks_app.models import ApiToken
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_api_token_prints_a_working_token_once_and_stores_its_hash() -> None:
    User.objects.create_user("dora")
    out, err = StringIO(), StringIO()
    call_command("create_api_token", "--user", "dora", "--name", "ci", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert token.name == "ci" and token.user.username == "dora"
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest() and raw not in str(token.__dict__)
    assert "shown only now" in err.getvalue()
    api = ApiClient(Client(), raw)
    assert api.get("/api/tasks").status_code == 200
    assert ApiToken.objects.get().last_used_at is not None
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("create_api_token", "--user", "nobody")
    with pytest.raises(CommandError, match="at most 100"):
        call_command("create_api_token", "--user", "dora", "--name", "n" * 101)


def test_the_admin_creates_a_token_and_shows_the_raw_token_once(admin_client: Any) -> None:
    dora = User.objects.create_user("dora")
    response = admin_client.post("/admin/tasks_app/apitoken/add/", {"user": dora.pk, "name": "from admin"}, follow=True)
    assert response.status_code == 200
    shown = re.findall(r"hzn_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", response.content.decode())
    assert len(shown) == 1
    token = ApiToken.objects.get(name="from admin")
    assert token.user == dora and token.digest == hashlib.sha256(shown[0].encode()).hexdigest()
    # The change page never shows it again (only its public prefix).
    page = admin_client.get(f"/admin/tasks_app/apitoken/{token.pk}/change/").content.decode()
    assert shown[0] not in page and token.prefix in page
    assert ApiClient(Client(), shown[0]).get("/api/tasks").status_code == 200


def test_the_docs_page_and_its_assets_are_served_locally_with_no_external_url(live_server: Any) -> None:
    base = live_server.url
    page = urllib.request.urlopen(f"{base}/api/docs", timeout=10).read().decode()
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(references) >= 3  # the stylesheet, the icon, the two scripts
    settings_json = re.search(r'id="swagger-settings">(.*?)</script>', page, re.S)
    assert settings_json is not None and '"validatorUrl": null' in settings_json.group(1)
    assert not re.search(r"https?://", page)  # no absolute URL at all: nothing from another host
    for ref in [*references, "/api/openapi.json"]:
        url = urljoin(f"{base}/api/docs", ref)
        assert urlsplit(url).netloc == urlsplit(base).netloc
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200, url
            body = response.read()
            assert body, url
        if ref.endswith(".css"):
            # A stylesheet may pull more: only data: URIs are allowed.
            for target in re.findall(rb"url\(([^)]*)\)", body):
                assert target.strip(b"'\" ").startswith(b"data:"), target[:80]
    assert "swagger-ui-bundle.js" in page


def test_unknown_assets_are_404_and_never_read_from_disk(client: Any) -> None:
    assert client.get("/api/docs/assets/settings.py").status_code == 404
    assert client.get("/api/docs/assets/..%2F..%2Fmain.py").status_code == 404
