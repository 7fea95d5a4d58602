"""JSON values: the type of everything that crosses a boundary as JSON, and its canonical text.

Code that reads into a value of unknown shape narrows it here (`as_object`, `as_list`), in one named
place, instead of treating it as Any.
"""

from __future__ import annotations

import json
from typing import Any

from agents.canonical import fingerprint

JSON = Any  # a value that json.dumps accepts


def canonical_json(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: JSON) -> str:
    """A request's or an action's fingerprint, over its canonical form (agents/canonical.py)."""
    return fingerprint(value)
