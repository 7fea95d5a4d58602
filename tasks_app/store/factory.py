"""Which store class serves a database: the one place the store looks at the connection's dialect."""

from __future__ import annotations

from django.db import connections

from tasks_app.store.django import DjangoStore
from tasks_app.store.postgres import PostgresStore

# A dialect without an entry gets DjangoStore's ORM path (SQLite, the embedded default).
_STORE_BY_VENDOR: dict[str, type[DjangoStore]] = {"postgresql": PostgresStore}


def store_class(using: str = "default") -> type[DjangoStore]:
    return _STORE_BY_VENDOR.get(connections[using].vendor, DjangoStore)


_OBSERVED: dict[tuple[type[DjangoStore], type[DjangoStore]], type[DjangoStore]] = {}


def _with_observer(observer: type[DjangoStore], store: type[DjangoStore]) -> type[DjangoStore]:
    """`observer` (a DjangoStore subclass that only wraps methods) over `store`'s dialect methods."""
    if issubclass(store, observer):
        return store
    key = (observer, store)
    if key not in _OBSERVED:  # one class per pair, made once
        _OBSERVED[key] = type(f"{observer.__name__}{store.__name__}", (observer, store), {})
    return _OBSERVED[key]


def store_for(using: str = "default", *, observer: type[DjangoStore] | None = None) -> DjangoStore:
    """The store for a database; `observer` adds its wrapping (tasks_app/observability/instrument.py)."""
    cls = store_class(using)
    return (_with_observer(observer, cls) if observer is not None else cls)(using=using)
