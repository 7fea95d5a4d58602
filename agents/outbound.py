"""One outbound HTTP exchange whose timeout is a total, not a per-read limit.

A socket timeout bounds each read: a server that sends one byte every few seconds never trips it,
and held a 4 s fetch for 18 s. Here a timer shuts the connection's socket down when the whole
exchange (connect, TLS handshake, request, headers, body) has taken `timeout` seconds; the blocked
read then returns at once and the caller gets TotalTimeout. fetch_url and webhook delivery use it.
Name resolution (getaddrinfo) happens before the socket exists and is bounded by the resolver's own
timeout, not by this one.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass

from agents.errors import TotalTimeout as TotalTimeout  # re-exported: defined in agents.errors


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes  # empty for a redirect, and when the body is longer than max_bytes
    too_large: bool  # the body was longer than max_bytes (declared so, or found so after max_bytes + 1)


class _Cutoff:
    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.conn = conn
        self.fired = False
        self.timer = threading.Timer(seconds, self._cut)
        self.timer.daemon = True

    def _cut(self) -> None:
        self.fired = True
        sock = self.conn.sock
        if sock is not None:
            # The plain socket's shutdown, also for a TLS socket: SSLSocket.shutdown would drop
            # its SSL object under the reading thread's feet; this only wakes the read with EOF.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def exchange(
    method: str,
    scheme: str,
    host: str,
    port: int,
    target: str,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    max_bytes: int = 1024 * 1024,
) -> Answer:
    """Send one request and read its answer, all within `timeout` seconds.

    Raises TotalTimeout past the deadline; OSError or http.client.HTTPException otherwise."""
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    cutoff = _Cutoff(conn, timeout)
    cutoff.timer.start()
    try:
        try:
            conn.connect()
            if cutoff.fired:  # the deadline passed while connecting, before there was a socket to cut
                raise TotalTimeout(f"no complete answer within {timeout:g} s")
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            declared = answer_headers.get("content-length", "")
            too_large = declared.isdigit() and int(declared) > max_bytes
            # A redirect's body is not read, nor one that says it is too large.
            data = b"" if too_large or 300 <= response.status < 400 else response.read(max_bytes + 1)
        except (OSError, http.client.HTTPException):
            if cutoff.fired:
                raise TotalTimeout(f"no complete answer within {timeout:g} s") from None
            raise
        if cutoff.fired:  # the cut can end a body without a length early: that body is not the answer
            raise TotalTimeout(f"no complete answer within {timeout:g} s")
        too_large = too_large or len(data) > max_bytes
        return Answer(response.status, answer_headers, b"" if too_large else data, too_large)
    finally:
        cutoff.timer.cancel()
        conn.close()
