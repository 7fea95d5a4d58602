"""The branches of a task: the task, its forks, their forks, ... with outcome and cost side by side.

Used by `manage.py compare_branches` and the admin's Branches page. A fork is found by its
`task.forked` event (payload `source`), so no column is needed; each level of the tree is one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents import events as ev
from tasks_app.models import AgentTask, Event
from tasks_app.selectors.tasks import task_get

SUMMARY_CHARS = 120
MAX_BRANCHES = 500


@dataclass(frozen=True)
class Branch:
    task_id: str
    depth: int  # 0: the task asked about; 1: its forks; 2: their forks...
    source_id: str | None  # the task it was forked from (None for the root)
    checkpoint_seq: int | None  # the source's checkpoint it was forked from
    profile: str
    model: str
    status: str
    reason: str
    summary: str  # the result's output, shortened
    steps_completed: int
    steps_run: int
    tokens: int
    cost_usd: float
    created_at: Any

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        return data


def _summary(result: Any) -> str:
    text = result.get("output", "") if isinstance(result, dict) else ("" if result is None else str(result))
    text = " ".join(str(text).split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _branch(task: AgentTask, depth: int, source: str | None, seq: int | None) -> Branch:
    config = task.profile_config or {}
    steps_run = task.checkpoints.order_by("-seq").values_list("state", flat=True).first() or {}
    return Branch(
        task_id=str(task.pk),
        depth=depth,
        source_id=source,
        checkpoint_seq=seq,
        profile=task.profile,
        model=str(config.get("model") or ""),
        status=task.status,
        reason=task.status_reason,
        summary=_summary(task.result),
        steps_completed=task.steps_completed,
        steps_run=int(steps_run.get("steps_run", 0)),
        tokens=task.prompt_tokens + task.completion_tokens,
        cost_usd=task.cost_usd,
        created_at=task.created_at,
    )


def task_branches(*, task_id: str) -> list[Branch]:
    """The task and every fork below it, depth first, in the order they were created."""
    root = task_get(task_id=task_id)
    branches: list[Branch] = []

    def visit(task: AgentTask, depth: int, source: str | None, seq: int | None) -> None:
        branches.append(_branch(task, depth, source, seq))
        if len(branches) >= MAX_BRANCHES:
            return
        # A fork's log starts with a copy of its source's, task.forked events of earlier forks
        # included: a task's own source is named by its latest task.forked event.
        named = Event.objects.filter(type=ev.TASK_FORKED, payload__source=str(task.pk)).values_list("task_id", flat=True)
        latest = Event.objects.filter(type=ev.TASK_FORKED, task_id__in=list(named)).order_by("task_id", "-seq")
        children: dict[str, Any] = {}
        seen: set[str] = set()
        for fork_id, payload in latest.values_list("task_id", "payload"):
            if str(fork_id) not in seen:
                seen.add(str(fork_id))
                if payload["source"] == str(task.pk):
                    children[str(fork_id)] = payload
        for fork in AgentTask.objects.filter(pk__in=list(children)).order_by("created_at"):
            visit(fork, depth + 1, str(task.pk), int(children[str(fork.pk)]["checkpoint_seq"]))

    visit(root, 0, None, None)
    return branches


def forked_tasks(*, limit: int = 200) -> list[AgentTask]:
    """Tasks something was forked from (the latest forked first): where a Branches page has something to compare."""
    sources = Event.objects.filter(type=ev.TASK_FORKED).values_list("payload__source", flat=True).distinct()
    return list(AgentTask.objects.filter(pk__in=[s for s in sources if s]).order_by("-updated_at")[:limit])
