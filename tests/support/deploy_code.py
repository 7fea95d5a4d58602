"""The code of two builds, for the deploy tests; worker processes import it through HORIZON_TOOL_MODULES.

HORIZON_TEST_DEPLOY_CODE selects the build (read once, at import, as a deploy would bring code):
- "old": the side-effect tool `deploy_effect` and a tool no task calls, `deploy_unused`;
- "new": an edited step system prompt, an edited description of `deploy_effect`, a tool added
  (`deploy_added`), `deploy_unused` removed, and an optional field added to the plan schema. (The
  changed profile default is a profiles file the test gives the new workers.)

`deploy_effect` inserts one row per call keyed by the call's journal key with a plain INSERT, in
the journal's transaction (a transactional tool): a call that ran twice would fail on the key.

The pytest process never imports this module: registering tools there would change the schemas
that other tests' requests carry.
"""

from __future__ import annotations

import copy
import os
import random
import time

from django.db import connection

from agents import executor, planner
from agents.tools import ToolContext, default_registry

TABLE = "it_deploy_effect"
BUILD = os.environ.get("HORIZON_TEST_DEPLOY_CODE", "old")
NEW = BUILD == "new"


def deploy_effect(ctx: ToolContext) -> str:
    # A pause inside the step, so that a SIGKILL of the worker often lands in the middle of one.
    time.sleep(random.uniform(0.05, 0.2))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (key, task_id, step) VALUES (%s, %s, %s)", [ctx.idempotency_key, ctx.task_id, ctx.step_index]
        )
    return f"recorded {ctx.idempotency_key}"


deploy_effect.__doc__ = (
    "Record this step's side effect (one row per call); call it once per request." if NEW else "Record this step's side effect."
)
default_registry.tool(transactional=True, idempotent=False, risk="write")(deploy_effect)

if NEW:

    @default_registry.tool(idempotent=True)
    def deploy_added(ctx: ToolContext, note: str) -> str:
        """A tool the new build adds."""
        return note

    executor.STEP_SYSTEM_PROMPT = executor.STEP_SYSTEM_PROMPT + " Keep every answer short."
    schema = copy.deepcopy(planner.PLAN_SCHEMA)
    step = schema["schema"]["$defs"]["PlannedStep"]
    step["properties"]["owner"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Who owns the step, or null."}
    step["required"] = [*step["required"], "owner"]
    planner.PLAN_SCHEMA = schema
else:

    @default_registry.tool(idempotent=True)
    def deploy_unused(ctx: ToolContext) -> str:
        """A tool no task calls; the new build removes it."""
        return ""
