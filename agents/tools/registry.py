"""A registry of tools whose JSON schemas are derived from type hints.

    @tool(idempotent=True, risk="read")
    def read_file(ctx: ToolContext, path: str) -> str:
        "Read a file from the task's workspace."

Each tool says whether it is idempotent (safe to run again when its outcome is unknown),
transactional (its writes go through the store inside the journal's transaction, so they happen
exactly once) and its risk level. Arguments are validated against the schema before the tool
runs; an invalid call never reaches the function.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from agents.errors import ToolError as ToolError  # re-exported: defined in agents.errors
from agents.json_value import as_list, as_object, as_str
from agents.store import ToolStore
from agents.types import JSON

# "high": code execution and the like; every built-in profile asks a person first (approval_risks).
RISK_LEVELS = ("read", "write", "external", "high")

ToolFunction = TypeVar("ToolFunction", bound=Callable[..., object])


@dataclass(frozen=True)
class ToolContext:
    task_id: str
    step_index: int
    idempotency_key: str  # the journal key: pass it on to any external API that accepts one
    store: ToolStore  # for tools that keep durable state: the workspace, long-term memory


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, JSON]
    fn: Callable[..., object]  # returns JSON; typed object so that a tool may say list[str]
    idempotent: bool = False
    transactional: bool = False
    risk: str = "read"
    # After a crash between starting the tool and recording its result: look at the outside world
    # and return the call's output if it did happen, None if it did not (then it runs again).
    # Without one, a non-idempotent tool's unknown outcome goes to a person.
    reconcile: Callable[[ToolContext, dict[str, JSON]], JSON | None] | None = None
    # The compensation (saga): undo(ctx, arguments, output) reverses a completed call when the task
    # is aborted or, under a profile that asks for it, a step fails for good. Journaled, run once.
    undo: Callable[[ToolContext, dict[str, JSON], JSON], JSON] | None = None
    # Why the tool cannot run on this worker (None: it can). An unavailable tool is not offered to
    # the model; a call that names it anyway gets the tool's own error (run_python without a sandbox).
    unavailable: Callable[[], str | None] | None = None

    def schema(self) -> dict[str, JSON]:
        """The OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def validate(self, arguments: Any) -> list[str]:
        return validate_arguments(self.parameters, arguments)

    def run(self, ctx: ToolContext, arguments: dict[str, JSON]) -> JSON:
        # A tool returns JSON (the journal stores it); its own annotation may be narrower than JSON
        # (list[str] is not a list[JSON]: lists are invariant), so this is where it becomes JSON.
        return cast(JSON, self.fn(ctx, **arguments))


_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema_for(annotation: Any, where: str) -> dict[str, JSON]:
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and len(args) == 1:
        return {"type": "array", "items": _schema_for(args[0], where)}
    if origin is dict or annotation is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return {"anyOf": [_schema_for(inner, where), {"type": "null"}]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    raise TypeError(f"{where}: type {annotation!r} has no JSON schema mapping")


def derive_parameters(fn: Callable[..., Any]) -> dict[str, JSON]:
    hints = typing.get_type_hints(fn)
    properties: dict[str, JSON] = {}
    required: list[JSON] = []
    params = list(inspect.signature(fn).parameters.values())
    for param in params[1:]:  # the first parameter is the ToolContext
        if param.name not in hints:
            raise TypeError(f"tool {fn.__name__}: parameter {param.name!r} needs a type hint")
        properties[param.name] = _schema_for(hints[param.name], f"tool {fn.__name__}.{param.name}")
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _type_ok(schema: dict[str, JSON], value: Any) -> bool:
    if "anyOf" in schema:
        return any(_type_ok(as_object(s), value) for s in as_list(schema["anyOf"]))
    if "enum" in schema:
        return value in as_list(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list) and all(_type_ok(as_object(schema.get("items", {})), v) for v in value)
    return True


def validate_arguments(parameters: dict[str, JSON], arguments: Any) -> list[str]:
    """Check arguments against a derived schema; returns readable errors (empty when valid)."""
    if not isinstance(arguments, dict):
        return [f"arguments must be a JSON object, got {type(arguments).__name__}"]
    props = as_object(parameters.get("properties", {}))
    # In name order, never in the order the keys arrived: the error text goes back to the model, so
    # it is part of the next request's digest, and a store may hand the recorded arguments back in
    # another key order (PostgreSQL's jsonb does). Same arguments, same errors, same digest.
    names = sorted(arguments)
    errors = [
        f"missing required argument {name!r}"
        for name in sorted(as_str(n) for n in as_list(parameters.get("required", [])))
        if name not in arguments
    ]
    errors += [f"unexpected argument {name!r}" for name in names if name not in props]
    errors += [
        f"argument {name!r} does not match {props[name]}"
        for name in names
        if name in props and not _type_ok(as_object(props[name]), arguments[name])
    ]
    return errors


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, t: Tool) -> Tool:
        if t.risk not in RISK_LEVELS:
            raise ValueError(f"tool {t.name}: risk must be one of {RISK_LEVELS}")
        self.tools[t.name] = t
        return t

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def schemas(self, allowed: tuple[str, ...] | None = None) -> tuple[dict[str, JSON], ...]:
        """The `tools` entries, in name order; `allowed` (a profile's list) narrows them."""
        names = sorted(self.tools) if allowed is None else sorted(set(allowed) & set(self.tools))
        return tuple(t.schema() for name in names if not ((t := self.tools[name]).unavailable and t.unavailable()))

    def tool(
        self,
        *,
        name: str | None = None,
        idempotent: bool = False,
        transactional: bool = False,
        risk: str = "read",
        reconcile: Callable[[ToolContext, dict[str, JSON]], JSON | None] | None = None,
        undo: Callable[[ToolContext, dict[str, JSON], JSON], JSON] | None = None,
        unavailable: Callable[[], str | None] | None = None,
    ) -> Callable[[ToolFunction], ToolFunction]:
        def decorate(fn: ToolFunction) -> ToolFunction:
            self.register(
                Tool(
                    name=name or fn.__name__,
                    description=inspect.cleandoc(fn.__doc__ or fn.__name__),
                    parameters=derive_parameters(fn),
                    fn=fn,
                    idempotent=idempotent,
                    transactional=transactional,
                    risk=risk,
                    reconcile=reconcile,
                    undo=undo,
                    unavailable=unavailable,
                )
            )
            return fn

        return decorate


default_registry = ToolRegistry()
tool = default_registry.tool
