"""OpenAIModel: the `Model` seam over the real `openai` SDK's chat completions.

The body is read through `with_streaming_response` in chunks up to the endpoint's byte cap and
parsed here, never by the SDK: `create()` would read a body of any size into memory first.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from agents import boundary
from agents.errors import TransientError
from agents.llm.body import CHUNK_BYTES, decode_json_object, read_capped
from agents.llm.config import EndpointConfig
from agents.llm.errors import map_sdk_error
from agents.llm.tokens import count_tokens
from agents.llm.transport import capped_http_client
from agents.types import JSON, LLMRequest, LLMResponse, ToolCall, Usage

MAX_REPORTED_TOKENS = 10**9  # a count past this is not a count: the usage is then counted offline


class OpenAIModel:
    def __init__(self, config: EndpointConfig, *, http_client: httpx2.Client | None = None) -> None:
        self.config = config
        self.name = config.display_name
        self._client = sdk_client(config, http_client)

    def complete(self, request: LLMRequest) -> LLMResponse:
        params = chat_params(request, self.config)
        try:
            with self._client.chat.completions.with_streaming_response.create(**params) as raw:
                body = read_capped(raw.iter_bytes(CHUNK_BYTES), self.config.max_output_bytes, endpoint=self.name)
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            raise map_sdk_error(exc, endpoint=self.name) from exc
        return parse_completion(decode_json_object(body, endpoint=self.name), request, self.config)

    def close(self) -> None:
        self._client.close()


def sdk_client(config: EndpointConfig, http_client: httpx2.Client | None = None) -> openai.OpenAI:
    """The SDK client for one endpoint, shared by chat and embeddings."""
    return openai.OpenAI(
        api_key=config.api_key,
        base_url=config.base_url,
        timeout=config.timeout,
        max_retries=config.max_retries,
        # A caller's own client (tests, proxies) is used as given; the default one caps error bodies too.
        http_client=http_client or capped_http_client(config.max_output_bytes, endpoint=config.display_name),
    )


def chat_params(request: LLMRequest, config: EndpointConfig) -> dict[str, Any]:
    params: dict[str, Any] = {"model": config.model, "messages": list(request.messages)}
    if request.tools:
        params["tools"] = list(request.tools)
        params["tool_choice"] = "auto"
    if request.response_schema is not None:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.response_schema["name"],
                "schema": request.response_schema["schema"],
                "strict": True,
            },
        }
    if config.max_tokens is not None:
        params["max_tokens"] = config.max_tokens
    return params


def parse_completion(data: dict[str, Any], request: LLMRequest, config: EndpointConfig) -> LLMResponse:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        # Malformed rather than refused: nothing says a retry would get the same answer.
        raise TransientError(f"{config.display_name}: the completion has no choices")
    choice = choices[0]
    message = _object(choice.get("message"))
    content = _text(message.get("content"))
    refusal = _text(message.get("refusal"))
    tool_calls = tuple(parse_tool_call(call) for call in message.get("tool_calls") or () if isinstance(call, dict))
    model = _text(data.get("model")) or config.model
    usage = _usage(data.get("usage"), request, content, tool_calls, config.model)
    return LLMResponse(
        content=content,
        tool_calls=tool_calls,
        finish_reason=str(choice.get("finish_reason") or "stop"),
        usage=usage,
        model=model,
        refusal=refusal,
        cost_usd=config.cost_usd(usage),
    )


def parse_tool_call(call: dict[str, Any]) -> ToolCall:
    function = _object(call.get("function"))
    name = str(function.get("name") or "")
    call_id = str(call.get("id") or "")
    raw = function.get("arguments")
    if isinstance(raw, dict):  # some OpenAI-compatible servers send an object instead of a JSON string
        return ToolCall(name=name, arguments=raw, call_id=call_id)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        # A tool without parameters: several compatible servers send "" rather than "{}".
        return ToolCall(name=name, arguments={}, call_id=call_id)
    try:
        # boundary.loads: deep nesting and huge numbers are refused here, not by a RecursionError later.
        arguments: JSON = boundary.loads(raw, "the arguments text") if isinstance(raw, str) else raw
    except ValueError as exc:
        error = f"{exc.args[0] if exc.args else exc}: {boundary.clean_text(str(raw)[:200])!r}"
        return ToolCall(name=name, arguments={}, call_id=call_id, parse_error=error)
    if not isinstance(arguments, dict):
        error = f"the arguments must be a JSON object, got {type(arguments).__name__}: {str(raw)[:200]!r}"
        return ToolCall(name=name, arguments={}, call_id=call_id, parse_error=error)
    return ToolCall(name=name, arguments=arguments, call_id=call_id)


def _count(value: Any) -> int | None:
    """A token count an endpoint reported, if it is one: a whole number a usage column can hold."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REPORTED_TOKENS:
        return value
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _usage(reported: Any, request: LLMRequest, content: str | None, calls: tuple[ToolCall, ...], model: str) -> Usage:
    if isinstance(reported, dict) and _count(reported.get("prompt_tokens")) is not None:
        return Usage(prompt_tokens=reported["prompt_tokens"], completion_tokens=_count(reported.get("completion_tokens")) or 0)
    # The endpoint did not say (several compatible servers omit usage): count offline, so that
    # budgets and costs still move.
    completion = (content or "") + "".join(c.name + json.dumps(c.arguments) for c in calls)
    return Usage(prompt_tokens=count_tokens(request.messages, model), completion_tokens=count_tokens(completion, model))
