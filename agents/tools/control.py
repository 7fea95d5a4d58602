"""Control tools: how the agent ends its step, or the whole task, on its own.

They have no side effects of their own. The step executor recognises them by name (CONTROL_TOOLS)
after validating their arguments and ends the step instead of running anything; the model call
that asked for them is journaled like any other, so a resumed step decides the same way.
"""

from __future__ import annotations

from agents.tools.registry import ToolContext, tool

FINISH_STEP = "finish_step"
FINISH_TASK = "finish_task"
ABORT_TASK = "abort_task"
CONTROL_TOOLS = frozenset({FINISH_STEP, FINISH_TASK, ABORT_TASK})


@tool(name=FINISH_STEP, idempotent=True)
def finish_step(ctx: ToolContext, result: str) -> str:
    """End this step and report its result."""
    return result


@tool(name=FINISH_TASK, idempotent=True)
def finish_task(ctx: ToolContext, result: str) -> str:
    """End the whole task now with this result: the goal is met and no further step is needed."""
    return result


@tool(name=ABORT_TASK, idempotent=True)
def abort_task(ctx: ToolContext, reason: str) -> str:
    """Abort the whole task as impossible, with the reason a person will read."""
    return reason
