"""The state names as Literal types, in a module of their own so that the records (agents/records.py)
can be typed with them: agents/status.py, which raises agents.errors.TransitionError, would close a
cycle through agents/errors.py."""

from __future__ import annotations

from typing import Literal

TaskStatusName = Literal["pending", "running", "waiting", "requires_human", "paused", "completed", "failed", "cancelled"]
StepStatusName = Literal["pending", "running", "completed", "failed"]
JournalStatusName = Literal["started", "completed"]
ApprovalStatusName = Literal["pending", "approved", "rejected", "stale"]
