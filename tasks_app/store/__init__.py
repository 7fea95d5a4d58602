"""The Django store: agents.store.Store on the ORM (DjangoStore) and its PostgreSQL dialect
(PostgresStore); store_for picks one for a database."""

from tasks_app.store.django import DjangoStore
from tasks_app.store.factory import store_for
from tasks_app.store.postgres import PostgresStore
from tasks_app.store.reads import due_q
from tasks_app.store.records import approval_record, chain_events, event_row, stamped, task_pk
from tasks_app.store.sql import PRELOAD_EVENTS_MAX

__all__ = [
    "PRELOAD_EVENTS_MAX",
    "DjangoStore",
    "PostgresStore",
    "approval_record",
    "chain_events",
    "due_q",
    "event_row",
    "stamped",
    "store_for",
    "task_pk",
]
