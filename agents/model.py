"""The model seam. The planner and the step executor only ever see this protocol.

Implementations: agents.scripted.ScriptedModel (offline, replays a scenario). A real client over
the `openai` SDK plugs in behind the same protocol.
"""

from __future__ import annotations

from typing import Protocol

from agents.types import LLMRequest, LLMResponse


class Model(Protocol):
    name: str

    def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer one request. Raise agents.errors.TransientError or PermanentError, nothing else."""
        ...
