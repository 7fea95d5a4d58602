"""A risky ("external") mail tool registered in the default registry for one test only: the approval
tests (service and API) need a real tool whose calls wait for a person and whose effect they can see."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agents.tools import default_registry
from agents.tools.registry import ToolContext


@contextmanager
def registered_mail_tool(name: str, sent: list[dict[str, Any]]) -> Iterator[None]:
    """Register tool `name` while the block runs; each call appends {"to", "subject"} to `sent` (emptied first)."""

    @default_registry.tool(name=name, idempotent=True, risk="external")
    def send_mail(ctx: ToolContext, to: str, subject: str) -> str:
        """Send a mail (test only)."""
        sent.append({"to": to, "subject": subject})
        return "sent"

    sent.clear()
    try:
        yield
    finally:
        default_registry.tools.pop(name, None)
