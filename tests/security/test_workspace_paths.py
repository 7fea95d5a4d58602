"""Workspace paths are normalised and confined: every way out is refused with a clear tool error."""

from __future__ import annotations

import pytest

from agents.inmemory_store import InMemoryStore
from agents.tools.registry import ToolContext, ToolError
from agents.tools.workspace import confine, read_file, write_file
from agents.types import NewTask


@pytest.fixture
def ctx() -> ToolContext:
    store = InMemoryStore()
    task_id = store.create_task(NewTask(goal="g"))
    return ToolContext(task_id=task_id, step_index=0, idempotency_key="k", store=store)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("../secret.txt", "leaves the workspace"),
        ("a/../../secret.txt", "leaves the workspace"),
        ("..", "leaves the workspace"),
        ("./..", "leaves the workspace"),
        ("/etc/passwd", "workspace paths are relative"),
        ("//etc/passwd", "workspace paths are relative"),
        ("%2e%2e/secret.txt", "invalid workspace path"),
        ("%2E%2E%2Fsecret.txt", "invalid workspace path"),
        ("a/%2e%2e/%2e%2e/secret.txt", "invalid workspace path"),
        ("notes.txt\x00.png", "invalid workspace path"),
        ("..\\secret.txt", "invalid workspace path"),
        ("C:\\Windows\\win.ini", "invalid workspace path"),
        ("a/\x1b[2Jb.txt", "invalid workspace path"),
        ("", "invalid workspace path"),
        (".", "leaves the workspace"),
        (".notes/n1", "reserved for notes"),
    ],
)
def test_every_way_out_is_refused_by_both_file_tools(ctx: ToolContext, path: str, error: str) -> None:
    with pytest.raises(ToolError, match=error):
        write_file(ctx, path=path, content="x")
    with pytest.raises(ToolError, match=error):
        read_file(ctx, path=path)
    assert ctx.store.workspace_list(ctx.task_id) == []


@pytest.mark.parametrize(("path", "normal"), [("a/./b.txt", "a/b.txt"), ("a//b.txt", "a/b.txt"), ("a/c/../b.txt", "a/b.txt")])
def test_harmless_spellings_are_normalised_to_one_name(path: str, normal: str) -> None:
    assert confine(path) == normal
