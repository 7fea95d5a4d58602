"""Compensation (the saga pattern): undo a task's recorded side effects in reverse order.

A tool declares its undo (`@tool(undo=...)`); the journal then keeps each completed call's
arguments with its output. When a task is aborted, or a step fails for good under a profile with
`compensate_on_failure`, the runner walks the task's journal backwards and runs the undo of every
completed, successful call, each under its own journal key (`<call key>/undo`): an undo is
journaled and runs once, even if the worker dies halfway through the compensation and another
one starts it again. A call whose outcome was never recorded cannot be undone safely; it is
reported for a person instead.
"""

from __future__ import annotations

from agents.journal import Journal
from agents.json_value import as_object
from agents.status import JournalStatus
from agents.tools.registry import Tool, ToolContext, ToolRegistry
from agents.types import JSON, JournalEntry, ToolCall

UNDO_SUFFIX = "/undo"


def _undo_tool(tool: Tool, recorded: dict[str, JSON]) -> Tool:
    assert tool.undo is not None
    undo = tool.undo
    arguments = dict(as_object(recorded.get("arguments") or {}))
    output = recorded.get("output")
    return Tool(
        name=f"{tool.name}.undo",
        description=f"undo {tool.name}",
        parameters={"type": "object", "properties": {}, "required": [], "additionalProperties": False},
        fn=lambda ctx: undo(ctx, arguments, output),
        idempotent=tool.idempotent,
        transactional=tool.transactional,
        risk=tool.risk,
    )


def compensate(journal: Journal, tools: ToolRegistry, task_id: str) -> dict[str, JSON]:
    """Run the undos; returns what was undone, what failed and what could not be known."""
    undone: list[JSON] = []
    failed: list[JSON] = []
    unknown: list[JSON] = []
    entries: list[JournalEntry] = journal.store.journal_entries(task_id)
    for entry in reversed(entries):
        tool = tools.get(entry.name)
        if entry.kind != "tool" or entry.key.endswith(UNDO_SUFFIX) or tool is None or tool.undo is None:
            continue
        if entry.status != JournalStatus.COMPLETED:
            unknown.append(entry.key)
            continue
        recorded = dict(as_object(entry.result or {}))
        if not recorded.get("ok"):
            continue  # the call failed: nothing to undo
        key = entry.key + UNDO_SUFFIX
        undo = _undo_tool(tool, recorded)
        ctx = ToolContext(task_id=task_id, step_index=-1, idempotency_key=key, store=journal.store)
        result = journal.tool_call(key, undo, ToolCall(name=undo.name, arguments={}), ctx)
        if result.get("ok"):
            undone.append(entry.key)
        else:
            failed.append({"key": entry.key, "error": result.get("error")})
    return {"undone": undone, "failed": failed, "unknown": unknown}
