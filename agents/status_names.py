"""The state names as Literal types, in a module of their own so that the records (agents/records.py)
can be typed with them: agents/status.py, which raises agents.errors.TransitionError, would close a
cycle through agents/errors.py."""

from __future__ import annotations

from typing import Literal

# Alphabetical: the API's schema and its 422 answers list the task states in this order.
TaskStatusName = Literal["cancelled", "completed", "failed", "paused", "pending", "requires_human", "running", "waiting"]
StepStatusName = Literal["pending", "running", "completed", "failed"]
JournalStatusName = Literal["started", "completed"]
ApprovalStatusName = Literal["pending", "approved", "rejected", "stale"]
