"""What one sweep did (tasks_app/services/sweep.py): a value the metrics record without importing the sweep."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SweepReport:
    skipped: bool = False  # another sweep held the lock
    stalled: list[str] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    deadline_failed: list[str] = field(default_factory=list)
    step_deadline_escalated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.__dict__.items() if isinstance(v, list)}
