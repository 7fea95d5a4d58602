"""Horizon's tables. PostgreSQL (or SQLite when embedded) is the single source of truth.

Invariants live in constraints, not only in code: events are unique per (task, seq), steps per
(task, index), journal keys are unique, and status columns only hold known values. One module per
concept; every model is re-exported here, so `from tasks_app.models import X` is the way to import one.
"""

from tasks_app.models.api import ApiRateWindow, ApiToken, WebhookDelivery
from tasks_app.models.breakers import EndpointBreaker
from tasks_app.models.control import Approval, Signal
from tasks_app.models.history import Checkpoint, Event, WorkspaceFile
from tasks_app.models.journal import JournalEntry
from tasks_app.models.memory import MemoryItem
from tasks_app.models.schedules import GoalTemplate
from tasks_app.models.tasks import AgentTask, Step

__all__ = [
    "AgentTask",
    "ApiRateWindow",
    "ApiToken",
    "Approval",
    "Checkpoint",
    "EndpointBreaker",
    "Event",
    "GoalTemplate",
    "JournalEntry",
    "MemoryItem",
    "Signal",
    "Step",
    "WebhookDelivery",
    "WorkspaceFile",
]
