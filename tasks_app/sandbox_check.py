"""Start-up word on run_python's sandbox: `manage.py check` and the worker's boot say, once, whether
the code tool is offered here, and why not (agents/tools/jail.py builds a probe sandbox to know)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.checks import CheckMessage, Warning, register

logger = logging.getLogger("horizon.sandbox")


def sandbox_status() -> tuple[str, str]:
    """("ok" | "unavailable" | "unsafe", the sentence to print)."""
    from agents.tools import sandbox

    if sandbox.config().unsafe:
        return "unsafe", sandbox.UNSAFE_BANNER
    problem = sandbox.isolation_problem()
    if problem:
        return "unavailable", f"run_python is not offered to the model on this machine: {problem}"
    return "ok", "run_python: each call runs in a bubblewrap sandbox (namespaces, seccomp, rlimits, no network)"


@register("horizon")
def check_sandbox(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Every management command runs the system checks, and the probe starts a sandbox (and ldd over
    # the standard library): only `check` itself pays for it. The worker asks at boot.
    if sys.argv[1:2] != ["check"]:
        return []
    status, text = sandbox_status()
    if status == "ok":
        return []  # nothing to say: a clean check stays clean
    hint = "install bubblewrap and allow user namespaces (docs/security.md)" if status == "unavailable" else None
    return [Warning(text, hint=hint, id="horizon.W010" if status == "unavailable" else "horizon.W011")]


def log_sandbox_status() -> None:
    """The worker's boot line: a warning unless the sandbox is there."""
    status, text = sandbox_status()
    logger.log(logging.INFO if status == "ok" else logging.WARNING, text)
