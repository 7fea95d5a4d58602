"""The wait tools the model can call. The step executor resolves them (agents/waits.py): their
functions only give the registry their names, descriptions and argument schemas."""

from __future__ import annotations

from typing import Literal

from agents.tools.registry import ToolContext, ToolError, tool

SLEEP_FOR, SLEEP_UNTIL, WAIT_FOR_SIGNAL = "sleep_for", "sleep_until", "wait_for_signal"
WAIT_TOOLS = frozenset({SLEEP_FOR, SLEEP_UNTIL, WAIT_FOR_SIGNAL})


def _handled_by_executor(name: str) -> ToolError:
    # Never reached: the executor resolves wait tools itself (resolve_wait) because they need the
    # journal's two phases; the functions exist so that the registry derives and offers their schemas.
    return ToolError(f"{name} is resolved by the step executor")


@tool(name=SLEEP_FOR, idempotent=True)
def sleep_for(ctx: ToolContext, seconds: float) -> str:
    """Pause this task for a number of seconds (up to a year). Nothing runs meanwhile; it resumes by itself."""
    raise _handled_by_executor(SLEEP_FOR)


@tool(name=SLEEP_UNTIL, idempotent=True)
def sleep_until(ctx: ToolContext, when: str) -> str:
    """Pause this task until a time (ISO 8601 with a timezone, e.g. 2026-12-01T09:00:00+00:00)."""
    raise _handled_by_executor(SLEEP_UNTIL)


@tool(name=WAIT_FOR_SIGNAL, idempotent=True)
def wait_for_signal(
    ctx: ToolContext, names: list[str], mode: Literal["any", "all"] = "any", timeout_seconds: float | None = None
) -> str:
    """Wait for signals sent to this task: any one of the names, or all of them. Without a timeout it
    waits until they arrive; on timeout the result says so and the step goes on."""
    raise _handled_by_executor(WAIT_FOR_SIGNAL)
