"""An OpenAI-compatible chat endpoint that answers every call after a fixed latency, and counts the
calls in flight from its own side (for benchmarks/io_concurrency.py).

    python -m benchmarks.latency_endpoint --latency 10 --port 0    (prints "listening on http://127.0.0.1:PORT/v1")

asyncio, so that a thousand calls waiting at once cost it a thousand sockets, not a thousand threads
(tests/support/fake_openai.py serves tests with a thread per request). Each goal is planned into
`--steps` steps; a step's first call asks for the read-only `list_files` tool and its second, which
sees the tool's result, finishes the step: about two model calls per step.

GET /_stats -> {"calls", "in_flight", "peak", "mean", "window_s"}: `mean` is the time-weighted number
of calls in flight from the first request to the last answer since the last POST /_reset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_openai import _completion  # noqa: E402 - the same completion shape as the test fake


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Calls still sleeping from before the reset (their client went away) must not count after it.
        self.generation = getattr(self, "generation", 0) + 1
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.area = 0.0  # integral of in_flight over time
        self.first = 0.0
        self.last = 0.0
        self._since = time.monotonic()

    def _advance(self) -> None:
        now = time.monotonic()
        self.area += self.in_flight * (now - self._since)
        self._since = now

    def begin(self) -> int:
        self._advance()
        if not self.calls:
            self.first, self.area = time.monotonic(), 0.0
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        return self.generation

    def end(self, generation: int) -> None:
        if generation != self.generation:
            return
        self._advance()
        self.in_flight -= 1
        self.last = time.monotonic()

    def as_json(self) -> dict[str, Any]:
        self._advance()
        window = (self.last if not self.in_flight else time.monotonic()) - self.first if self.calls else 0.0
        return {
            "calls": self.calls,
            "in_flight": self.in_flight,
            "peak": self.peak,
            "mean": self.area / window if window > 0 else 0.0,
            "window_s": window,
        }


def answer(request: dict[str, Any], steps: int) -> dict[str, Any]:
    messages = request.get("messages", [])
    if request.get("response_format"):  # the plan (structured output)
        plan = [{"title": f"Part {i + 1}", "instructions": "Look, then report.", "depends_on": []} for i in range(steps)]
        return _completion(request, {"content": json.dumps({"steps": plan})})
    if any(m.get("role") == "tool" for m in messages):
        return _completion(request, {"content": "done"})
    return _completion(request, {"tool_calls": [{"name": "list_files", "arguments": {}, "id": "call_1"}]})


async def serve(host: str, port: int, latency: float, steps: int, plan_latency: float | None = None) -> None:
    stats = Stats()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                status, payload = 200, {}
                if path.endswith("/chat/completions"):
                    generation = stats.begin()
                    try:
                        request = json.loads(body or b"{}")
                        planning = bool(request.get("response_format"))
                        await asyncio.sleep(plan_latency if planning and plan_latency is not None else latency)
                        payload = answer(request, steps)
                    finally:
                        stats.end(generation)
                elif path == "/_stats":
                    payload = stats.as_json()
                elif path == "/_reset":
                    stats.reset()
                    payload = {"ok": True}
                else:
                    status, payload = 404, {"error": {"message": f"no route {path}"}}
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
                del method
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, backlog=4096, limit=1 << 20)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://{host}:{bound}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--plan-latency", type=float, help="the planning call's latency, if not --latency (tests: one long call)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.latency, args.steps, args.plan_latency))


if __name__ == "__main__":
    main()
