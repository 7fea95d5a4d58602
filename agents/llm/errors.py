"""The one place where SDK and transport exceptions become Horizon errors.

openai.OpenAIError / httpx2.HTTPError                 ->  agents.errors
    APITimeoutError, APIConnectionError                   TransientError
    httpx2 timeouts and transport errors (body reads)     TransientError
    408, 409, 429, 5xx                                    TransientError(retry_after from the headers)
    429 with code "insufficient_quota"                    ModelRejected (billing: waiting will not help)
    400 (incl. context_length_exceeded), 401, 403,        ModelRejected(status_code, code)
    404, 422 and any other 4xx
    APIResponseValidationError                            TransientError (a garbled answer; try again)
    any other OpenAIError (e.g. a missing api key)        PermanentError

The SDK raises body-read failures as bare httpx2 exceptions (it only wraps errors raised while
sending), so both families are mapped here.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC

import httpx2
import openai

from agents.errors import HorizonError, ModelRejected, PermanentError, TransientError

TRANSIENT_STATUSES = frozenset({408, 409, 429})
MAX_DETAIL_CHARS = 500


def map_sdk_error(exc: openai.OpenAIError | httpx2.HTTPError, *, endpoint: str = "") -> HorizonError:
    where = f"{endpoint}: " if endpoint else ""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return TransientError(f"{where}the model endpoint timed out")
    if isinstance(exc, openai.APIConnectionError | httpx2.HTTPError):
        return TransientError(f"{where}cannot reach the model endpoint: {_detail(exc)}")
    if isinstance(exc, openai.APIStatusError):
        return _map_status(exc, where)
    if isinstance(exc, openai.APIResponseValidationError):
        return TransientError(f"{where}the model endpoint answered with an unexpected body: {_detail(exc)}")
    return PermanentError(f"{where}the model client failed: {_detail(exc)}")


def _map_status(exc: openai.APIStatusError, where: str) -> HorizonError:
    status, code = exc.status_code, exc.code
    # The SDK's own message starts "Error code: N - ..."; the endpoint's message says it without the prefix.
    body_message = exc.body.get("message") if isinstance(exc.body, dict) else None
    detail = _detail(exc) if not isinstance(body_message, str) or not body_message else _clip(body_message)
    message = f"{where}HTTP {status}" + (f" ({code})" if code else "") + f": {detail}"
    if status == 429 and code == "insufficient_quota":
        return ModelRejected(message, status_code=status, code=code)
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(message, retry_after=retry_after_seconds(exc.response.headers))
    return ModelRejected(message, status_code=status, code=code)


def retry_after_seconds(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """The server's requested delay: retry-after-ms, else Retry-After as seconds or as an HTTP date."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if seconds >= 0 and seconds != float("inf"):
            return seconds
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT; a naive one must not be read as local time
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now())
    return None


def _detail(exc: BaseException) -> str:
    return _clip(getattr(exc, "message", None) or str(exc) or type(exc).__name__)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "..."
