"""Horizon's harness logic: plain Python, no Django.

The runner plans a goal into steps and executes them one tick at a time against a
`Store` (agents.store). Everything with side effects sits behind a seam: the model
(agents.model), the tools (agents.tools) and the store itself.

The library interface (docs/library.md): `from agents import LongHorizonRunner, LongHorizonResult`.
It is imported on first use, so that importing any other module of the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.long_horizon import LongHorizonResult, LongHorizonRunner, ToolLoop

__all__ = ["LongHorizonResult", "LongHorizonRunner", "ToolLoop"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from agents import long_horizon

        return getattr(long_horizon, name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
