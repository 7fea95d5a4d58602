"""Secret redaction: API keys and other configured secrets never reach prompts, events, checkpoints,
journals, task arguments or logs.

Two kinds of secret are recognised:
- known values, registered once at start-up from the settings (OPENAI_API_KEY, the Django secret
  key, passwords in the database and broker URLs, HORIZON_SECRET_VALUES): each is replaced wherever
  it appears, whatever it looks like;
- shapes that are secrets whoever configured them: OpenAI-style keys (`sk-...`), `Bearer <token>`
  credentials, a few well-known token prefixes.

Redaction happens at the boundaries where outside text enters the harness: a task's goal and
context when it is created, every event payload when it is built (agents.events.new_event), every
model answer and tool result before it is journaled or shown to the model (agents.journal), and
every log record (RedactingFilter, installed in the LOGGING setting and on Celery's handlers).
Replacing at the boundary, before anything is recorded, keeps a replay identical to the first run.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
# Values shorter than this are not registered: redacting "admin" or "postgres" everywhere would
# mangle ordinary text, and such values are not secrets worth the name.
MIN_SECRET_CHARS = 8

PATTERNS: tuple[str, ...] = (
    r"\bsk-[A-Za-z0-9_\-]{16,}",  # OpenAI (sk-..., sk-proj-...) and look-alikes
    r"(?i:\bBearer\s+[A-Za-z0-9\-._~+/]{8,}=*)",  # an Authorization header's credential
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key ids
)
# What each shape starts with (lower case): text holding none of these and no known value is
# returned untouched after a few substring searches, without running the regular expression.
MARKERS = ("sk-", "bearer", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "akia")


class Redactor:
    """Known secret values plus PATTERNS; `redact` walks JSON-like values and returns a redacted copy."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] = re.compile("|".join(PATTERNS))
        self.register(values)

    def register(self, values: Iterable[str]) -> None:
        fresh = {v for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_CHARS}
        with self._lock:
            self._values = self._values | frozenset(v.strip() for v in fresh)
            # One pass over the text: the known values, longest first (a secret containing another is
            # replaced whole), then the shapes. Every string of every event goes through it.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join([*(re.escape(v) for v in ordered), *PATTERNS]))

    @property
    def values(self) -> frozenset[str]:
        return self._values

    def redact_text(self, text: str) -> str:
        if len(text) < MIN_SECRET_CHARS:
            return text  # too short to hold a registered value or any of the shapes
        lowered = text.lower()
        if not any(m in lowered for m in MARKERS) and not any(v in text for v in self._values):
            return text
        return self._pattern.sub(REDACTED, text)

    def redact(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {self.redact(k) if isinstance(k, str) else k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact(v) for v in value)
        return value

    def contains_secret(self, value: Any) -> bool:
        return bool(self.redact(value) != value)


# The process's redactor. Settings register their secrets into it at start-up (through the logging
# filter's construction, which Django runs before anything else is imported).
redactor = Redactor()


def register_secret_values(values: Iterable[str]) -> None:
    redactor.register(values)


def redact(value: Any) -> Any:
    return redactor.redact(value)


def redact_text(text: str) -> str:
    return redactor.redact_text(text)


def contains_secret(value: Any) -> bool:
    return redactor.contains_secret(value)


class RedactingFilter(logging.Filter):
    """A logging filter for handlers: formats the record's message and exception now and redacts them.

    Installed on handlers (a filter on a logger does not see records propagated from child
    loggers). `secrets` (from the LOGGING setting) are registered into the process's redactor.
    """

    def __init__(self, name: str = "", secrets: Iterable[str] = ()) -> None:
        super().__init__(name)
        register_secret_values(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            # The handler's formatter uses exc_text when it is set: format the traceback here so
            # that a secret inside an exception message is redacted too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_filter(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on every handler of `logger` (the root logger by default) that lacks one.

    For handlers configured outside the LOGGING setting (Celery's worker installs its own)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
