"""What enters a task from outside: the new task's checks, and the identity a worker claims under."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import replace

from agents import boundary
from agents.errors import InvalidInput
from agents.profiles import AgentProfile
from agents.redaction import redact, redact_text
from agents.runner.limits import CONTEXT_MAX_BYTES, GOAL_MAX_CHARS
from agents.types import NewTask


def worker_identity(build: str = "") -> str:
    """host:pid:nonce[:build]. The in-process driver uses host and pid to spot leases of dead local
    processes; the build (docs/deploys.md) names the code that wrote each event of a tick."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}" + (f":{build}" if build else "")


def validate_new_task(new: NewTask, profiles: Mapping[str, AgentProfile] | None = None) -> NewTask:
    goal = new.goal.strip() if isinstance(new.goal, str) else ""
    if not goal:
        raise InvalidInput("the goal is empty")
    if len(goal) > GOAL_MAX_CHARS:
        raise InvalidInput(f"the goal is {len(goal)} characters; the limit is {GOAL_MAX_CHARS}")
    if not isinstance(new.context, dict):
        raise InvalidInput("the context must be a JSON object")
    problem = boundary.refusal(goal, "the goal") or boundary.refusal(new.context, "the context")
    if problem:  # user input enters here from every interface: refused before it can fail a write
        raise InvalidInput(problem)
    try:
        size = len(json.dumps(new.context))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the context is not JSON-serialisable: {exc}") from None
    if size > CONTEXT_MAX_BYTES:
        raise InvalidInput(f"the context is {size} bytes as JSON; the limit is {CONTEXT_MAX_BYTES}")
    if not 1 <= new.max_steps <= 10_000:
        raise InvalidInput("max_steps must be between 1 and 10000")
    if not 1 <= new.max_attempts <= 100:
        raise InvalidInput("max_attempts must be between 1 and 100")
    if profiles is not None and new.profile not in profiles:
        raise InvalidInput(f"unknown profile {new.profile!r}; configured: {', '.join(sorted(profiles))}")
    # A key pasted into a goal would otherwise reach every prompt, event and checkpoint of the task.
    return replace(new, goal=redact_text(goal), context=redact(new.context))
