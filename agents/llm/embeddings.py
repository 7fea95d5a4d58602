"""OpenAIEmbedder: text embeddings over the `openai` SDK, with the client's byte cap and error mapping."""

from __future__ import annotations

from collections.abc import Sequence

import httpx2
import openai

from agents.errors import TransientError
from agents.llm.body import CHUNK_BYTES, decode_json_object, read_capped
from agents.llm.client import sdk_client
from agents.llm.config import EndpointConfig
from agents.llm.errors import map_sdk_error


class OpenAIEmbedder:
    def __init__(self, config: EndpointConfig, http_client: httpx2.Client | None = None) -> None:
        self.config = config
        self.name = config.display_name
        self._client = sdk_client(config, http_client)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in the order given. A float vector as JSON is large (about 20 bytes a
        dimension), so size max_output_bytes for the batch: 1 MiB holds roughly 30 vectors of 1536."""
        if not texts:
            return []
        try:
            # "float" explicitly: the SDK otherwise asks for base64 and decodes it in its own parser,
            # which this raw read bypasses; compatible servers do not all speak base64 either.
            with self._client.embeddings.with_streaming_response.create(
                model=self.config.model, input=list(texts), encoding_format="float"
            ) as raw:
                body = read_capped(raw.iter_bytes(CHUNK_BYTES), self.config.max_output_bytes, endpoint=self.name)
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            raise map_sdk_error(exc, endpoint=self.name) from exc
        return _vectors(decode_json_object(body, endpoint=self.name), len(texts), self.name)

    def close(self) -> None:
        self._client.close()


def _vectors(data: dict[str, object], expected: int, endpoint: str) -> list[list[float]]:
    items = data.get("data")
    if not isinstance(items, list) or len(items) != expected:
        got = len(items) if isinstance(items, list) else "no"
        raise TransientError(f"{endpoint}: asked for {expected} embeddings, got {got}")
    # The API may return them in any order; `index` says which input each belongs to.
    ordered = sorted(items, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    vectors = []
    for item in ordered:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not all(isinstance(x, int | float) for x in vector):
            raise TransientError(f"{endpoint}: an embedding is not a list of numbers")
        vectors.append([float(x) for x in vector])
    return vectors
