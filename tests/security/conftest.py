"""A small local web server for the fetch and injection tests: fixed routes, redirects, big bodies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agents.tools import fetch, sandbox

NO_LENGTH = "x-send-no-length"  # a route header: answer without Content-Length (HTTP/1.0, read to the close)


class LocalSite:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                site.hits.append(self.path)
                status, headers, body = site.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    if name != NO_LENGTH:
                        self.send_header(name, value)
                if "Content-Length" not in headers and NO_LENGTH not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def page(self, path: str, body: bytes | str, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}, data)


@pytest.fixture
def site() -> Iterator[LocalSite]:
    server = LocalSite()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def tool_limits() -> Iterator[None]:
    """Tests change the tools' module-level limits; put them back afterwards."""
    saved_fetch, saved_sandbox = fetch.config(), sandbox.config()
    yield
    fetch.configure(**saved_fetch.__dict__)
    sandbox.configure(**saved_sandbox.__dict__)
