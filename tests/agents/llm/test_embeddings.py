"""OpenAIEmbedder through the real SDK against the fake server."""

from __future__ import annotations

import pytest

from agents.errors import ModelOutputTooLarge, ModelRejected, TransientError
from agents.llm.embeddings import OpenAIEmbedder
from tests.support.fake_openai import CHAT_PATH, EMBEDDINGS_PATH


def test_embeds_texts_in_order(fake_openai, endpoint):
    embedder = OpenAIEmbedder(endpoint(model="text-embedding-3-small"))
    # Returned out of order on purpose: `index` decides which input a vector belongs to.
    fake_openai.script({"embeddings": [[0.0, 1.0], [2.0, 3.0]]}, endpoint="embeddings")

    vectors = embedder.embed(["first", "second"])

    assert vectors == [[0.0, 1.0], [2.0, 3.0]]
    sent = fake_openai.requests(EMBEDDINGS_PATH)[0]
    assert sent == {"model": "text-embedding-3-small", "input": ["first", "second"], "encoding_format": "float"}
    assert fake_openai.count(EMBEDDINGS_PATH) == 1
    assert fake_openai.count(CHAT_PATH) == 0


def test_default_vectors_are_deterministic(fake_openai, endpoint):
    embedder = OpenAIEmbedder(endpoint())
    a1, b = embedder.embed(["alpha", "beta"])
    (a2,) = embedder.embed(["alpha"])
    assert a1 == a2 != b
    assert len(a1) == 8 and all(isinstance(x, float) for x in a1)
    assert fake_openai.count(EMBEDDINGS_PATH) == 2


def test_no_texts_makes_no_request(fake_openai, endpoint):
    assert OpenAIEmbedder(endpoint()).embed([]) == []
    assert fake_openai.count(EMBEDDINGS_PATH) == 0


def test_errors_are_mapped_like_chat(fake_openai, endpoint):
    embedder = OpenAIEmbedder(endpoint(max_retries=0))
    fake_openai.script(
        {"status": 429, "headers": {"Retry-After": "7"}},
        {"status": 401, "body": {"error": {"message": "bad key", "code": "invalid_api_key"}}},
        {"huge": 3_000_000},
        {"embeddings": [[1.0]]},  # one vector for two inputs
        endpoint="embeddings",
    )
    with pytest.raises(TransientError) as caught:
        embedder.embed(["x"])
    assert caught.value.retry_after == 7.0
    with pytest.raises(ModelRejected) as rejected:
        embedder.embed(["x"])
    assert rejected.value.status_code == 401
    with pytest.raises(ModelOutputTooLarge):
        embedder.embed(["x"])
    with pytest.raises(TransientError, match="asked for 2 embeddings, got 1"):
        embedder.embed(["x", "y"])
    assert fake_openai.count(EMBEDDINGS_PATH) == 4
