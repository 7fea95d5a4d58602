"""Every SDK failure comes out of OpenAIModel as a Horizon error; the server counts the attempts."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import openai
import pytest

from agents.errors import ModelRejected, PermanentError, TransientError
from agents.llm.client import OpenAIModel
from agents.llm.config import EndpointConfig
from agents.llm.errors import map_sdk_error, retry_after_seconds
from agents.types import LLMRequest

REQUEST = LLMRequest(purpose="step", messages=({"role": "user", "content": "hi"},))


def _error(status: int, code: str | None = None, message: str = "scripted", headers: dict | None = None) -> dict:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return {"status": status, "body": {"error": error}, "headers": headers or {}}


def test_429_with_retry_after_is_transient_with_the_delay(fake_openai, model):
    fake_openai.script(_error(429, "rate_limit_exceeded", headers={"Retry-After": "3"}))
    with pytest.raises(TransientError) as caught:
        model.complete(REQUEST)
    assert caught.value.retry_after == 3.0
    assert "429" in str(caught.value)
    assert fake_openai.count() == 1  # max_retries=0: the SDK did not retry


def test_retry_after_ms_wins_over_retry_after(fake_openai, model):
    fake_openai.script(_error(429, headers={"retry-after-ms": "1500", "Retry-After": "9"}))
    with pytest.raises(TransientError) as caught:
        model.complete(REQUEST)
    assert caught.value.retry_after == 1.5
    assert fake_openai.count() == 1


def test_429_insufficient_quota_is_permanent(fake_openai, model):
    fake_openai.script(_error(429, "insufficient_quota", "You exceeded your current quota"))
    with pytest.raises(ModelRejected) as caught:
        model.complete(REQUEST)
    assert (caught.value.status_code, caught.value.code) == (429, "insufficient_quota")
    assert fake_openai.count() == 1


def test_repeated_500s_are_transient_after_max_retries_plus_one_requests(fake_openai, endpoint):
    fake_openai.script(*[_error(500, message="boom")] * 3)
    with pytest.raises(TransientError) as caught:
        OpenAIModel(endpoint(max_retries=1)).complete(REQUEST)
    assert "HTTP 500" in str(caught.value) and "boom" in str(caught.value)
    assert caught.value.retry_after is None
    assert fake_openai.count() == 2


def test_a_500_then_success_is_retried_inside_the_sdk(fake_openai, endpoint):
    # retry-after-ms keeps the SDK's backoff short.
    fake_openai.script(_error(503, headers={"retry-after-ms": "10"}), {"content": "recovered"})
    assert OpenAIModel(endpoint(max_retries=1)).complete(REQUEST).content == "recovered"
    assert fake_openai.count() == 2


@pytest.mark.parametrize("status", [408, 409, 502])
def test_other_retryable_statuses_are_transient(fake_openai, model, status):
    fake_openai.script(_error(status))
    with pytest.raises(TransientError):
        model.complete(REQUEST)
    assert fake_openai.count() == 1


def test_a_timeout_is_transient(fake_openai, endpoint):
    fake_openai.script({"delay": 1.5}, {"delay": 1.5})
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        OpenAIModel(endpoint(timeout=0.3, max_retries=1)).complete(REQUEST)
    assert time.monotonic() - started < 1.5 * 2  # gave up on each attempt without waiting for the reply
    assert fake_openai.count() == 2


def test_an_unreachable_endpoint_is_transient():
    with socket.socket() as sock:  # a port that was free a moment ago, so nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = EndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", model="m", max_retries=0)
    with pytest.raises(TransientError, match="cannot reach"):
        OpenAIModel(config).complete(REQUEST)


def test_401_is_rejected(fake_openai, endpoint):
    fake_openai.script(_error(401, "invalid_api_key", "Incorrect API key provided"))
    with pytest.raises(ModelRejected) as caught:
        OpenAIModel(endpoint(max_retries=3)).complete(REQUEST)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert "test-key" not in str(caught.value)
    assert fake_openai.count() == 1  # never retried, whatever max_retries says


def test_400_context_length_exceeded_is_rejected_with_its_code(fake_openai, model):
    fake_openai.script(_error(400, "context_length_exceeded", "This model's maximum context length is 128000 tokens."))
    with pytest.raises(ModelRejected) as caught:
        model.complete(REQUEST)
    assert (caught.value.status_code, caught.value.code) == (400, "context_length_exceeded")
    assert "maximum context length" in str(caught.value)
    assert fake_openai.count() == 1


@pytest.mark.parametrize("status", [403, 404, 422])
def test_other_refusals_are_rejected(fake_openai, model, status):
    fake_openai.script(_error(status))
    with pytest.raises(ModelRejected) as caught:
        model.complete(REQUEST)
    assert caught.value.status_code == status
    assert fake_openai.count() == 1


def test_a_200_that_is_not_json_is_transient(fake_openai, model):
    fake_openai.script({"huge": 10})  # a truncated JSON prefix
    with pytest.raises(TransientError, match="not JSON"):
        model.complete(REQUEST)
    assert fake_openai.count() == 1


def test_rejections_and_too_large_are_permanent_errors():
    assert issubclass(ModelRejected, PermanentError)


def test_retry_after_as_an_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    headers = {"retry-after": format_datetime(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)}
    assert retry_after_seconds(headers, now=now.timestamp) == 30.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_body_read_failures_raised_by_httpx2_are_mapped():
    # The SDK wraps only errors raised while sending; a timeout while reading the body arrives raw.
    assert type(map_sdk_error(httpx2.ReadTimeout("slow body"))) is TransientError
    assert type(map_sdk_error(httpx2.RemoteProtocolError("peer closed"))) is TransientError
    mapped = map_sdk_error(openai.OpenAIError("misconfigured"), endpoint="primary")
    assert type(mapped) is PermanentError and str(mapped).startswith("primary: ")
