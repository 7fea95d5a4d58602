"""An httpx2 transport that caps every response body, error bodies included.

The client reads successful bodies itself in chunks (body.read_capped), but on a 4xx/5xx the SDK
reads the whole error body into memory to build its exception. Wrapping the transport bounds that
read too: past the cap the stream raises ModelOutputTooLarge, which the SDK lets through unchanged.
Counts bytes as they arrive on the wire (compressed, if the server compresses); read_capped counts
the decoded bytes, so a small compressed body that inflates past the cap is caught there.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpcore2
import httpx2
import openai

from agents.errors import ModelOutputTooLarge
from agents.llm import deadline
from agents.llm.body import EXCERPT_BYTES


class CappedBodyTransport(httpx2.BaseTransport):
    def __init__(self, inner: httpx2.BaseTransport, cap: int, *, endpoint: str = "") -> None:
        self.inner = inner
        self.cap = cap
        self.endpoint = endpoint

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        # The SDK's timeout becomes this attempt's total, body included (agents/llm/deadline.py).
        deadline.start_attempt((request.extensions.get("timeout") or {}).get("read"))
        response = self.inner.handle_request(request)
        if not isinstance(response.stream, httpx2.SyncByteStream):
            return response  # a sync transport returns sync streams; nothing else to wrap
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self.cap, self.endpoint, response.status_code),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


class _CappedStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, cap: int, endpoint: str, status: int) -> None:
        self.inner = inner
        self.cap = cap
        self.endpoint = endpoint
        self.status = status

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        excerpt = bytearray()
        for chunk in self.inner:
            seen += len(chunk)
            if len(excerpt) < EXCERPT_BYTES:
                excerpt += chunk[: EXCERPT_BYTES - len(excerpt)]
            if seen > self.cap:
                where = f"{self.endpoint}: " if self.endpoint else ""
                raise ModelOutputTooLarge(
                    f"{where}the HTTP {self.status} response body passed the {self.cap}-byte cap after {seen} bytes",
                    excerpt=bytes(excerpt).decode("utf-8", errors="replace"),
                    size=seen,
                )
            yield chunk

    def close(self) -> None:
        self.inner.close()


def capped_http_client(cap: int, *, endpoint: str = "") -> httpx2.Client:
    """The SDK's default client (its timeouts, redirects), over a transport that caps bodies.

    Requests that go through a proxy taken from the environment (HTTPS_PROXY) use httpx2's proxy
    transport instead, which this does not wrap; the success-path cap in the client still holds.
    """
    # The SDK's own connection limits (1000), not httpx2's transport default (100): one client serves
    # every thread of a worker, which keeps hundreds of calls in flight at once (docs/performance.md).
    inner = httpx2.HTTPTransport(limits=openai._constants.DEFAULT_CONNECTION_LIMITS)
    pool = getattr(inner, "_pool", None)  # httpx2 has no parameter for the network backend
    if not isinstance(pool, httpcore2.ConnectionPool):
        raise RuntimeError("httpx2.HTTPTransport no longer keeps a ConnectionPool in _pool: the total timeout cannot be set")
    pool._network_backend = deadline.DeadlineBackend(pool._network_backend)
    return openai.DefaultHttpx2Client(transport=CappedBodyTransport(inner, cap, endpoint=endpoint))
