"""Audit integrity: verify the events' hash chain; purge a whole task (an operator's retention decision).

The chain itself is written by the stores (agents/audit.py says how). Verification recomputes it
from the stored rows, so a row changed by someone who bypassed the append-only trigger (a superuser
with session_replication_role = replica, a restored dump, a disk edit) is found, at its seq. With
HORIZON_AUDIT_KEY set the chain is an HMAC whose key is not in the database: a rewrite whose hashes
were recomputed without the key is found too. Each report says which key versions verified it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, transaction

from agents.audit import key_versions, verify_chain
from agents.errors import InvalidInput, TaskNotFound
from tasks_app.models import AgentTask
from tasks_app.selectors.tasks import task_get
from tasks_app.store import store_for, task_pk


@dataclass(frozen=True)
class ChainReport:
    task_id: str
    events: int
    broken_seq: int | None = None  # the first event that does not verify; None: the chain holds
    reason: str = ""
    key_versions: tuple[int, ...] = ()  # the HMAC key versions of its events, in order (0: unkeyed SHA-256)

    @property
    def ok(self) -> bool:
        return self.broken_seq is None

    def to_json(self) -> dict[str, object]:
        return {
            "task_id": self.task_id,
            "events": self.events,
            "ok": self.ok,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
            "key_versions": list(self.key_versions),
        }


def _verify_one(task: AgentTask, allow_unkeyed: bool | None) -> ChainReport:
    task_id = str(task.pk)
    events = store_for().events(task_id)
    versions = key_versions(events)
    problem = verify_chain(task_id, events, allow_unkeyed=allow_unkeyed)
    if problem is not None:
        return ChainReport(task_id, len(events), problem.seq, problem.reason, versions)
    # The chain holds as far as it goes: the task row says where it must end (a removed tail).
    if len(events) != task.last_event_seq:
        missing = len(events) + 1
        reason = f"the task records {task.last_event_seq} events; {missing} is missing"
        return ChainReport(task_id, len(events), missing, reason, versions)
    if events and events[-1].hash != task.last_event_hash:
        return ChainReport(task_id, len(events), events[-1].seq, "the task row's last_event_hash does not match it", versions)
    return ChainReport(task_id, len(events), key_versions=versions)


def events_verify(*, task_ids: list[str] | None = None, allow_unkeyed: bool | None = None) -> Iterator[ChainReport]:
    """One report per task (every task when `task_ids` is None); TaskNotFound for an unknown id.

    `allow_unkeyed`: accept plain SHA-256 events although a key is configured (logs written before
    it); by default they are accepted only when no key is configured (agents.audit.verify_chain)."""
    if task_ids is None:
        for task in AgentTask.objects.order_by("created_at").iterator():
            yield _verify_one(task, allow_unkeyed)
        return
    tasks = [task_get(task_id=task_id) for task_id in task_ids]  # every id checked before any is verified
    for task in tasks:
        yield _verify_one(task, allow_unkeyed)


def agent_task_purge(*, task_id: str) -> int:
    """Delete a task with its whole history (events, steps, checkpoints, journal). Returns the rows deleted.

    The only way events are ever deleted: on PostgreSQL the append-only trigger lets a DELETE
    through only for the task the transaction names (`horizon.allow_event_delete` = its id), and a
    deferred trigger refuses the commit unless the task row and every one of its events are gone
    (migration 0010_keyed_event_chain): the setting deletes a whole log, never single events.
    """
    with transaction.atomic():
        task = AgentTask.objects.select_for_update().filter(pk=task_pk(task_id)).first()
        if task is None:
            raise TaskNotFound(task_id)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('horizon.allow_event_delete', %s, true)", [str(task.pk)])
        if AgentTask.objects.filter(parent=task).exists():
            raise InvalidInput(f"task {task_id} has sub-tasks: purge them first")
        deleted, _ = task.delete()  # the events go in the same transaction, through the trigger's door
    return deleted
