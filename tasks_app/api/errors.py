"""Every failure the API can meet, mapped once to a JSON answer {"detail": ..., "errors"?: [...]}.

A task or approval that does not exist and one that belongs to someone else answer the same 404 body,
so an id's existence never leaks. Anything unexpected is logged and answers a bare 500: never a trace.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from agents.errors import ApprovalNotFound, InvalidInput, NotAllowed, RateLimited, TaskNotFound

logger = logging.getLogger("horizon.api")

NOT_FOUND = "not found"

E = TypeVar("E", bound=Exception)


def _json(api: NinjaAPI, request: HttpRequest, status: int, detail: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"detail": detail, **extra}, status=status)


def install(api: NinjaAPI) -> None:
    def not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
        return _json(api, request, 404, NOT_FOUND)

    def invalid(request: HttpRequest, exc: Exception) -> HttpResponse:
        return _json(api, request, 400, str(exc))

    def forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
        return _json(api, request, 403, str(exc))

    def unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
        response = _json(api, request, 401, "authentication required: send Authorization: Bearer <token>")
        response["WWW-Authenticate"] = 'Bearer realm="horizon"'
        return response

    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, ValueError):
            # ninja wraps the parser's refusal in "Cannot parse request body"; the client needs the why.
            return _json(api, request, 400, str(cause))
        return _json(api, request, exc.status_code, str(exc))

    def validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors
        ]
        # A field the schema does not have is refused by name (400), before anything else is judged:
        # a client that sends owner_id believes something the API will not do.
        unknown = sorted({str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden" and e["loc"]})
        if unknown:
            return _json(api, request, 400, f"unknown fields: {', '.join(unknown)}", errors=errors)
        return _json(api, request, 422, "the request does not match the schema", errors=errors)

    def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
        seconds = max(1, math.ceil(exc.retry_after))
        response = _json(api, request, 429, f"too many tasks created: try again in {seconds} s")
        response["Retry-After"] = str(seconds)
        return response

    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("API %s %s failed", request.method, request.path)
        return _json(api, request, 500, "internal error")

    _handle(api, TaskNotFound, not_found)
    _handle(api, ApprovalNotFound, not_found)
    _handle(api, NotAllowed, forbidden)
    _handle(api, InvalidInput, invalid)
    _handle(api, AuthenticationError, unauthenticated)
    _handle(api, HttpError, http_error)
    _handle(api, ValidationError, validation)
    _handle(api, RateLimited, rate_limited)
    _handle(api, Exception, unexpected)


def _handle(api: NinjaAPI, exc_class: type[E], handler: Callable[[HttpRequest, E], HttpResponse]) -> None:
    """ninja's handler type also admits the exception class itself; it always passes the raised instance."""

    def on_instance(request: HttpRequest, exc: E | type[E]) -> HttpResponse:
        assert isinstance(exc, exc_class)
        return handler(request, exc)

    api.add_exception_handler(exc_class, on_instance)
