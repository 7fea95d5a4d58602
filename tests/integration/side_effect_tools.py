"""A side-effecting tool for the integration tests; the worker processes import it through HORIZON_TOOL_MODULES.

Each call inserts one row keyed by the call's journal key with a plain INSERT, so a second
execution of the same call fails on the primary key instead of passing silently. The tool is
transactional: the journal runs it inside the transaction that records its result, on the
connection Django uses for that transaction, so the row and the journal entry commit together
or not at all.

The pytest process never imports this module: registering the tool in default_registry there
would change the tool schemas that other tests' model requests (and their digests) carry.
"""

from __future__ import annotations

import random
import time

from django.db import connection

from agents.tools import ToolContext, tool

TABLE = "it_side_effect"


@tool(transactional=True, idempotent=False, risk="write")
def record_side_effect(ctx: ToolContext) -> str:
    """Record this step's side effect: one row per call, keyed by the call's idempotency key."""
    # Sleep first so that a SIGKILL of the worker often lands inside the step, with the journal
    # transaction open and the row not yet committed.
    time.sleep(random.uniform(0.1, 0.3))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (key, task_id, step) VALUES (%s, %s, %s)",
            [ctx.idempotency_key, ctx.task_id, ctx.step_index],
        )
    return f"recorded {ctx.idempotency_key}"
