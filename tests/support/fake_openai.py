"""A local OpenAI-compatible HTTP server with scripted replies, for tests and worker processes.

In a test:                               In a subprocess (for Celery workers):
    with FakeOpenAI() as server:             python -m tests.support.fake_openai --port 8765 --script replies.json
        server.script(reply, ...)            (prints "listening on http://127.0.0.1:8765/v1" when ready)
        OpenAI(base_url=server.url, ...)

Endpoints: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models; and for control,
POST /_control/script {"endpoint": "chat"|"embeddings", "replies": [...]}, POST /_control/reset,
GET /_control/requests -> {"counts": {path: n}, "requests": [{"path", "body"}]}.

Replies are queued per endpoint and used once each, in order. A reply is a JSON object:
    {"content": "...", "tool_calls": [{"name", "arguments" (str or object), "id"}],
     "finish_reason": "...", "refusal": "...", "usage": {...} or null (omit usage), "model": "..."}
    {"status": 429, "body": {...}, "headers": {"Retry-After": "3"}}    an HTTP error
    {"delay": 2.0, ...}                                                 sleep first (for timeouts)
    {"huge": 20000000}                                                  a body of that many bytes
                                                                        (status 200 unless "status" says)
    {"embeddings": [[...], ...]}                                        for /v1/embeddings
With the queue empty, chat answers deterministically: a plan for a planning request, "done: <title>"
for a step ("Step i of n: <title>" in the prompt), and embeddings are derived from a hash of each text.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
MODELS_PATH = "/v1/models"
ENDPOINTS = {"chat": CHAT_PATH, "embeddings": EMBEDDINGS_PATH}
HUGE_CHUNK = 64 * 1024
EMBEDDING_DIMENSIONS = 8
STEP_LINE = re.compile(r"^Step \d+ of \d+: (.+)$", re.MULTILINE)


class FakeOpenAI:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> None:
        # With the queue empty, `responder(request body)` gives the reply (a reply object as above),
        # when set: a stateless fake endpoint for many tasks at once (tests/integration/test_fault_run.py).
        self.responder = responder
        self._lock = threading.Lock()
        self._queues: dict[str, deque[dict[str, Any]]] = {path: deque() for path in ENDPOINTS.values()}
        self._requests: list[dict[str, Any]] = []
        self._counts: Counter[str] = Counter()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True  # a reply stuck in a delay must not hold up stop()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the in-process API ---------------------------------------------------------------

    def script(self, *replies: dict[str, Any], endpoint: str = "chat") -> None:
        with self._lock:
            self._queues[ENDPOINTS[endpoint]].extend(replies)

    def reset(self) -> None:
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self._requests.clear()
            self._counts.clear()

    def count(self, path: str = CHAT_PATH) -> int:
        with self._lock:
            return self._counts[path]

    def authorizations(self, path: str = CHAT_PATH) -> list[str]:
        """The Authorization header of each request to `path`, in order."""
        with self._lock:
            return [r["authorization"] for r in self._requests if r["path"] == path]

    def requests(self, path: str = CHAT_PATH) -> list[dict[str, Any]]:
        """The JSON bodies received on `path`, oldest first."""
        with self._lock:
            return [r["body"] for r in self._requests if r["path"] == path]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"counts": dict(self._counts), "requests": list(self._requests)}

    # --- used by the handler --------------------------------------------------------------

    def _record(self, path: str, body: Any, authorization: str = "") -> dict[str, Any] | None:
        """Count the request and take its scripted reply, if any."""
        with self._lock:
            self._counts[path] += 1
            self._requests.append({"path": path, "body": body, "authorization": authorization})
            queue = self._queues.get(path)
            if queue:
                return queue.popleft()
        return self.responder(body) if self.responder is not None and path == CHAT_PATH else None


def _handler_for(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path == MODELS_PATH:
                models = [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "horizon"}]
                self._send_json(200, {"object": "list", "data": models})
            elif self.path == "/_control/requests":
                self._send_json(200, server.snapshot())
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self._send_json(400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})
                return
            if self.path == "/_control/script":
                server.script(*body.get("replies", []), endpoint=body.get("endpoint", "chat"))
                self._send_json(200, {"ok": True})
            elif self.path == "/_control/reset":
                server.reset()
                self._send_json(200, {"ok": True})
            elif self.path in (CHAT_PATH, EMBEDDINGS_PATH):
                reply = server._record(self.path, body, self.headers.get("Authorization", ""))
                # The client may give up first (a timeout, or a body past its cap): that is expected.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(self.path, body, reply or {})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def _answer(self, path: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
            if reply.get("delay"):
                time.sleep(float(reply["delay"]))
            if "huge" in reply:
                self._send_huge(int(reply["huge"]), int(reply.get("status", 200)), reply.get("headers", {}))
            elif "status" in reply:
                default_error = {"error": {"message": f"scripted {reply['status']}", "type": "server_error"}}
                self._send_json(int(reply["status"]), reply.get("body", default_error), reply.get("headers", {}))
            elif path == EMBEDDINGS_PATH:
                self._send_json(200, _embeddings(request, reply))
            else:
                self._send_json(200, _completion(request, reply))

        def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, str(value))
            self.end_headers()
            self.wfile.write(data)

        def _send_huge(self, size: int, status: int, headers: dict[str, str]) -> None:
            # Written in chunks so that the server (same process as the test's tracemalloc) never
            # holds the whole body.
            head = b'{"id":"chatcmpl-huge","object":"chat.completion","choices":[{"index":0,"message":{"content":"'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            for name, value in headers.items():
                self.send_header(name, str(value))
            self.end_headers()
            self.wfile.write(head[:size])
            written = min(len(head), size)
            chunk = b"x" * HUGE_CHUNK
            while written < size:
                part = chunk[: size - written]
                self.wfile.write(part)
                written += len(part)

    return Handler


def _completion(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    tool_calls = [
        {
            "id": call.get("id", f"call_{i}"),
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": call["arguments"]
                if isinstance(call.get("arguments"), str)
                else json.dumps(call.get("arguments", {})),
            },
        }
        for i, call in enumerate(reply.get("tool_calls", []))
    ]
    content = reply["content"] if "content" in reply else (None if tool_calls else _default_answer(request))
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": reply.get("refusal")}
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish_reason = reply.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
    data: dict[str, Any] = {
        "id": f"chatcmpl-{hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]}",
        "object": "chat.completion",
        "created": 0,
        "model": reply.get("model", request.get("model", "fake-model")),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
    }
    usage = reply.get("usage", _default_usage(request, content))
    if usage is not None:
        data["usage"] = usage
    return data


def _arguments_text(arguments: Any) -> str:
    # A string is sent as is, so that a test can script malformed JSON.
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _default_answer(request: dict[str, Any]) -> str:
    prompt = "\n".join(m["content"] for m in request.get("messages", []) if isinstance(m.get("content"), str))
    step = STEP_LINE.search(prompt)
    if step and not request.get("response_format"):
        return f"done: {step.group(1).strip()}"
    if "planner" in prompt.lower() or request.get("response_format"):
        steps = [
            {"title": "Gather the facts", "instructions": "Collect what the goal needs.", "depends_on": []},
            {"title": "Write the result", "instructions": "Summarise what was gathered.", "depends_on": [1]},
        ]
        return json.dumps({"steps": steps})
    return "done"


def _default_usage(request: dict[str, Any], content: str | None) -> dict[str, int]:
    # Deterministic and roughly proportional; tests that care about exact numbers script usage.
    prompt = sum(len(json.dumps(m)) for m in request.get("messages", [])) // 4
    completion = len(content or "") // 4
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _embeddings(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    inputs = request.get("input", [])
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    vectors = reply.get("embeddings") or [_hash_vector(str(text)) for text in texts]
    return {
        "object": "list",
        "model": request.get("model", "fake-embedding"),
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "usage": {"prompt_tokens": sum(len(str(t)) // 4 for t in texts), "total_tokens": sum(len(str(t)) // 4 for t in texts)},
    }


def _hash_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255.0, 6) for b in digest[:EMBEDDING_DIMENSIONS]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local OpenAI-compatible server with scripted replies.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, help='JSON: a list of chat replies, or {"chat": [...], "embeddings": [...]}')
    args = parser.parse_args(argv)
    server = FakeOpenAI(args.host, args.port)
    if args.script:
        script = json.loads(args.script.read_text())
        if isinstance(script, list):
            script = {"chat": script}
        for endpoint, replies in script.items():
            server.script(*replies, endpoint=endpoint)
    print(f"listening on {server.url}", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
