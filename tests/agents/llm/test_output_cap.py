"""An enormous response body is cut off at the byte cap, and memory stays bounded while reading it."""

from __future__ import annotations

import tracemalloc

import pytest

from agents.errors import ModelOutputTooLarge
from agents.llm.client import OpenAIModel
from agents.types import LLMRequest

REQUEST = LLMRequest(purpose="step", messages=({"role": "user", "content": "write a novel"},))
BODY_BYTES = 20_000_000
CAP = 1024 * 1024


def too_large_with_peak_memory(model: OpenAIModel) -> tuple[ModelOutputTooLarge, int]:
    """Call the model expecting ModelOutputTooLarge; return it and the peak traced memory of the call."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelOutputTooLarge) as caught:
            model.complete(REQUEST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value, peak


def test_a_20_mb_body_stops_at_the_1_mib_cap_with_bounded_memory(fake_openai, endpoint):
    model = OpenAIModel(endpoint(max_output_bytes=CAP, max_retries=2))
    model.complete(REQUEST)  # warm up: imports, the connection pool and the tokenizer do not count
    fake_openai.script({"huge": BODY_BYTES})

    caught, peak = too_large_with_peak_memory(model)

    assert CAP < caught.size <= CAP + 256 * 1024
    assert caught.excerpt.startswith('{"id":"chatcmpl-huge"')
    assert 1000 <= len(caught.excerpt) <= 4096
    assert str(CAP) in str(caught)
    # Reading the whole body would need at least BODY_BYTES; the cap keeps it to a few times CAP.
    assert peak < 5 * CAP, f"peak {peak} bytes while reading a {BODY_BYTES}-byte body"
    assert fake_openai.count() == 2  # warm-up + one attempt: a too-large answer is not retried


def test_a_body_just_under_the_cap_is_read(fake_openai, endpoint):
    fake_openai.script({"content": "y" * 5000})
    response = OpenAIModel(endpoint(max_output_bytes=6000)).complete(REQUEST)
    assert response.content == "y" * 5000
    fake_openai.script({"content": "y" * 7000})
    with pytest.raises(ModelOutputTooLarge):
        OpenAIModel(endpoint(max_output_bytes=6000)).complete(REQUEST)
    assert fake_openai.count() == 2


def test_an_enormous_error_body_is_capped_too(fake_openai, endpoint):
    # On a 5xx the SDK reads the whole error body to build its exception; the client's transport caps it.
    model = OpenAIModel(endpoint(max_output_bytes=CAP, max_retries=1))
    model.complete(REQUEST)
    fake_openai.script(
        {"huge": BODY_BYTES, "status": 500, "headers": {"retry-after-ms": "10"}}, {"huge": BODY_BYTES, "status": 500}
    )

    caught, peak = too_large_with_peak_memory(model)

    assert "HTTP 500" in str(caught)
    assert CAP < caught.size <= CAP + 256 * 1024
    assert peak < 5 * CAP, f"peak {peak} bytes while reading a {BODY_BYTES}-byte error body"
    assert fake_openai.count() == 3  # warm-up, then the 500 (retried without reading it) and the 500 read
