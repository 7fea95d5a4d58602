"""The chaos suite's side-effecting tool; only the worker processes import it (HORIZON_TOOL_MODULES).

Each call does two things:

- the effect: one row in chaos_effect under the call's journal key (the PRIMARY KEY), written on
  Django's connection inside the journal's transaction, so it commits with the call's journal row
  or not at all. A second execution of the same call that committed would fail on the key; the
  checks count rows per key all the same;
- a duplicate: an INSERT that the primary key refused (the same call's effect already committed,
  or committing concurrently) is recorded in chaos_duplicate, on the autocommit connection, before
  the error goes on: the figure "duplicates found" counts those rows;
- the attempt: chaos_attempt counts every time the tool body ran for a key, on a separate
  autocommit connection, outside that transaction, so attempts that rolled back (a worker killed
  mid-step, a zombie fenced at commit, a database restart) are counted too. attempts >= effects,
  and attempts > effects shows how many executions the journal and the fence turned into no-ops.

The pytest process never imports this module: registering the tool in default_registry there
would change the tool schemas that other tests' model requests carry.
"""

from __future__ import annotations

import logging
import os
import random
import time

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from agents.tools import ToolContext, tool

EFFECT_TABLE = "chaos_effect"
ATTEMPT_TABLE = "chaos_attempt"
DUPLICATE_TABLE = "chaos_duplicate"

logger = logging.getLogger("horizon.chaos")
_attempts: psycopg.Connection | None = None
_attempts_pid = 0


def _autocommit(sql: str, params: list[object], what: str) -> None:
    """Best effort, on this process's own autocommit connection: a failure here (the database
    restarting) must not turn into a tool failure."""
    global _attempts, _attempts_pid
    db = settings.DATABASES["default"]
    for _ in range(2):
        try:
            if _attempts is None or _attempts.closed or _attempts_pid != os.getpid():
                # One connection per pool process, opened after the fork.
                _attempts = psycopg.connect(
                    host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True, connect_timeout=3
                )
                _attempts_pid = os.getpid()
            _attempts.execute(sql, params)
            return
        except psycopg.Error as exc:
            logger.warning("chaos: could not record %s: %s", what, exc)
            _attempts = None


@tool(transactional=True, idempotent=False, risk="write")
def chaos_side_effect(ctx: ToolContext) -> str:
    """Record this step's side effect: one row per call, keyed by the call's idempotency key."""
    key, task_id, step = ctx.idempotency_key, ctx.task_id, ctx.step_index
    _autocommit(
        f"INSERT INTO {ATTEMPT_TABLE} (key, task_id, step, attempts, last_at) VALUES (%s, %s, %s, 1, clock_timestamp()) "
        f"ON CONFLICT (key) DO UPDATE SET attempts = {ATTEMPT_TABLE}.attempts + 1, last_at = clock_timestamp()",
        [key, task_id, step],
        f"an attempt of {key}",
    )
    # The step's work: a SIGKILL or SIGSTOP often lands here, with the journal transaction open. Its
    # length sets the pace: 100 goals must still be running when the driver's last fault strikes and
    # through ten kills (0.2-0.4 s was enough while each tick waited for three WAL flushes).
    time.sleep(random.uniform(0.3, 0.5))
    try:
        # A savepoint, so that the refusal can be recorded before the error goes on.
        with transaction.atomic(), connection.cursor() as cursor:
            # clock_timestamp(), not now(): the moment the effect was written, not the transaction's start.
            cursor.execute(
                f"INSERT INTO {EFFECT_TABLE} (key, task_id, step, pid, created_at) VALUES (%s, %s, %s, %s, clock_timestamp())",
                [key, task_id, step, os.getpid()],
            )
    except IntegrityError:
        _autocommit(
            f"INSERT INTO {DUPLICATE_TABLE} (key, task_id, step, pid) VALUES (%s, %s, %s, %s)",
            [key, task_id, step, os.getpid()],
            f"a duplicate of {key}",
        )
        raise
    return f"recorded {key}"
