"""Hostile text from the model is data: a NUL, a lone surrogate and a 10,000-character path, sent by the
scripted model as a tool argument and as a final answer, end the task on its first run of ticks on
PostgreSQL (completed, or the step failed with a readable reason), never through the attempt cap."""

from __future__ import annotations

from typing import Any

import pytest

from agents.runner import Runner
from agents.scripted import ScriptedModel
from tasks_app.models import AgentTask, Event, Step
from tasks_app.store import DjangoStore
from tests.conftest import make_scenario

NUL = "before\x00after"
SURROGATE = "before\ud800after"
LONG_PATH = "d/" * 4999 + "ab"  # 10,000 characters
HOSTILE = {"nul": NUL, "surrogate": SURROGATE, "long_path": LONG_PATH}


def _drive(scenario: dict[str, Any]) -> tuple[AgentTask, list[Step], int]:
    runner = Runner(DjangoStore(), ScriptedModel(scenario))
    task_id = runner.create("Handle hostile text", {}, max_attempts=3)
    ticks = 0
    for _ in range(20):
        outcome = runner.tick(task_id)  # raises if a tick crashes: the test then fails
        ticks += 1
        if not outcome.runnable:
            break
    task = AgentTask.objects.get(pk=task_id)
    return task, list(Step.objects.filter(task=task).order_by("index")), ticks


def _readable(text: str) -> bool:
    return "\x00" not in text and all(not 0xD800 <= ord(c) <= 0xDFFF for c in text)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("argument", ["path", "content"])
def test_a_hostile_tool_argument_is_refused_to_the_model_and_the_task_ends(kind: str, argument: str) -> None:
    value = HOSTILE[kind]
    arguments = {"path": "notes.txt", "content": "text", argument: value}
    scenario = make_scenario(1, tool_steps={0: [{"tool": "write_file", "arguments": arguments}, {"final": "tried"}]})
    task, steps, ticks = _drive(scenario)
    assert task.status == "completed", (task.status, task.status_reason)
    assert [s.attempts for s in steps] == [1]
    tool_result = next(e for e in Event.objects.filter(task=task).order_by("seq") if e.type == "step.completed")
    assert tool_result.payload["output"] == "tried"
    assert "never" not in task.status_reason
    # What the model heard back: a tool error naming the problem, not a crash (10,000 characters
    # of content are just a file).
    transcript = str(steps[0].transcript)
    assert _readable(transcript)
    if (argument, kind) == ("content", "long_path"):
        assert "wrote 10000 characters" in transcript
    else:
        expected = {"nul": "NUL character", "surrogate": "lone surrogate", "long_path": "the limit is 500"}[kind]
        assert "error" in transcript and expected in transcript


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_final_answer_is_cleaned_and_the_task_completes(kind: str) -> None:
    scenario = make_scenario(1, tool_steps={0: [{"final": HOSTILE[kind]}]})
    task, steps, ticks = _drive(scenario)
    assert task.status == "completed", (task.status, task.status_reason)
    assert [s.attempts for s in steps] == [1]
    output = steps[0].result["output"]
    assert _readable(output) and output.startswith("before" if kind != "long_path" else "d/")


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("value", "expected"), [(_nested(500), "nested more than 64 levels"), (2**200, "beyond 64 bits")], ids=["deep", "huge"]
)
def test_deep_json_and_huge_numbers_in_tool_arguments_are_refused_to_the_model(value: Any, expected: str) -> None:
    scenario = make_scenario(
        1, tool_steps={0: [{"tool": "write_file", "arguments": {"path": "a", "content": value}}, {"final": "ok"}]}
    )
    task, steps, _ = _drive(scenario)
    assert task.status == "completed" and [s.attempts for s in steps] == [1]
    assert expected in str(steps[0].transcript)


def test_the_openai_client_refuses_deep_and_huge_arguments_as_a_parse_error() -> None:
    from agents.llm.client import parse_tool_call

    for raw, expected in (("[" * 5000 + "]" * 5000, "nested more than"), ('{"n": ' + "9" * 5000 + "}", "a number of 5000")):
        call = parse_tool_call({"id": "c1", "function": {"name": "write_file", "arguments": raw}})
        assert call.arguments == {} and expected in call.parse_error, call.parse_error


@pytest.mark.parametrize("content", ["[" * 5000 + "]" * 5000, '{"steps": [{"title": "t", "n": ' + "9" * 5000 + "}]}"])
def test_a_plan_nested_thousands_deep_or_with_a_huge_number_is_an_invalid_plan_not_a_crash(content: str) -> None:
    from agents.errors import PlanInvalid
    from agents.planner import parse_plan

    with pytest.raises(PlanInvalid, match="the plan is refused"):
        parse_plan(content, max_steps=10)
