"""A task's usage counters as plain data: the API's task body and the timeline page both show them."""

from __future__ import annotations

from typing import Any

from tasks_app.models import AgentTask


def task_usage(task: AgentTask) -> dict[str, Any]:
    """Steps, calls, tokens and cost so far; cost_usd is the raw number (each interface formats it)."""
    return {
        "steps_completed": task.steps_completed,
        "max_steps": task.max_steps,
        "model_calls": task.model_calls,
        "tool_calls": task.tool_calls,
        "prompt_tokens": task.prompt_tokens,
        "completion_tokens": task.completion_tokens,
        "cost_usd": task.cost_usd,
    }
