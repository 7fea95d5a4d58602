"""Reading a response body with a byte cap, so that an enormous answer cannot exhaust memory."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agents.errors import ModelOutputTooLarge, TransientError

CHUNK_BYTES = 64 * 1024
EXCERPT_BYTES = 4 * 1024


def read_capped(chunks: Iterable[bytes], cap: int, *, endpoint: str = "") -> bytes:
    """Join `chunks` while they fit in `cap` bytes; past it, stop reading and raise ModelOutputTooLarge.

    The caller closes the response afterwards, which drops the connection instead of draining it.
    """
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > cap:
            excerpt = bytes(body[:EXCERPT_BYTES]).decode("utf-8", errors="replace")
            where = f"{endpoint}: " if endpoint else ""
            raise ModelOutputTooLarge(
                f"{where}the response body passed the {cap}-byte cap after {len(body)} bytes",
                excerpt=excerpt,
                size=len(body),
            )
    return bytes(body)


def decode_json_object(body: bytes, *, endpoint: str = "") -> dict[str, Any]:
    # A 200 with a body that is not a JSON object is usually a proxy or gateway page, not the model:
    # worth another try later rather than an escalation.
    where = f"{endpoint}: " if endpoint else ""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        excerpt = body[:200].decode("utf-8", errors="replace")
        raise TransientError(f"{where}the model endpoint answered with a body that is not JSON: {excerpt!r}") from None
    if not isinstance(data, dict):
        raise TransientError(f"{where}the model endpoint answered with JSON that is not an object")
    return data
