"""OpenAIModel through the real SDK over HTTP against the fake server: what is sent and what comes back."""

from __future__ import annotations

import json

from agents.llm.client import OpenAIModel
from agents.tools.registry import ToolRegistry
from agents.types import LLMRequest, ToolCall, Usage
from tests.support.fake_openai import CHAT_PATH

STEP = LLMRequest(
    purpose="step",
    messages=({"role": "system", "content": "You are a test."}, {"role": "user", "content": "Step 1 of 2: Count files"}),
)


def _tools() -> tuple[dict, ...]:
    registry = ToolRegistry()

    @registry.tool()
    def write_file(ctx, path: str, content: str) -> str:
        """Write a file."""
        return path

    return registry.schemas()


def test_default_reply_is_a_final_answer_with_usage_and_cost(fake_openai, endpoint):
    config = endpoint(input_price_per_mtok=2.5, output_price_per_mtok=10.0, name="primary")
    fake_openai.script({"content": "hello", "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})

    response = OpenAIModel(config).complete(STEP)

    assert response.content == "hello"
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    assert response.usage == Usage(prompt_tokens=1000, completion_tokens=500)
    assert response.cost_usd == 1000 * 2.5 / 1e6 + 500 * 10.0 / 1e6
    assert response.model == "gpt-4o"
    sent = fake_openai.requests()[0]
    assert sent["model"] == "gpt-4o"
    assert sent["messages"] == list(STEP.messages)
    assert "tools" not in sent and "tool_choice" not in sent and "response_format" not in sent
    assert "max_tokens" not in sent
    assert fake_openai.count(CHAT_PATH) == 1


def test_tool_call_round_trip(fake_openai, model):
    tools = _tools()
    fake_openai.script(
        {"tool_calls": [{"id": "call_a", "name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}]},
        {"content": "wrote a.txt"},
    )
    first = model.complete(LLMRequest(purpose="step", messages=STEP.messages, tools=tools))

    assert first.finish_reason == "tool_calls"
    assert first.content is None
    assert first.tool_calls == (ToolCall(name="write_file", arguments={"path": "a.txt", "content": "hi"}, call_id="call_a"),)

    # The conversation goes back with the assistant's call and the tool's result, as the executor builds it.
    follow_up = (
        *STEP.messages,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "write_file", "arguments": '{"path": "a.txt"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '"a.txt"'},
    )
    second = model.complete(LLMRequest(purpose="step", messages=follow_up, tools=tools))

    assert second.content == "wrote a.txt"
    assert second.tool_calls == ()
    first_sent, second_sent = fake_openai.requests()
    assert first_sent["tools"] == list(tools)
    assert first_sent["tools"][0]["type"] == "function"
    assert first_sent["tool_choice"] == "auto"
    assert second_sent["messages"][-2]["tool_calls"][0]["id"] == "call_a"
    assert second_sent["messages"][-1] == {"role": "tool", "tool_call_id": "call_a", "content": '"a.txt"'}
    assert fake_openai.count(CHAT_PATH) == 2


def test_structured_output_request_carries_a_strict_json_schema(fake_openai, endpoint):
    schema = {"type": "object", "properties": {"steps": {"type": "array"}}, "required": ["steps"], "additionalProperties": False}
    request = LLMRequest(purpose="plan", messages=STEP.messages, response_schema={"name": "plan", "schema": schema})

    response = OpenAIModel(endpoint(max_tokens=256)).complete(request)

    sent = fake_openai.requests()[0]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "plan", "schema": schema, "strict": True}}
    assert sent["max_tokens"] == 256
    assert json.loads(response.content or "")["steps"]  # the fake's default plan for a structured request
    assert fake_openai.count() == 1


def test_malformed_tool_arguments_become_a_parse_error(fake_openai, model):
    fake_openai.script(
        {
            "tool_calls": [
                {"id": "c1", "name": "write_file", "arguments": '{"path": "a.txt", '},
                {"id": "c2", "name": "write_file", "arguments": '["not", "an", "object"]'},
                {"id": "c3", "name": "list_files", "arguments": ""},
            ]
        }
    )
    calls = model.complete(STEP).tool_calls

    assert [c.call_id for c in calls] == ["c1", "c2", "c3"]
    assert calls[0].arguments == {} and "not valid JSON" in calls[0].parse_error
    assert calls[1].arguments == {} and "must be a JSON object, got list" in calls[1].parse_error
    # An empty string is how several compatible servers call a tool without parameters.
    assert calls[2].arguments == {} and calls[2].parse_error == ""
    assert fake_openai.count() == 1


def test_empty_content(fake_openai, model):
    fake_openai.script({"content": ""}, {"content": None})
    assert model.complete(STEP).content == ""
    response = model.complete(STEP)
    assert response.content is None and response.tool_calls == () and response.finish_reason == "stop"
    assert fake_openai.count() == 2


def test_refusal_passes_through(fake_openai, model):
    fake_openai.script({"content": None, "refusal": "I can't help with that."})
    response = model.complete(STEP)
    assert response.refusal == "I can't help with that."
    assert response.content is None
    assert fake_openai.count() == 1


def test_finish_reason_length_passes_through(fake_openai, model):
    fake_openai.script({"content": "a truncated ans", "finish_reason": "length"})
    response = model.complete(STEP)
    assert response.finish_reason == "length"
    assert response.content == "a truncated ans"
    assert fake_openai.count() == 1


def test_missing_usage_is_counted_offline(fake_openai, endpoint):
    fake_openai.script({"content": "hello world", "usage": None})
    request = LLMRequest(purpose="step", messages=({"role": "user", "content": "hello world"},))

    response = OpenAIModel(endpoint(output_price_per_mtok=1_000_000.0)).complete(request)

    # o200k_base: "hello world" is 2 tokens, "user" 1; each message adds 3 and the reply priming 3.
    assert response.usage == Usage(prompt_tokens=3 + 1 + 2 + 3, completion_tokens=2)
    assert response.cost_usd == 2.0
    assert "usage" not in fake_openai.snapshot()["requests"][0]["body"]
    assert fake_openai.count() == 1
