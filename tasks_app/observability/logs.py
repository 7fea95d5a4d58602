"""Log lines that say which tick wrote them: task id, step, lease epoch and worker on every line.

The instrumented runner (instrument.py) sets the context when a tick starts and as its claim
succeeds, and resets it when the tick ends; `ContextFilter` copies it onto every record a handler
emits, whichever module logged it (agents/ included, which knows nothing of this). Context
variables, not thread-locals: each thread and each asyncio task sees its own.

HORIZON_LOG_FORMAT selects `JsonFormatter` (one JSON object a line: the production default, for
log shippers) or `TextFormatter` (the development default).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FIELDS = ("task_id", "step", "epoch", "worker")
_context: ContextVar[dict[str, Any] | None] = ContextVar("horizon_log_context", default=None)


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


def bind(**values: Any) -> None:
    """Add to the current tick's context (a claim learns the epoch and the step after the tick began)."""
    ctx = _context.get()
    if ctx is not None:
        ctx.update({k: v for k, v in values.items() if v is not None})


@contextmanager
def tick_context(**values: Any) -> Iterator[dict[str, Any]]:
    ctx = {k: v for k, v in values.items() if v is not None}
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Put the tick's context on the record (None outside a tick); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, ctx.get(name))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        ctx = _context.get() or {}
        for name in FIELDS:
            line[name] = getattr(record, name, None) if getattr(record, name, None) is not None else ctx.get(name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The plain line, followed by the tick's context when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ctx = _context.get() or {}
        values = {name: getattr(record, name, None) or ctx.get(name) for name in FIELDS}
        parts = [f"{name}={value}" for name, value in values.items() if value is not None]
        return f"{text} [{' '.join(parts)}]" if parts else text


def celery_formatter(log_format: str) -> logging.Formatter | None:
    """The formatter Celery's own handlers should use (None: keep Celery's text format)."""
    return JsonFormatter() if log_format == "json" else None


# Celery tasks that run every few seconds whatever happens: their receipt and success lines would
# fill the worker log (one pair per 5 s sweep). What they change, they log themselves.
ROUTINE_TASKS = frozenset({"horizon.sweep"})
# The worker's loggers for "Task X[id] received" (strategy) and "... succeeded in" (trace).
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


class RoutineTaskFilter(logging.Filter):
    """Drops Celery's INFO lines about a routine task; warnings and errors about it always pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        data = getattr(record, "data", None)  # Celery passes the task's name here (extra={"data": ...})
        return not (isinstance(data, dict) and data.get("name") in ROUTINE_TASKS)


def quiet_routine_tasks() -> None:
    """Install RoutineTaskFilter on the worker's task loggers (once per process)."""
    for name in CELERY_TASK_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, RoutineTaskFilter) for f in target.filters):
            target.addFilter(RoutineTaskFilter())
