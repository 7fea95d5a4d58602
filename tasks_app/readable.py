"""How values read to a person: durations, results, event lines, step numbers.

One module so that the admin, the timeline, the reports and the commands say the same thing the same
way. Step numbers are 1-based wherever a person reads them (`step_number`); the database, journal keys
and event payloads keep the 0-based index.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from typing import Any

from django.utils.formats import date_format
from django.utils.timezone import localtime

from tasks_app.conf import settings

# An event line is cut here; the timeline and `follow_events --json` keep the whole payload.
EVENT_LINE_CHARS = 160


def when_text(value: datetime | None) -> str:
    """A timestamp in the server's local time to the second; empty when there is none."""
    return date_format(localtime(value), "Y-m-d H:i:s") if value else ""


def json_or_text(value: Any) -> Any:
    """A value stored as a JSON string (tool arguments, tool messages) decoded; any other text as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def step_number(index: int | None) -> str:
    """`step N` for the 0-based index the rows and payloads keep."""
    return "step ?" if index is None else f"step {int(index) + 1}"


def duration_text(value: timedelta | float | None) -> str:
    """1.2 s, 4 min 05 s, 2 h 03 min, 3 d 4 h: never `0:01:39.686559`."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds >= 0.1 or seconds == 0 else f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def value_text(value: Any) -> str:
    """A result or a tool's output as text: strings as they are, objects as `key: value` lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if item in (None, "", [], {}):
                continue
            text = value_text(item)
            lines.append(f"{key}:\n{_indent(text)}" if "\n" in text.rstrip("\n") else f"{key}: {text.rstrip()}")
        return "\n".join(lines)
    if isinstance(value, list):
        if all(isinstance(v, (str, int, float, bool)) for v in value):
            return ", ".join(str(v) for v in value)
        return "\n".join(f"- {value_text(v)}" for v in value)
    return str(value)


def arguments_code(arguments: Any) -> str:
    """Tool arguments for reading: a string argument's own lines (no `\\n` escapes), others as JSON."""
    if not isinstance(arguments, dict):
        return json.dumps(arguments, indent=2, ensure_ascii=False)
    parts = []
    for key, value in sorted(arguments.items()):
        if isinstance(value, str) and "\n" in value:
            parts.append(f"{key}:\n{value.rstrip()}")
        else:
            parts.append(f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}")
    return "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())


def step_result_text(result: Any) -> str:
    """A step row's result ({"output": ..., "model_calls": ...}) as the text the step produced."""
    if isinstance(result, dict) and "output" in result:
        return value_text(result["output"])
    return value_text(result)


def cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def usage_text(usage: dict[str, Any]) -> str:
    """`2 model calls, 1 tool call, 233+34 tokens, $0.0000`."""
    calls = usage.get("model_calls", 0)
    tools = usage.get("tool_calls", 0)
    parts = [f"{calls} model call{'s' if calls != 1 else ''}", f"{tools} tool call{'s' if tools != 1 else ''}"]
    parts.append(f"{usage.get('prompt_tokens', 0)}+{usage.get('completion_tokens', 0)} tokens")
    parts.append(f"${float(usage.get('cost_usd') or 0):.4f}")
    return ", ".join(parts)


def event_text(event_type: str, payload: Any) -> str:
    """One line saying what an event means, without its bulk (profile_config, whole plans)."""
    p = payload if isinstance(payload, dict) else {}
    index = p.get("index", p.get("step_index"))
    step = f"{step_number(index)} " if isinstance(index, int) else ""
    if event_type == "task.created":
        text = f"goal {p.get('goal', '')!r}, profile {p.get('profile', '')}"
    elif event_type in ("plan.created", "plan.revised"):
        steps = p.get("steps") or []
        titles = "; ".join(f"{step_number(s.get('index'))} {s.get('title', '')}" for s in steps if isinstance(s, dict))
        start = f" from {step_number(p['from_index'])}" if isinstance(p.get("from_index"), int) else ""
        why = f" because {p['reason']}" if p.get("reason") else ""
        text = f"v{p.get('version', '?')}{start}{why}: {len(steps)} steps: {titles}"
    elif event_type == "step.completed":
        reused = f", {p['journal_hits']} reused from the journal" if p.get("journal_hits") else ""
        text = f"{step}{p.get('title', '')!r} attempt {p.get('attempt', '?')}{reused}: {value_text(p.get('output'))}"
    elif event_type == "step.failed":
        text = f"{step}{p.get('title', '')!r}: {p.get('error', '')}"
    elif event_type == "approval.decided":
        why = f": {p['comment']}" if p.get("comment") else ""
        edited = " with edited arguments" if p.get("edited_arguments") is not None else ""
        text = f"#{p.get('approval_id', '?')} {p.get('decision', '')}{edited} by {p.get('by', '')}{why}"
    elif "reason" in p:
        text = str(p.get("reason") or "")  # the reason names its step itself
    elif "result" in p:
        text = value_text(p["result"])
    else:
        text = ", ".join(f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in p.items())
    return cut(text, EVENT_LINE_CHARS)


def how_it_continues(task_id: str) -> str:
    """After a decision: who runs the task next. In-process mode has no worker: a person runs `drive`."""
    if settings.HORIZON_DISPATCH == "celery":
        return "a worker continues the task now"
    return f"nothing runs it until you run: {manage_py()} drive --task {task_id}"


def manage_py() -> str:
    """How to run manage.py here, as printed for a person to paste: `python manage.py` where `python`
    is this interpreter (an activated virtualenv), else the interpreter's path (`.venv/bin/python`)."""
    exe = sys.executable
    if not exe or os.environ.get("VIRTUAL_ENV") == sys.prefix:
        return "python manage.py"
    local = os.path.join(".venv", "bin", "python")  # the project's own virtualenv (scripts/bootstrap.sh)
    if os.path.exists(local) and os.path.realpath(local) == os.path.realpath(exe):
        return f"{local} manage.py"
    return f"{exe} manage.py"
