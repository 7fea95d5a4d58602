"""Tools the step executor may call: a registry, argument validation, and the built-ins."""

from agents.tools.registry import Tool, ToolContext, ToolError, ToolRegistry, default_registry, tool

__all__ = ["Tool", "ToolContext", "ToolError", "ToolRegistry", "default_registry", "tool"]

# Importing the modules registers the built-in tools in default_registry.
from agents.tools import control as _control  # noqa: E402,F401
from agents.tools import fetch as _fetch  # noqa: E402,F401
from agents.tools import notes as _notes  # noqa: E402,F401
from agents.tools import sandbox as _sandbox  # noqa: E402,F401
from agents.tools import subtasks as _subtasks  # noqa: E402,F401
from agents.tools import waits as _waits  # noqa: E402,F401
from agents.tools import workspace as _workspace  # noqa: E402,F401
