"""Offline scripted scenarios for sub-agents: a parent whose first step spawns children ("goals"
routes each child's requests to its own script by a text in its goal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.scripted import ScriptedModel, validate_scenario


def child_goal(i: int) -> str:
    return f"Research part {i} of the report"


def fan_out_scenario(
    n: int = 3, *, policy: str = "fail_parent", shares: list[float] | None = None, failing: tuple[int, ...] = ()
) -> dict[str, Any]:
    """The parent plans 2 steps; step 0 spawns n children and reports their results; step 1 finishes.
    A child whose index is in `failing` aborts its task."""
    children: list[dict[str, Any]] = []
    for i in range(n):
        child: dict[str, Any] = {"goal": child_goal(i), "context": {"part": i}}
        if shares is not None:
            child["budget_share"] = shares[i]
        children.append(child)
    goals: dict[str, Any] = {}
    for i in range(n):
        steps = (
            {"0": [{"tool": "abort_task", "arguments": {"reason": f"part {i} cannot be researched"}}, {"final": "x"}]}
            if i in failing
            else {
                "0": [
                    {"tool": "write_file", "arguments": {"path": f"part{i}.md", "content": f"part {i}"}},
                    {"final": f"part {i} done"},
                ]
            }
        )
        goals[f"part {i} of"] = {"name": f"child-{i}", "plan": [{"title": f"Research part {i}"}], "steps": steps}
    return validate_scenario(
        {
            "name": "fan-out",
            "plan": [{"title": "Split the work"}, {"title": "Write the report"}],
            "steps": {
                "0": [
                    {"tool": "spawn_subtasks", "arguments": {"children": children, "on_child_failure": policy}},
                    {"final": "children finished"},
                ],
                "1": [{"final": "report written"}],
            },
            "goals": goals,
        }
    )


def fan_out_model(**kwargs: Any) -> ScriptedModel:
    return ScriptedModel(fan_out_scenario(**kwargs))


def write_scenario(path: Path, scenario: dict[str, Any]) -> Path:
    path.write_text(json.dumps(scenario))
    return path
