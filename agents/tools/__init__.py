"""Tools the step executor may call: a registry, argument validation, and the built-ins."""

from agents.tools.registry import Tool, ToolContext, ToolError, ToolRegistry, default_registry, tool

__all__ = ["Tool", "ToolContext", "ToolError", "ToolRegistry", "default_registry", "tool"]

# Importing the module registers the built-in workspace tools in default_registry.
from agents.tools import workspace as _workspace  # noqa: E402,F401
