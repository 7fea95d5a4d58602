"""A tool that parks a worker inside a step, for fault tests only: never list it in a real deployment.

A fault test needs its worker stopped at a known point: after the model's response is journaled
and before the step commits. The step's model call asks for `hold`; the worker process (which
imports this module through HORIZON_TOOL_MODULES) then sleeps inside the tool for as long as the
marker file named by HORIZON_TEST_HOLD_FILE exists, and the test SIGKILLs it there. With the
marker gone (or the variable unset) the tool returns at once, so the resumed run goes straight on.

Every entry into the tool appends one line "<pid> <journal key>" to HORIZON_TEST_HOLD_LOG when that
is set: the test waits for the line to know the worker is parked, and counts the lines to see how
often the tool ran.

The tool is idempotent: the journal runs it again when a crash left its outcome unrecorded.

As with tests/integration/side_effect_tools.py, the pytest process must not import this module:
registering the tool in default_registry there would change the tool schemas (and so the request
digests) of other tests' model calls.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agents.tools import ToolContext, ToolError, tool

HOLD_FILE_ENV = "HORIZON_TEST_HOLD_FILE"
HOLD_LOG_ENV = "HORIZON_TEST_HOLD_LOG"
# A bound, so that a worker the test forgot to kill does not sleep forever.
MAX_HOLD_SECONDS = 120.0
POLL_SECONDS = 0.05


@tool(idempotent=True, risk="read")
def hold(ctx: ToolContext, note: str) -> str:
    """Wait while the test's marker file exists, then return the note (a fault-test tool)."""
    log = os.environ.get(HOLD_LOG_ENV)
    if log:
        # O_APPEND writes of one short line: the lines of two processes never interleave.
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {ctx.idempotency_key}\n")
    marker = os.environ.get(HOLD_FILE_ENV)
    deadline = time.monotonic() + MAX_HOLD_SECONDS
    while marker and Path(marker).exists():
        if time.monotonic() > deadline:
            raise ToolError(f"held for {MAX_HOLD_SECONDS:.0f}s and the test never killed this worker")
        time.sleep(POLL_SECONDS)
    return f"held: {note}"
