"""The runner's size limits, and the cap that keeps a text inside one."""

from __future__ import annotations

GOAL_MAX_CHARS = 4000
CONTEXT_MAX_BYTES = 64 * 1024
EVENT_TEXT_MAX_CHARS = 4000  # step outputs are capped in events; the step row keeps up to STEP_OUTPUT_MAX_CHARS
STEP_OUTPUT_MAX_CHARS = 100_000
MAX_CONFLICT_RETRIES = 3
CODE_CHANGES_LISTED = 20  # keys a code.changed event lists (it counts them all)


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"
