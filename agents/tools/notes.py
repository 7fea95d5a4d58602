"""Memory tools: facts an agent remembers and recalls later (long-term memory, agents/recall/), and
a search over the task's own event log (its episodic memory, agents/history.py).

`remember` stores a fact in the task's or the profile's long-term memory, embedded for recall by
meaning; a fact with a key is also the task's note under `.notes/<key>` in its durable workspace (a
directory the file tools refuse), as notes were before long-term memory, and `recall(key=...)`
reads it back exactly.
"""

from __future__ import annotations

import re
from typing import Literal

from agents.history import search_events
from agents.recall import LongTermMemory, Scope
from agents.tools.registry import ToolContext, ToolError, tool
from agents.tools.workspace import NOTES_DIR
from agents.types import JSON

MAX_NOTE_CHARS = 10_000
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _path(key: str) -> str:
    if not KEY.match(key):
        raise ToolError("a note key is 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return f"{NOTES_DIR}/{key}"


def _memory(ctx: ToolContext) -> LongTermMemory:
    memory = ctx.store.memory
    if memory is None:
        raise ToolError("long-term memory is not available in this runtime")
    return memory


def _scopes(ctx: ToolContext, scope: str) -> list[Scope]:
    """The task's scope, the profile's (every task run under the same profile), or both."""
    found = []
    if scope in ("task", "all"):
        found.append(Scope("task", ctx.task_id))
    if scope in ("profile", "all"):
        found.append(Scope("profile", ctx.store.get_task(ctx.task_id).profile))
    return found


# Not transactional: the embedding may be an HTTP call, which must not run inside the journal's
# transaction (it holds the task row). Idempotent instead: every write is an upsert on a natural key
# (the note's key, or the call's journal key), so a call repeated after a crash adds nothing.
@tool(idempotent=True, risk="write")
def remember(
    ctx: ToolContext,
    text: str,
    key: str | None = None,
    scope: Literal["task", "profile"] = "task",
    metadata: dict[str, JSON] | None = None,
) -> str:
    """Remember a fact for later (long-term memory, recalled by meaning). scope "task": this task only;
    "profile": every later task of the same agent profile. With a key, it replaces the earlier fact under
    that key and can also be recalled by the key."""
    if len(text) > MAX_NOTE_CHARS:
        raise ToolError(f"the note is {len(text)} characters; the limit is {MAX_NOTE_CHARS}")
    if key is not None:
        path = _path(key)
        if scope == "task":
            # Also the task's note file, as before long-term memory existed (recall by key reads it).
            ctx.store.workspace_write(ctx.task_id, path, text)
    memory = _memory(ctx)
    try:
        (target,) = _scopes(ctx, scope)
        memory.remember(target, text, key=key or "", metadata=dict(metadata or {}), source_key=ctx.idempotency_key)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return f"remembered {key}" if key else f"remembered ({scope} memory)"


@tool(idempotent=True, risk="read")
def recall(
    ctx: ToolContext,
    query: str | None = None,
    key: str | None = None,
    scope: Literal["task", "profile", "all"] = "all",
    limit: int = 5,
) -> str | list[str] | list[dict[str, JSON]]:
    """Recall from long-term memory. With a query: the facts closest in meaning, best first, with their
    similarity scores. With a key: the fact remembered under it. With neither: the keys remembered."""
    if query is not None and key is not None:
        raise ToolError("give a query or a key, not both")
    scopes = _scopes(ctx, scope)
    if key is not None:
        text = ctx.store.workspace_read(ctx.task_id, _path(key)) if scope in ("task", "all") else None
        memory = ctx.store.memory
        if text is None and memory is not None:
            for target in scopes:
                found = memory.backend.get(target, key)
                if found is not None:
                    return found.text
        if text is None:
            raise ToolError(f"no note {key!r}")
        return str(text)
    if query is None:
        prefix = NOTES_DIR + "/"
        keys = (
            {p[len(prefix) :] for p in ctx.store.workspace_list(ctx.task_id) if p.startswith(prefix)}
            if scope != "profile"
            else set()
        )
        memory = ctx.store.memory
        if memory is not None:
            for target in scopes:
                keys.update(memory.backend.keys(target))
        return sorted(keys)
    try:
        return [hit.to_json() for hit in _memory(ctx).recall(scopes, query, limit=limit)]
    except ValueError as exc:
        raise ToolError(str(exc)) from None


@tool(idempotent=True, risk="read")
def search_history(ctx: ToolContext, query: str, limit: int = 5) -> list[dict[str, object]]:
    """Search this task's history (its event log: plans, step results, signals, decisions) for a few words."""
    try:
        return [hit.to_json() for hit in search_events(ctx.store.events(ctx.task_id), query, limit=limit)]
    except ValueError as exc:
        raise ToolError(str(exc)) from None
