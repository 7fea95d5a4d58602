"""agents/boundary.py: what is refused, what is cleaned, and that each message is one line."""

from __future__ import annotations

import pytest

from agents import boundary
from agents.types import LLMResponse, ToolCall


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": "\\u0000"}', "NUL character"),
        ('{"a": "\\ud800"}', "lone surrogate (U+D800)"),
        ("[" * 3000 + "]" * 3000, "nested more than 64"),
        ("[" * 100 + "]" * 100, "nested more than 64"),
        ('{"n": ' + "1" * 5000 + "}", "a number of 5000 characters"),
        ('{"n": 1e400}', "out of range"),
        ('{"n": NaN}', "NaN is not valid JSON"),
        ("{", "not valid JSON"),
    ],
)
def test_loads_refuses_with_one_line(text: str, expected: str) -> None:
    with pytest.raises(boundary.BoundaryError) as caught:
        boundary.loads(text, "--context")
    message = str(caught.value)
    assert expected in message and "\n" not in message and message.startswith("--context")


def test_loads_accepts_ordinary_json() -> None:
    assert boundary.loads('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_decode_refuses_invalid_utf8_and_nul() -> None:
    with pytest.raises(boundary.BoundaryError, match="not UTF-8 text"):
        boundary.decode(b"\xff\xfe\x00", "goal.yaml")
    with pytest.raises(boundary.BoundaryError, match="NUL"):
        boundary.decode(b"a\x00b", "goal.yaml")
    assert boundary.decode("\ufeffplain".encode()) == "plain"


def test_clean_makes_any_value_storable() -> None:
    deep: object = "x"
    for _ in range(100):
        deep = [deep]
    cleaned = boundary.clean({"t": "a\x00b\udc80", "big": 2**100, "inf": float("inf"), "deep": deep})
    assert boundary.refusal(cleaned) is None
    assert cleaned["t"] == "a\ufffdb\ufffd" and "101 bits" in str(cleaned["big"])  # type: ignore[index]


def test_a_model_answer_with_unstorable_arguments_becomes_a_parse_error_and_its_text_is_cleaned() -> None:
    response = LLMResponse(
        content="said \x00",
        tool_calls=(
            ToolCall(name="write_file", arguments={"path": "a\x00"}, call_id="c"),
            ToolCall(name="t", arguments={"x": 1}),
        ),
    )
    out = LLMResponse.from_json(boundary.model_response(response.to_json()))
    assert out.content == "said \ufffd"
    assert out.tool_calls[0].arguments == {} and "NUL character" in out.tool_calls[0].parse_error
    assert out.tool_calls[1].arguments == {"x": 1} and not out.tool_calls[1].parse_error
