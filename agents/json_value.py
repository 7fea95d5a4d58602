"""JSON values: the type of everything that crosses a boundary as JSON, and its sorted compact text.

Code that reads into a value of unknown shape narrows it here (`as_object`, `as_list`), in one named
place, instead of treating it as Any.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypeAlias, cast

# A value that json.dumps accepts and json.loads returns. Recursive, so that mypy follows it inside
# objects and arrays; reading into one of unknown shape goes through the narrowing helpers below.
JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None


def canonical_json(value: JSON) -> str:
    """Sorted keys, compact: the value as given (agents/canonical.py's canonical_json normalises it first)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Reading into a value of unknown shape. Each of these is a cast, not a check: the value was
# written by this code (an event, a checkpoint, a journal entry, the model's arguments after the
# tool's schema checked them), so its shape is that writer's contract, and reading it must behave
# exactly as it did when JSON was Any. Code that must check a shape uses isinstance instead.


def json_list(items: Iterable[JSON]) -> list[JSON]:
    """A list of JSON values as the JSON type: list is invariant, so list[str] is not a list[JSON]."""
    return list(items)


def as_object(value: JSON) -> dict[str, JSON]:
    return cast("dict[str, JSON]", value)


def as_list(value: JSON) -> list[JSON]:
    return cast("list[JSON]", value)


def as_str(value: JSON) -> str:
    return cast(str, value)


def as_int(value: JSON) -> int:
    return cast(int, value)


def as_optional_str(value: JSON) -> str | None:
    return cast("str | None", value)


def as_optional_int(value: JSON) -> int | None:
    return cast("int | None", value)


def as_scalar(value: JSON) -> str | int | float:
    """A number or a string, for int() or float() to convert as they always did."""
    return cast("str | int | float", value)
