"""The store's reads: what a tick, an operator or a page reads, fenced by nothing."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connections
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from agents.errors import TaskNotFound
from agents.status import TaskStatus
from agents.types import ApprovalRecord, CheckpointRecord, EventRecord, JournalEntry, SignalRecord, StepRecord, TaskRecord
from tasks_app.models import AgentTask, Checkpoint, Event, Step, WorkspaceFile
from tasks_app.models import Approval as ApprovalRow
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.models import Signal as SignalRow
from tasks_app.store.records import CHECKPOINTS, EVENTS, JOURNAL, SIGNALS, STEPS, TASKS, approval_record, task_pk

if TYPE_CHECKING:
    from agents.recall import LongTermMemory

CLAIMABLE = sorted(TaskStatus.CLAIMABLE)
_M = TypeVar("_M", bound=Model)


def due_q(now: datetime) -> Q:
    """What a claim may take at `now`: claimable, due, and no live lease (the claim's WHERE, as a Q)."""
    return Q(status__in=CLAIMABLE, next_run_at__lte=now) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))


class StoreReads:
    def __init__(self, using: str = "default") -> None:
        self.db = using

    @property
    def memory(self) -> LongTermMemory:
        """Long-term memory (the remember/recall tools) on this database; see tasks_app/recall_store.py."""
        from tasks_app.recall_store import memory_for  # imported late: it builds the embedder from settings

        return memory_for(self.db)

    def _tasks(self) -> QuerySet[AgentTask]:
        return AgentTask.objects.using(self.db)

    def _get(self, task_id: str) -> AgentTask:
        try:
            return self._tasks().get(pk=task_pk(task_id))
        except AgentTask.DoesNotExist:
            raise TaskNotFound(task_id) from None

    def _first(self, model: type[_M], where: str, params: list[object], order: str = "") -> _M | None:
        """One row by a fixed query. The three reads of every tick use this instead of a QuerySet:
        on a no-op tick, building the ORM query cost more than the round trip itself."""
        conn = connections[self.db]
        sql = f"SELECT * FROM {conn.ops.quote_name(model._meta.db_table)} WHERE {where} {order} LIMIT 1"
        rows = list(model._default_manager.using(self.db).raw(sql, params))
        return rows[0] if rows else None

    def _task_param(self, task_id: str) -> Any:
        return AgentTask._meta.pk.get_db_prep_value(task_pk(task_id), connections[self.db])

    def get_task(self, task_id: str) -> TaskRecord:
        return TASKS.from_row(self._get(task_id))

    def lease_expires_at(self, task_id: str) -> datetime | None:
        return self._tasks().filter(pk=task_pk(task_id)).values_list("lease_expires_at", flat=True).first()

    def steps(self, task_id: str) -> list[StepRecord]:
        self._get(task_id)
        return [STEPS.from_row(s) for s in Step.objects.using(self.db).filter(task_id=task_id).order_by("index")]  # type: ignore[misc]

    def step(self, task_id: str, index: int) -> StepRecord:
        row = self._first(Step, 'task_id = %s AND "index" = %s', [self._task_param(task_id), index])
        if row is None:
            raise KeyError(f"task {task_id} has no step {index}")
        return STEPS.from_row(row)

    def events(self, task_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[EventRecord]:
        qs = Event.objects.using(self.db).filter(task_id=task_id, seq__gt=after_seq).order_by("seq")  # type: ignore[misc]
        return [EVENTS.from_row(e) for e in (qs[:limit] if limit is not None else qs)]

    def event(self, task_id: str, seq: int) -> EventRecord:
        return EVENTS.from_row(Event.objects.using(self.db).get(task_id=task_id, seq=seq))  # type: ignore[misc]

    def checkpoints(self, task_id: str) -> list[CheckpointRecord]:
        return [CHECKPOINTS.from_row(c) for c in Checkpoint.objects.using(self.db).filter(task_id=task_id).order_by("seq")]  # type: ignore[misc]

    def latest_checkpoint(self, task_id: str) -> CheckpointRecord | None:
        c = self._first(Checkpoint, "task_id = %s", [self._task_param(task_id)], order="ORDER BY seq DESC")
        return CHECKPOINTS.from_row(c) if c else None

    def due_tasks(self, *, limit: int) -> list[str]:
        ids = self._tasks().filter(due_q(timezone.now())).order_by("next_run_at").values_list("id", flat=True)[:limit]
        return [str(i) for i in ids]

    def leased_tasks(self) -> list[tuple[str, str]]:
        rows = self._tasks().filter(lease_owner__isnull=False).values_list("id", "lease_owner")
        return [(str(i), str(o)) for i, o in rows]

    def children(self, task_id: str) -> list[str]:
        return [str(i) for i in self._tasks().filter(parent_id=task_pk(task_id)).values_list("id", flat=True)]

    def journal_get(self, key: str) -> JournalEntry | None:
        row = self._first(JournalRow, f"{connections[self.db].ops.quote_name('key')} = %s", [key])
        return JOURNAL.from_row(row) if row else None

    def journal_entries(self, task_id: str) -> list[JournalEntry]:
        rows = JournalRow.objects.using(self.db).filter(task_id=task_pk(task_id)).order_by("id")
        return [JOURNAL.from_row(r) for r in rows]

    def signals_pending(self, task_id: str, names: list[str]) -> list[SignalRecord]:
        rows = SignalRow.objects.using(self.db).filter(task_id=task_pk(task_id), name__in=names, consumed_key__isnull=True)
        return [SIGNALS.from_row(r) for r in rows.order_by("id")]

    def approval_get(self, task_id: str, key: str) -> ApprovalRecord | None:
        row = ApprovalRow.objects.using(self.db).filter(task_id=task_pk(task_id), key=key).select_related("decided_by").first()
        return approval_record(row) if row else None

    def workspace_read(self, task_id: str, path: str) -> str | None:
        row = WorkspaceFile.objects.using(self.db).filter(task_id=task_id, path=path).first()  # type: ignore[misc]
        return row.content if row else None

    def workspace_list(self, task_id: str) -> list[str]:
        return list(WorkspaceFile.objects.using(self.db).filter(task_id=task_id).order_by("path").values_list("path", flat=True))  # type: ignore[misc]
