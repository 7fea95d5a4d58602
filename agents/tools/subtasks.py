"""The sub-agent tool the model can call. Like the waits, the step executor resolves it itself
(agents/subtasks.py): it spawns child tasks and waits for them in the journal's two phases."""

from __future__ import annotations

from typing import Literal

from agents.tools.registry import ToolContext, ToolError, tool

SPAWN_SUBTASKS = "spawn_subtasks"


@tool(name=SPAWN_SUBTASKS, idempotent=True, risk="write")
def spawn_subtasks(
    ctx: ToolContext,
    children: list[dict],  # type: ignore[type-arg]
    on_child_failure: Literal["fail_parent", "continue", "escalate"] = "fail_parent",
) -> str:
    """Start sub-agents and wait for all of them to end; the result lists each one's status and result.
    Each child is {"goal": str, "context": object (optional), "profile": str (optional, default: yours),
    "budget_share": number in (0, 1] (optional): the share of your remaining token, cost and step budget
    it may use; the shares add up to at most 1}. on_child_failure: fail_parent (this task fails),
    continue (you get the failures as data) or escalate (a person decides)."""
    raise ToolError(f"{SPAWN_SUBTASKS} is resolved by the step executor")
