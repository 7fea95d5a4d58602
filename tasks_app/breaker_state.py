"""The circuit breakers' shared state in the database (agents.llm.breaker.BreakerState), one row per endpoint.

Every worker consults the same row, so one process's failures open the breaker for the fleet, and
operators see it in the admin. Most calls change nothing (a closed breaker stays closed), so the
record is first read without a lock; only a change takes the row lock and recomputes under it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from agents.llm.breaker import BreakerRecord
from tasks_app.db_pool import borrows
from tasks_app.models import EndpointBreaker


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _datetime(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _record(row: EndpointBreaker | None) -> BreakerRecord:
    if row is None:
        return BreakerRecord()
    return BreakerRecord(
        state=row.state, failures=row.failures, opened_at=_seconds(row.opened_at), trial_started_at=_seconds(row.trial_started_at)
    )


class DjangoBreakerState:
    def __init__(self, using: str = "default") -> None:
        self.db = using

    def _rows(self) -> QuerySet[EndpointBreaker]:
        return EndpointBreaker.objects.using(self.db)

    # Asked just before and after every model call: the connection goes back before the call waits.
    @borrows
    def get(self, key: str) -> BreakerRecord:
        return _record(self._rows().filter(key=key).first())

    @borrows
    def update(self, key: str, change: Callable[[BreakerRecord], BreakerRecord]) -> BreakerRecord:
        current = self.get(key)
        if change(current) == current:
            return current
        with transaction.atomic(using=self.db):
            row = self._rows().select_for_update().filter(key=key).first()
            if row is None:
                try:
                    with transaction.atomic(using=self.db):
                        row = self._rows().create(key=key)
                except IntegrityError:  # another worker created it first: lock theirs
                    row = self._rows().select_for_update().get(key=key)
            new = change(_record(row))
            row.state = new.state
            row.failures = new.failures
            row.opened_at = _datetime(new.opened_at)
            row.trial_started_at = _datetime(new.trial_started_at)
            row.save(using=self.db)
            return new
