"""Who is calling: a bearer API token (tasks_app/services/api_tokens.py) or a logged-in staff session.

`request.auth` is the User either way; `request.api_token` is the token (None for a session).
Scoping by owner is in routes.py: a superuser sees every task, anyone else only the tasks they own.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from tasks_app.services.api_tokens import api_token_authenticate


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = api_token_authenticate(raw=token)
        if found is None:
            return None
        request.api_token = found  # type: ignore[attr-defined]
        return found.user


class StaffSession(APIKeyCookie):
    """The admin's session, for staff trying the API from the docs page. CSRF applies, as in the admin.

    Unlike ninja's SessionAuth, a request without a staff session is simply not authenticated here
    (401 from the API), instead of failing the CSRF check first.
    """

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return None
        if check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header with a session")
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if key is None:
            return None
        request.api_token = None  # type: ignore[attr-defined]
        return request.user


def rate_key(request: HttpRequest) -> str:
    token = getattr(request, "api_token", None)
    return f"token:{token.pk}" if token is not None else f"user:{request.auth.pk}"  # type: ignore[attr-defined]
