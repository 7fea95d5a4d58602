"""The example in docs/library.md runs as written: with the in-memory store, and again with the Django store on PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agents.status import TaskStatus
from tasks_app.store import PostgresStore

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"
IN_MEMORY = "store = InMemoryStore()"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def _example() -> str:
    [example] = [b for b in _blocks() if "LongHorizonRunner(" in b]
    assert IN_MEMORY in example  # the one line the Django variant replaces
    return example


def _django_variant() -> str:
    """The example with the store line the doc gives for Django."""
    [django] = [b for b in _blocks() if "store_for()" in b]
    line = next(x for x in django.splitlines() if x.startswith("store = "))
    imports = [x for x in django.splitlines() if x.startswith("from ")]
    return "\n".join(imports) + "\n" + _example().replace(IN_MEMORY, line)


def test_the_example_runs_with_the_in_memory_store(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    exec(compile(_example(), str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own code
    result = namespace["result"]
    assert result.status == "completed" and result.done  # type: ignore[attr-defined]
    printed = capsys.readouterr().out
    assert printed.startswith("completed 7 steps") and "step 7: Write the welcome note (completed, 1 attempt)" in printed
    # The store holds the whole history: one checkpoint per tick, planning included.
    store = namespace["store"]
    assert [c.seq for c in store.checkpoints(result.store_task_id)] == list(range(1, 9))  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_the_example_runs_again_with_the_django_store_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    exec(compile(_django_variant(), str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own code
    assert isinstance(namespace["store"], PostgresStore)  # what the workers use on PostgreSQL
    result = namespace["result"]
    assert capsys.readouterr().out.startswith("completed 7 steps")
    # The rows are there for the rest of the Django side: the task, its steps and checkpoints.
    from tasks_app.models import AgentTask

    row = AgentTask.objects.get(pk=result.store_task_id)  # type: ignore[attr-defined]
    assert row.status == TaskStatus.COMPLETED and row.deadline is not None
    assert row.steps.filter(status="completed").count() == 7
    assert result.checkpoint.seq == row.checkpoint_seq  # type: ignore[attr-defined]
