"""A total timeout for each HTTP attempt of a model call, under the openai SDK's per-read timeout.

httpx applies the SDK's `timeout` to each connect, read and write: an endpoint (or a proxy in front
of it) that sends a byte every few seconds never trips it, and one model call could last for ever.
This network backend gives every socket operation of an attempt only what is left of the attempt's
total (the request's read timeout, which the SDK sets from EndpointConfig.timeout), so an attempt
ends by then whatever the server does: the SDK sees a timeout, retries up to max_retries, and the
call's worst case is what horizon_project/checks.py assumes, (retries + 1) x timeout + backoff.

The deadline is per thread (a sync client does all of an attempt's I/O in the calling thread);
CappedBodyTransport sets it when an attempt starts.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore2

_local = threading.local()


def start_attempt(total: float | None) -> None:
    """This thread's next socket operations share `total` seconds (None: no total)."""
    _local.deadline = None if total is None else time.monotonic() + total
    _local.total = total


def _left(timeout: float | None) -> float | None:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left: float = deadline - time.monotonic()
    if left <= 0:
        raise httpcore2.ReadTimeout(f"the model endpoint did not answer within the {_local.total:g} s total timeout")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _left(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        return DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self, inner: httpcore2.NetworkBackend | None = None) -> None:
        self.inner = inner or httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        return DeadlineStream(self.inner.connect_tcp(host, port, _left(timeout), local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        return DeadlineStream(self.inner.connect_unix_socket(path, _left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)
