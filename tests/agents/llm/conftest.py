"""Fixtures for the LLM client tests: a fake OpenAI-compatible server and endpoints pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agents.llm.client import OpenAIModel
from agents.llm.config import EndpointConfig
from tests.support.fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI) -> Callable[..., EndpointConfig]:
    """An EndpointConfig for the fake server; keyword arguments override the fields."""

    def make(**overrides: Any) -> EndpointConfig:
        fields: dict[str, Any] = {"base_url": fake_openai.url, "api_key": "test-key", "model": "gpt-4o", "timeout": 5.0}
        return EndpointConfig(**(fields | overrides))

    return make


@pytest.fixture
def model(endpoint: Callable[..., EndpointConfig]) -> Iterator[OpenAIModel]:
    client = OpenAIModel(endpoint(max_retries=0))
    yield client
    client.close()
