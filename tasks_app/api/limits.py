"""The API's input limits: the body size cap (a middleware, so an oversized body is never read) and
a JSON parser that refuses what PostgreSQL's jsonb would (NaN, Infinity, NUL characters)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, cast

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.parser import Parser

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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


class StrictJsonParser(Parser):
    """JSON as PostgreSQL's jsonb can store it: no NaN or Infinity (also by overflow, as 1e400), no NUL
    character, no lone surrogate. Anything else would pass validation and fail at the INSERT (a 500)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        text = request.body.decode("utf-8")
        if "\\u0000" in text or "\x00" in text:
            raise ValueError("NUL characters cannot be stored")
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError on a lone surrogate
        return cast(dict[str, Any], data)
