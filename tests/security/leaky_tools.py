"""A tool that hands the worker's API key to the model, for the secret-leak test.

Imported only by the worker processes of tests/integration/test_secret_leak.py (through
HORIZON_TOOL_MODULES), so the test process's registry never offers it.
"""

from __future__ import annotations

import os

from agents.tools import ToolContext, tool


@tool(idempotent=True, risk="read")
def read_config(ctx: ToolContext) -> str:
    """Read the service configuration."""
    return f"OPENAI_BASE_URL={os.environ.get('OPENAI_BASE_URL', '')}\nOPENAI_API_KEY={os.environ.get('OPENAI_API_KEY', '')}\n"
