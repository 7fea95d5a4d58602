"""Replay: rebuild a task's state from its whole event log and compare it with its latest checkpoint.

A checkpoint is a cache of `rebuild(None, events[1..event_seq])`; the runner trusts it on resume.
Replaying from the first event checks that trust: a difference means the reducer changed its mind
about old events (a missing upcast) or a checkpoint was written from a state the log does not explain.
Read-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from agents.events import EventSchemaError, TaskState, rebuild
from tasks_app.store import store_for, task_pk


@dataclass(frozen=True)
class ReplayReport:
    task_id: str
    events: int  # events in the log
    checkpoint_seq: int | None  # None: the task has no checkpoint yet, so there is nothing to compare
    checkpoint_event_seq: int | None
    # key -> {"checkpoint": value, "replayed": value}, for every key of the state that differs
    differences: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # the state rebuilt from every event
    error: str = ""  # the log cannot be replayed (a gap, an unknown event type or schema)

    @property
    def matches(self) -> bool:
        return not self.error and not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "events": self.events,
            "checkpoint": {"seq": self.checkpoint_seq, "event_seq": self.checkpoint_event_seq}
            if self.checkpoint_seq is not None
            else None,
            "matches": self.matches,
            "differences": self.differences,
            "error": self.error,
            "state": self.state,
        }


def _plain(value: Any) -> Any:
    """The value as the checkpoint's JSON column holds it (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, default=str))


def task_replay(*, task_id: str) -> ReplayReport:
    """Raises TaskNotFound for an unknown id."""
    store = store_for()
    task_id = str(task_pk(task_id))
    store.get_task(task_id)  # raises TaskNotFound
    events = store.events(task_id)
    checkpoint = store.latest_checkpoint(task_id)
    base = ReplayReport(
        task_id=task_id,
        events=len(events),
        checkpoint_seq=checkpoint.seq if checkpoint else None,
        checkpoint_event_seq=checkpoint.event_seq if checkpoint else None,
    )
    try:
        full = rebuild(None, events)
        through = rebuild(None, [e for e in events if e.seq <= checkpoint.event_seq]) if checkpoint else TaskState()
    except EventSchemaError as exc:
        return replace(base, error=str(exc))
    differences: dict[str, dict[str, Any]] = {}
    if checkpoint is not None:
        saved = _plain(checkpoint.state)
        replayed = _plain(through.to_json())
        for key in sorted(set(saved) | set(replayed)):
            if saved.get(key) != replayed.get(key):
                differences[key] = {"checkpoint": saved.get(key), "replayed": replayed.get(key)}
    return replace(base, differences=differences, state=_plain(full.to_json()))
