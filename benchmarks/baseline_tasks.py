"""The baseline for benchmarks/step_overhead.py: the cheapest durable Celery step we can write.

Each task does one INSERT and one COMMIT through Django's connection, on the same worker, broker,
settings (acks_late, prefetch 1, CONN_MAX_AGE) and queue as Horizon's ticks. Whatever a Horizon
tick costs beyond this is the harness: lease, load, journal, events, checkpoint.

The worker imports this module with `--include benchmarks.baseline_tasks`; it is not part of the
app and registers nothing in production.
"""

from __future__ import annotations

from celery import shared_task
from django.db import connection, transaction

INSERT = "INSERT INTO bench_baseline (run, i) VALUES (%s, %s)"


def _insert(run: str, i: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT, [run, i])


@shared_task(name="bench.insert_one", acks_late=True, ignore_result=True)
def insert_one(run: str, i: int) -> None:
    """One link of a `celery.chain`: the chain itself carries the rest of the links."""
    _insert(run, i)


@shared_task(name="bench.insert_then_next", acks_late=True, ignore_result=True)
def insert_then_next(run: str, i: int, n: int) -> None:
    """Insert, commit, then enqueue link i+1: the message pattern of Horizon's ticks (one small message each)."""
    _insert(run, i)
    if i < n:
        insert_then_next.delay(run, i + 1, n)
