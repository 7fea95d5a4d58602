"""Hostile text at the harness's boundaries: normalised or refused once, where it enters.

A model, a fetched page, a tool or a user can send anything: NUL characters, lone surrogates,
invalid UTF-8, JSON nested thousands deep, numbers with thousands of digits, names thousands of
characters long. PostgreSQL's jsonb and text columns refuse NUL and lone surrogates (DataError at
the INSERT), Python refuses to print an int of more than 4,300 digits, and the json module raises
RecursionError on deep nesting. Any of those raised inside a tick fails the tick, and every retry
of it, until the attempt cap escalates the task. So each value is checked where it enters:

- model output (Journal.model_call): text is cleaned (NUL and lone surrogates become U+FFFD, the
  replacement character); a tool call whose arguments cannot be stored keeps no arguments and
  carries a parse_error instead, which the executor sends back to the model as the tool's error;
- tool results (Journal.tool_call): cleaned, so whatever a page or a file held can be recorded;
- user input (commands, the API, scenario files): refused with a message, through `loads`,
  `decode` and `refusal`.

Everything here is a pure function of the value: `refusal` says why a value cannot enter (None: it
can); `clean` returns a storable copy; `loads` parses JSON text with the same limits.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from agents.errors import BoundaryError as BoundaryError  # re-exported: defined in agents.errors
from agents.json_value import as_list
from agents.types import JSON

MAX_DEPTH = 64  # nesting of objects and arrays; PostgreSQL and json both cope, and no tool needs more
MAX_INT = 2**63 - 1  # integers beyond 64 bits are refused (what a bigint column and most clients hold)
MAX_NUMBER_CHARS = 40  # a number literal longer than this in JSON text is refused before it is converted
REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_char(text: str) -> str | None:
    """A description of the first character PostgreSQL cannot store, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character (U+0000)" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
    return f"{what} at position {found.start()}"


def clean_text(text: str) -> str:
    """The text with NUL characters and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def shown(value: str, limit: int = 80) -> str:
    """A text as a one-line message may quote it: cleaned, cut short, in quotes."""
    cleaned = clean_text(value)
    return repr(cleaned if len(cleaned) <= limit else cleaned[:limit] + f"... ({len(cleaned)} characters)")


def refusal(value: Any, where: str = "the value", *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `value` (a JSON value) cannot be stored and hashed as it is, or None when it can."""
    return _refusal(value, where, max_depth, 0)


def _refusal(value: Any, where: str, max_depth: int, depth: int) -> str | None:
    if isinstance(value, str):
        bad = unstorable_char(value)
        return f"{where} contains {bad}" if bad else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if -MAX_INT <= value <= MAX_INT else f"{where} is an integer beyond 64 bits ({value.bit_length()} bits)"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is not a finite number"
    if isinstance(value, dict | list | tuple):
        if depth >= max_depth:
            return f"{where} is nested more than {max_depth} levels deep"
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{where} has a key that is not a string"
                bad = unstorable_char(key)
                if bad:
                    return f"{where} has a key that contains {bad}"
                found = _refusal(item, f"{where}[{key[:40]!r}]", max_depth, depth + 1)
                if found:
                    return found
            return None
        for i, item in enumerate(value):
            found = _refusal(item, f"{where}[{i}]", max_depth, depth + 1)
            if found:
                return found
        return None
    return f"{where} is not JSON-serialisable (a {type(value).__name__})"


def clean(value: Any, *, max_depth: int = MAX_DEPTH) -> JSON:
    """A storable copy of a JSON value: text cleaned, a subtree nested too deep, an integer beyond 64
    bits or a non-finite number replaced by a short text saying what was there."""
    return _clean(value, max_depth, 0)


def _clean(value: Any, max_depth: int, depth: int) -> JSON:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -MAX_INT <= value <= MAX_INT else f"[an integer of {value.bit_length()} bits]"
    if isinstance(value, float):
        return value if math.isfinite(value) else f"[{value}]"
    if isinstance(value, dict | list | tuple):
        if depth >= max_depth:
            return f"[nested more than {max_depth} levels deep]"
        if isinstance(value, dict):
            return {clean_text(str(k)): _clean(v, max_depth, depth + 1) for k, v in value.items()}
        return [_clean(v, max_depth, depth + 1) for v in value]
    return clean_text(str(value))


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise BoundaryError(f"a number of {len(text)} characters (the limit is {MAX_NUMBER_CHARS})")
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise BoundaryError(f"the number {text} is out of range")
    return value


def _constant(name: str) -> Any:
    raise BoundaryError(f"{name} is not valid JSON")


def loads(text: str, where: str = "the JSON", *, max_depth: int = MAX_DEPTH) -> JSON:
    """Parse JSON text that must be storable; BoundaryError (one line) says why it is not."""
    try:
        value: JSON = json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_constant)
    except BoundaryError as exc:
        raise BoundaryError(f"{where} is refused: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BoundaryError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BoundaryError(f"{where} is nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise BoundaryError(f"{where} is not valid JSON: {exc}") from None
    problem = refusal(value, where, max_depth=max_depth)
    if problem:
        raise BoundaryError(problem)
    return value


def decode(data: bytes, where: str = "the input") -> str:
    """Bytes as UTF-8 text (a BOM is dropped); BoundaryError for anything else, or a NUL inside."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BoundaryError(f"{where} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})") from None
    bad = unstorable_char(text)
    if bad:
        raise BoundaryError(f"{where} contains {bad}")
    return text


def model_response(data: dict[str, JSON]) -> dict[str, JSON]:
    """A model's answer (LLMResponse.to_json()) as it may be recorded and acted on.

    Its text is cleaned; a tool call whose arguments cannot be stored keeps none and carries a
    parse_error, so the model hears why as the tool's result and nothing runs with them."""
    out: dict[str, JSON] = {k: clean(v) for k, v in data.items() if k != "tool_calls"}
    calls: list[JSON] = []
    for call in as_list(data.get("tool_calls") or []):
        assert isinstance(call, dict)
        name = clean_text(str(call.get("name", "")))
        problem = refusal(call.get("arguments"), "the arguments")
        if problem:
            fixed: dict[str, JSON] = {
                "name": name,
                "arguments": {},
                "call_id": clean_text(str(call.get("call_id", ""))),
                "parse_error": f"{problem}, which cannot be accepted: send the call again without it",
            }
            calls.append(fixed)
        else:
            calls.append({k: clean(v) for k, v in call.items()})
    out["tool_calls"] = calls
    return out
