"""Notes and history: facts an agent remembers in one step and recalls in a later one, and a search
over the task's own event log (its episodic memory, agents/history.py).

Notes live in the task's durable workspace under `.notes/`, a directory the file tools refuse, so
they survive crashes and resumes like files do and are written exactly once (transactional).
"""

from __future__ import annotations

import re

from agents.history import search_events
from agents.tools.registry import ToolContext, ToolError, tool
from agents.tools.workspace import NOTES_DIR

MAX_NOTE_CHARS = 10_000
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _path(key: str) -> str:
    if not KEY.match(key):
        raise ToolError("a note key is 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return f"{NOTES_DIR}/{key}"


@tool(idempotent=True, transactional=True, risk="write")
def remember(ctx: ToolContext, key: str, text: str) -> str:
    """Remember a note under a key for later steps of this task (replaces an earlier note with that key)."""
    if len(text) > MAX_NOTE_CHARS:
        raise ToolError(f"the note is {len(text)} characters; the limit is {MAX_NOTE_CHARS}")
    ctx.store.workspace_write(ctx.task_id, _path(key), text)
    return f"remembered {key}"


@tool(idempotent=True, risk="read")
def recall(ctx: ToolContext, key: str | None = None) -> str | list[str]:
    """Recall the note under a key; without a key, list the keys of every note."""
    if key is None:
        prefix = NOTES_DIR + "/"
        return [p[len(prefix) :] for p in ctx.store.workspace_list(ctx.task_id) if p.startswith(prefix)]
    text = ctx.store.workspace_read(ctx.task_id, _path(key))
    if text is None:
        raise ToolError(f"no note {key!r}")
    return str(text)


@tool(idempotent=True, risk="read")
def search_history(ctx: ToolContext, query: str, limit: int = 5) -> list[dict[str, object]]:
    """Search this task's history (its event log: plans, step results, signals, decisions) for a few words."""
    try:
        return [hit.to_json() for hit in search_events(ctx.store.events(ctx.task_id), query, limit=limit)]
    except ValueError as exc:
        raise ToolError(str(exc)) from None
