"""Canonical values: one encoding of a JSON value, whichever store kept it.

A request digest is computed over text the harness builds from recorded values (a tool's
arguments, its result or error, the model's answer). Stores hand those values back differently:
PostgreSQL's jsonb reorders object keys and turns a float such as 1e16 into the integer
10000000000000000; a model may send the same text in another Unicode normal form. Fingerprints
built over `canonical(value)` are the same in memory, on SQLite and on PostgreSQL:

- object keys sorted (recursively), as text in NFC;
- strings in NFC;
- a float with an integral value is the integer its shortest decimal text names (1.0 -> 1,
  1e16 -> 10**16, -0.0 -> 0), which is what PostgreSQL's numeric gives back for it;
  NaN and the infinities, which no JSON store keeps, are their names as strings;
- tuples are lists.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from decimal import Decimal

from agents.json_value import JSON

# Deeper than this a value is returned as it is: agents/boundary.py refuses anything nested past 64
# before it is stored, so such a value never reaches a digest, and recursing into it would overflow.
MAX_CANONICAL_DEPTH = 256


def canonical(value: JSON, _depth: int = 0) -> JSON:
    """The canonical form of a JSON value (a new value; the argument is not changed)."""
    if _depth > MAX_CANONICAL_DEPTH:
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)  # 'nan', 'inf', '-inf'
        return int(Decimal(repr(value))) if value.is_integer() else value
    if isinstance(value, dict):
        items = ((unicodedata.normalize("NFC", str(k)), canonical(v, _depth + 1)) for k, v in value.items())
        return dict(sorted(items, key=lambda kv: kv[0]))
    if isinstance(value, list | tuple):
        return [canonical(v, _depth + 1) for v in value]
    return value


def canonical_text(value: JSON) -> str:
    """The text a prompt shows for a value: sorted keys, json.dumps' default separators (the shape
    recorded conversations already have, so that their digests stay as they were)."""
    return json.dumps(canonical(value), sort_keys=True)


def canonical_json(value: JSON) -> str:
    """The compact canonical encoding that digests are computed over."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(value: JSON) -> str:
    """sha256 of the canonical encoding: a request's digest, an action's digest."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def tool_request(name: str, arguments: JSON) -> JSON:
    """What a tool call's journal digest is computed over."""
    return {"tool": name, "arguments": arguments}
