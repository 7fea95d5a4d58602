"""The API's input limits: the body size cap (a middleware, so an oversized body is never read) and
a JSON parser that refuses what PostgreSQL's jsonb would (NaN, Infinity, NUL characters, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.parser import Parser

from agents import boundary
from tasks_app.conf import settings

API_PREFIX = "/api/"


class ApiMiddleware:
    """For /api/ only: 413 for a body over HORIZON_API_MAX_BODY_BYTES, and JSON for Django's own 404/405.

    Django reads a body only as far as CONTENT_LENGTH (no length: an empty body), so checking the
    header is enough, and it happens before any byte is read. An unknown /api/ path or method is
    answered by Django or ninja outside the API's exception handlers, as HTML or an empty body: it
    gets the API's JSON shape here, so that every error a client meets under /api/ reads the same.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return JsonResponse({"detail": f"invalid Content-Length {raw[:40]!r}"}, status=400)
        cap = settings.HORIZON_API_MAX_BODY_BYTES
        if length > cap:
            return JsonResponse({"detail": f"the request body is {length} bytes; the limit is {cap}"}, status=413)
        response = self.get_response(request)
        if response.status_code in (404, 405) and not response.get("Content-Type", "").startswith("application/json"):
            detail = "not found" if response.status_code == 404 else f"method {request.method} not allowed"
            replaced = JsonResponse({"detail": detail}, status=response.status_code)
            if response.has_header("Allow"):
                replaced["Allow"] = response["Allow"]
            return replaced
        return response


class StrictJsonParser(Parser):
    """A JSON object as PostgreSQL's jsonb can store it, checked by agents/boundary.py: UTF-8, no NaN
    or Infinity (also by overflow, as 1e400), no NUL character, no lone surrogate, no nesting past 64,
    no number of more than 40 characters. Anything else would pass validation and fail at the INSERT
    (a 500). A body that is not an object is refused: every body this API reads is one. The reason
    reaches the client through the 400 handler (tasks_app/api/errors.py)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = boundary.loads(boundary.decode(request.body, "the request body"), "the request body")
        if not isinstance(data, dict):
            raise boundary.BoundaryError(f"the request body must be a JSON object, not {_json_type(data)}")
        return data


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "that")
