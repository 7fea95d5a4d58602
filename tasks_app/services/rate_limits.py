"""A fixed-window rate limit counted in the database, so every web process shares one count."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from tasks_app.models import ApiRateWindow


def rate_limit_hit(*, key: str, limit: int, window_seconds: int) -> float | None:
    """Count one hit on `key`. None if it is allowed; otherwise the seconds until the window resets.

    The increment is one conditional UPDATE (count < limit), so concurrent requests from many
    processes can never push the count past the limit; the first hit of a window inserts its row
    (a concurrent first insert loses on the unique constraint and goes back to the UPDATE).
    """
    now = timezone.now().timestamp()
    start = int(now) - int(now) % window_seconds
    window_start = datetime.fromtimestamp(start, tz=UTC)
    retry_after = start + window_seconds - now
    rows = ApiRateWindow.objects.filter(key=key, window_start=window_start)
    for _ in range(2):
        if rows.filter(count__lt=limit).update(count=F("count") + 1):
            return None
        if rows.exists():
            return retry_after
        try:
            with transaction.atomic():
                ApiRateWindow.objects.create(key=key, window_start=window_start, count=1)
        except IntegrityError:
            continue
        # A new window: the key's older windows are no longer read.
        ApiRateWindow.objects.filter(key=key, window_start__lt=window_start).delete()
        return None if limit >= 1 else retry_after
    return retry_after
