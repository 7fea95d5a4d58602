from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.errors import ScenarioError
from agents.scripted import DEFAULT_SCENARIO, ScriptedModel, load_scenario
from agents.tools.registry import ToolContext, ToolError, ToolRegistry, derive_parameters, validate_arguments
from agents.tools.workspace import confine
from agents.types import LLMRequest


def test_the_bundled_scenario_loads() -> None:
    model = ScriptedModel.from_file(DEFAULT_SCENARIO)
    assert model.offline and model.name.startswith("scripted:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "top level must be an object"),
        ('{"plan": []}', "non-empty list"),
        ('{"plan": [{"title": ""}]}', "non-empty 'title'"),
        ('{"plan": [{"title": "a"}], "steps": {"x": []}}', "not a step index"),
        ('{"plan": [{"title": "a"}], "steps": {"0": [{"tool": "t"}]}}', "must end with a 'final'"),
        ('{"plan": [{"title": "a"}], "steps": {"0": [{"oops": 1}]}}', "needs 'final' or 'tool'"),
    ],
)
def test_malformed_scenarios_get_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_a_missing_scenario_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "absent.json")


def test_the_scripted_model_is_stateless_per_turn() -> None:
    scenario = {
        "plan": [{"title": "a"}],
        "steps": {"0": [{"tool": "t", "arguments": {"x": 1}}, {"final": "end of {title}"}]},
    }
    model = ScriptedModel(load_scenario_from(scenario))
    first = LLMRequest(purpose="step", messages=({"role": "user", "content": "go"},), step_index=0, step_title="a")
    assert model.complete(first).tool_calls[0].name == "t"
    assert model.complete(first).tool_calls[0].arguments == {"x": 1}  # same question, same answer
    second = LLMRequest(
        purpose="step", messages=(*first.messages, {"role": "tool", "content": "1"}), step_index=0, step_title="a"
    )
    assert model.complete(second).content == "end of a"
    plan = model.complete(LLMRequest(purpose="plan", messages=()))
    assert json.loads(plan.content or "")["steps"][0]["title"] == "a"


def load_scenario_from(data: dict) -> dict:
    from agents.scripted import validate_scenario

    return validate_scenario(data)


def test_schemas_are_derived_from_type_hints() -> None:
    def sample(ctx: ToolContext, path: str, count: int, ratio: float = 1.0, tags: list[str] | None = None) -> str:
        return ""

    params = derive_parameters(sample)
    assert params["required"] == ["path", "count"]
    assert params["properties"]["count"] == {"type": "integer"}
    assert params["properties"]["tags"] == {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
    assert params["additionalProperties"] is False
    assert validate_arguments(params, {"path": "a", "count": 1}) == []
    assert validate_arguments(params, {"path": "a", "count": True})  # a bool is not an integer
    assert validate_arguments(params, {"path": "a"}) == ["missing required argument 'count'"]
    assert validate_arguments(params, "nope") == ["arguments must be a JSON object, got str"]


def test_a_tool_needs_type_hints_and_a_known_risk_level() -> None:
    registry = ToolRegistry()
    with pytest.raises(TypeError, match="needs a type hint"):

        @registry.tool()
        def untyped(ctx: ToolContext, x) -> str:  # type: ignore[no-untyped-def]
            return ""

    with pytest.raises(ValueError, match="risk"):

        @registry.tool(risk="dangerous")
        def risky(ctx: ToolContext) -> str:
            return ""


@pytest.mark.parametrize(
    "path", ["../etc/passwd", "/etc/passwd", "a/../../b", "%2e%2e/x", "a\\b", "with\x00nul", "", ".", "a/.."]
)
def test_workspace_paths_outside_the_workspace_are_refused(path: str) -> None:
    with pytest.raises(ToolError):
        confine(path)


def test_workspace_paths_are_normalised() -> None:
    assert confine("a/./b//c.txt") == "a/b/c.txt"
    assert confine("a/x/../b") == "a/b"
