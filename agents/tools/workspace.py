"""Workspace tools: files kept durably per task through the store, paths confined to the workspace.

The writes are transactional tools: the store runs them inside the journal's transaction, so a
file write and the record of it commit together and a resumed step never writes twice.
"""

from __future__ import annotations

import posixpath

from agents.tools.registry import ToolContext, ToolError, tool

MAX_FILE_CHARS = 1_000_000
MAX_PATH_CHARS = 500  # the store's path column (WorkspaceFile.path)
NOTES_DIR = ".notes"  # the notes tools keep their entries here; file tools cannot reach it


def confine(path: str) -> str:
    """Normalise a workspace path, refusing anything that could point outside the workspace."""
    if len(path) > MAX_PATH_CHARS:
        raise ToolError(f"the workspace path is {len(path)} characters; the limit is {MAX_PATH_CHARS}")
    # Refused outright rather than decoded: a backslash, a percent-escape (%2e%2e) or a control
    # character has no business in a workspace name, and decoding is how traversals sneak through.
    if not path or "\\" in path or "%" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ToolError(f"invalid workspace path {path!r}: no backslashes, percent-escapes or control characters")
    if path.startswith("/") or posixpath.isabs(path):
        raise ToolError(f"workspace paths are relative; got {path!r}")
    normal = posixpath.normpath(path)
    if normal == "." or normal.startswith("..") or "/../" in f"/{normal}/":
        raise ToolError(f"path {path!r} leaves the workspace")
    if normal == NOTES_DIR or normal.startswith(NOTES_DIR + "/"):
        raise ToolError(f"{NOTES_DIR}/ is reserved for notes: use remember and recall")
    return normal


@tool(idempotent=True, transactional=True, risk="write")
def write_file(ctx: ToolContext, path: str, content: str) -> str:
    """Write a text file in the task's workspace, replacing any earlier version."""
    if len(content) > MAX_FILE_CHARS:
        raise ToolError(f"content is {len(content)} characters; the limit is {MAX_FILE_CHARS}")
    normal = confine(path)
    ctx.store.workspace_write(ctx.task_id, normal, content)
    return f"wrote {len(content)} characters to {normal}"


@tool(idempotent=True, risk="read")
def read_file(ctx: ToolContext, path: str) -> str:
    """Read a text file from the task's workspace."""
    normal = confine(path)
    content = ctx.store.workspace_read(ctx.task_id, normal)
    if content is None:
        raise ToolError(f"no file {normal!r} in the workspace")
    return str(content)


@tool(idempotent=True, risk="read")
def list_files(ctx: ToolContext) -> list[str]:
    """List the files in the task's workspace."""
    return [p for p in ctx.store.workspace_list(ctx.task_id) if not p.startswith(NOTES_DIR + "/")]
