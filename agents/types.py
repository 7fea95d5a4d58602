"""Frozen dataclasses for every boundary of the harness: the model seam and a run's results here,
the store's records in agents/records.py and JSON values in agents/json_value.py (both re-exported,
so `from agents.types import ...` finds every one).

Each one is JSON-serialisable through `to_json` / `from_json`; new fields get defaults so that
records written by older code still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from agents.canonical import canonical, fingerprint
from agents.json_value import JSON, as_list, as_object, as_optional_str, as_scalar, as_str, canonical_json
from agents.records import (
    ApprovalRecord,
    Build,
    CheckpointRecord,
    EventRecord,
    JournalEntry,
    Lease,
    NewEvent,
    NewTask,
    OperatorChange,
    SignalRecord,
    Snapshot,
    StepRecord,
    StepSpec,
    StepUpdate,
    TaskRecord,
    TickCommit,
)

__all__ = [
    "ApprovalRecord",
    "Build",
    "CheckpointRecord",
    "CheckpointRef",
    "EventRecord",
    "JSON",
    "JournalEntry",
    "LLMRequest",
    "LLMResponse",
    "Lease",
    "NewEvent",
    "NewTask",
    "OperatorChange",
    "RunResult",
    "SignalRecord",
    "Snapshot",
    "StepLogEntry",
    "StepRecord",
    "StepSpec",
    "StepUpdate",
    "TaskRecord",
    "TickCommit",
    "ToolCall",
    "Usage",
    "canonical_json",
    "digest",
]


def digest(value: JSON) -> str:
    """A request's or an action's fingerprint, over its canonical form (agents/canonical.py)."""
    return fingerprint(value)


# --- model seam ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, JSON]
    call_id: str = ""
    # Set when the model's arguments were not a JSON object; the executor sends it back to the
    # model as the tool's error instead of running anything.
    parse_error: str = ""

    def __post_init__(self) -> None:
        # Canonical from the start (sorted keys, NFC text, integral floats as integers): whether the
        # arguments come from the model or back from a store that reordered them, every text built
        # from them (a validation error, a tool's message, a digest) is the same.
        object.__setattr__(self, "arguments", canonical(self.arguments))

    def to_json(self) -> dict[str, JSON]:
        data: dict[str, JSON] = {"name": self.name, "arguments": self.arguments, "call_id": self.call_id}
        if self.parse_error:
            data["parse_error"] = self.parse_error
        return data

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> ToolCall:
        return cls(
            name=as_str(data["name"]),
            arguments=dict(as_object(data["arguments"])),
            call_id=as_str(data.get("call_id", "")),
            parse_error=as_str(data.get("parse_error", "")),
        )


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class LLMRequest:
    """What a model is asked. `purpose` is "plan" or "step"; messages follow the chat format."""

    purpose: str
    messages: tuple[dict[str, JSON], ...]
    tools: tuple[dict[str, JSON], ...] = ()
    step_index: int | None = None
    step_title: str = ""
    # Structured output: {"name": ..., "schema": {...}} sent as response_format json_schema.
    response_schema: dict[str, JSON] | None = None

    def to_json(self) -> dict[str, JSON]:
        data: dict[str, JSON] = {
            "purpose": self.purpose,
            "messages": list(self.messages),
            "tools": list(self.tools),
            "step_index": self.step_index,
            "step_title": self.step_title,
        }
        # Only when set, so that digests of requests journaled before the field existed still match.
        if self.response_schema is not None:
            data["response_schema"] = self.response_schema
        return data

    def digest(self) -> str:
        return digest(self.to_json())


@dataclass(frozen=True)
class LLMResponse:
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"  # "stop", "tool_calls", "length" (truncated), "content_filter"
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    refusal: str | None = None  # the model declined; content is then usually empty
    cost_usd: float = 0.0

    def to_json(self) -> dict[str, JSON]:
        return {
            "content": self.content,
            "tool_calls": [c.to_json() for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens},
            "model": self.model,
            "refusal": self.refusal,
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_json(cls, data: dict[str, JSON]) -> LLMResponse:
        return cls(
            content=as_optional_str(data.get("content")),
            tool_calls=tuple(ToolCall.from_json(as_object(c)) for c in as_list(data.get("tool_calls", []))),
            finish_reason=as_str(data.get("finish_reason", "stop")),
            usage=Usage(**cast("dict[str, int]", data.get("usage", {}))),
            model=as_str(data.get("model", "")),
            refusal=as_optional_str(data.get("refusal")),
            cost_usd=float(as_scalar(data.get("cost_usd", 0.0))),
        )


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepLogEntry:
    index: int
    title: str
    status: str
    attempts: int
    output: JSON
    duration_s: float | None


@dataclass(frozen=True)
class CheckpointRef:
    task_id: str
    seq: int
    event_seq: int


@dataclass(frozen=True)
class RunResult:
    task_id: str
    status: str  # "completed", "aborted", "requires_human", or the live status when the run stopped early
    reason: str
    result: JSON
    steps: tuple[StepLogEntry, ...]
    duration_s: float
    checkpoint: CheckpointRef | None
    ticks: int = 0
