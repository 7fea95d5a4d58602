"""Reads of a task's history: its events and checkpoints, a page at a time, by sequence number."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

from tasks_app.models import AgentTask, Checkpoint, Event

M = TypeVar("M", bound=Model)


def _page_after(rows: QuerySet[M], after_seq: int, limit: int) -> tuple[list[M], bool]:
    """Up to `limit` rows after `after_seq`, oldest first, and whether more follow (one row more is read)."""
    page = list(rows.filter(seq__gt=after_seq).order_by("seq")[: limit + 1])
    return page[:limit], len(page) > limit


def event_page_after(*, task: AgentTask, after_seq: int, limit: int) -> tuple[list[Event], bool]:
    """Up to `limit` events after `after_seq`, oldest first, and whether more follow."""
    return _page_after(Event.objects.filter(task=task), after_seq, limit)


def event_list_latest(*, task: AgentTask, limit: int) -> tuple[list[Event], int]:
    """The task's last `limit` events, oldest first, and how many events it has in all."""
    total = Event.objects.filter(task=task).count()
    latest = list(Event.objects.filter(task=task).order_by("-seq")[:limit])
    return latest[::-1], total


def checkpoint_list_after(*, task: AgentTask, after_seq: int) -> list[Checkpoint]:
    """Every checkpoint after `after_seq`, oldest first."""
    return list(Checkpoint.objects.filter(task=task, seq__gt=after_seq).order_by("seq"))


def checkpoint_page_after(*, task: AgentTask, after_seq: int, limit: int) -> tuple[list[Checkpoint], bool]:
    """Up to `limit` checkpoints after `after_seq`, oldest first, and whether more follow."""
    return _page_after(Checkpoint.objects.filter(task=task), after_seq, limit)


def checkpoint_get(*, task: AgentTask, seq: int) -> Checkpoint | None:
    return Checkpoint.objects.filter(task=task, seq=seq).first()
