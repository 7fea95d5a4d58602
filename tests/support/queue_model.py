"""A model seam stand-in that answers each purpose (plan, replan, step, review, drift) from a queue."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from agents.types import LLMRequest, LLMResponse, ToolCall, Usage


def plan(*titles: str, approval: tuple[int, ...] = ()) -> str:
    return json.dumps(
        {"steps": [{"title": t, "instructions": f"do {t}", "needs_approval": i in approval} for i, t in enumerate(titles)]}
    )


def final(text: str, **kwargs: Any) -> LLMResponse:
    return LLMResponse(content=text, usage=Usage(10, 5), **kwargs)


def call(name: str, arguments: dict[str, Any] | None = None, parse_error: str = "") -> LLMResponse:
    return LLMResponse(
        content=None,
        tool_calls=(ToolCall(name=name, arguments=arguments or {}, call_id=f"c-{name}", parse_error=parse_error),),
        finish_reason="tool_calls",
        usage=Usage(10, 5),
    )


def verdict(approved: bool, critique: str = "") -> LLMResponse:
    return LLMResponse(content=json.dumps({"approved": approved, "critique": critique}), usage=Usage(5, 5))


class QueueModel:
    """Answers each purpose from its own queue; a step queue runs dry into 'ok: <title>'."""

    name = "queue"

    def __init__(self, **queues: list[LLMResponse | str]) -> None:
        self.queues = {k: list(v) for k, v in queues.items()}
        self.requests: list[LLMRequest] = []
        self.by_purpose: dict[str, int] = defaultdict(int)

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        self.by_purpose[request.purpose] += 1
        queue = self.queues.get(request.purpose, [])
        if queue:
            answer = queue.pop(0)
            return LLMResponse(content=answer, usage=Usage(20, 10)) if isinstance(answer, str) else answer
        if request.purpose in ("review", "drift"):
            return verdict(True)
        if request.purpose in ("plan", "replan"):
            raise AssertionError(f"unexpected {request.purpose} request")
        return final(f"ok: {request.step_title}")
