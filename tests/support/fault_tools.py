"""The fault run's side-effect tool; worker processes import it through HORIZON_TOOL_MODULES.

Each call inserts one row keyed by the call's journal key with a plain INSERT, in the journal's
transaction (a transactional tool): a call that ran twice would fail on the key. The pytest
process never imports this module (its schema would change other tests' requests).
"""

from __future__ import annotations

import time

from django.db import connection

from agents.tools import ToolContext, tool

TABLE = "it_fault_effect"


@tool(transactional=True, idempotent=False, risk="write")
def fault_effect(ctx: ToolContext, text: str) -> str:
    """Record one side effect with a text."""
    time.sleep(0.05)  # a kill sometimes lands inside the call
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (key, task_id, text) VALUES (%s, %s, %s)", [ctx.idempotency_key, ctx.task_id, text])
    return f"recorded {text}"
