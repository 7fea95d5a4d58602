"""The step executor: a tool-using loop, every call journaled, with a cap on model calls."""

from __future__ import annotations

import json

from agents.errors import StepBudgetExceeded
from agents.journal import Journal, call_key
from agents.model import Model
from agents.tools.registry import ToolContext, ToolRegistry
from agents.types import JSON, LLMRequest, StepRecord, StepResult, TaskRecord, Usage

STEP_SYSTEM_PROMPT = (
    "You are a Horizon agent executing one step of a larger plan. Use the tools when they help. "
    "When the step is done, answer with its result as plain text."
)
MAX_TOOL_RESULT_CHARS = 20_000


def _tool_message(call_id: str, result: dict[str, JSON]) -> dict[str, JSON]:
    text = json.dumps(result.get("output") if result.get("ok") else {"error": result.get("error")})
    if len(text) > MAX_TOOL_RESULT_CHARS:
        text = text[:MAX_TOOL_RESULT_CHARS] + f"... [truncated from {len(text)} characters]"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


class StepExecutor:
    def __init__(self, model: Model, tools: ToolRegistry, *, max_model_calls: int = 12) -> None:
        self.model = model
        self.tools = tools
        self.max_model_calls = max_model_calls

    def run(self, *, journal: Journal, task: TaskRecord, step: StepRecord, step_count: int) -> StepResult:
        user = f"Goal: {task.goal}\nStep {step.index + 1} of {step_count}: {step.title}\n{step.instructions}".rstrip()
        messages: list[dict[str, JSON]] = [
            {"role": "system", "content": STEP_SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ]
        schemas = self.tools.schemas()
        call_index = model_calls = tool_calls = 0
        prompt_tokens = completion_tokens = 0
        scope = f"s{step.index}"
        while model_calls < self.max_model_calls:
            request = LLMRequest(
                purpose="step", messages=tuple(messages), tools=schemas, step_index=step.index, step_title=step.title
            )
            key = call_key(task.id, step.plan_version, scope, call_index)
            response = journal.model_call(key, self.model, request)
            call_index += 1
            model_calls += 1
            prompt_tokens += response.usage.prompt_tokens
            completion_tokens += response.usage.completion_tokens
            if not response.tool_calls:
                return StepResult(
                    output=response.content or "",
                    model_calls=model_calls,
                    tool_calls=tool_calls,
                    journal_hits=journal.hits,
                    usage=Usage(prompt_tokens, completion_tokens),
                )
            messages.append(
                {
                    "role": "assistant",
                    "content": response.content,
                    "tool_calls": [
                        {
                            "id": c.call_id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": json.dumps(c.arguments, sort_keys=True)},
                        }
                        for c in response.tool_calls
                    ],
                }
            )
            for call in response.tool_calls:
                key = call_key(task.id, step.plan_version, scope, call_index)
                call_index += 1
                tool_calls += 1
                tool = self.tools.get(call.name)
                if tool is None:
                    result: dict[str, JSON] = {"ok": False, "error": f"unknown tool {call.name!r}"}
                elif errors := tool.validate(call.arguments):
                    result = {"ok": False, "error": f"invalid arguments for {call.name}: " + "; ".join(errors)}
                else:
                    ctx = ToolContext(task_id=task.id, step_index=step.index, idempotency_key=key, store=journal.store)
                    result = journal.tool_call(key, tool, call, ctx)
                messages.append(_tool_message(call.call_id, result))
        raise StepBudgetExceeded(f"step {step.index} used its {self.max_model_calls} model calls without finishing")
