"""Canonical fingerprints (issue 15, item 1): a store's encoding never makes a resumed step diverge.

The reported bug: a model sends a tool call with two arguments the tool does not take; the
validation error lists them in the order the keys arrived; PostgreSQL's jsonb hands the recorded
answer back with its own key order (shorter keys first); on resume the error text, and so the
next request's digest, differed and the step escalated with "recorded for a different request".
"""

from __future__ import annotations

import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import events as ev
from agents.executor import _assistant_message, _tool_message
from agents.inmemory_store import InMemoryStore
from agents.runner import Runner
from agents.scripted import ScriptedModel, validate_scenario
from agents.status import TaskStatus
from agents.tools.registry import ToolContext, ToolRegistry, validate_arguments
from agents.types import JournalEntry, LLMRequest, LLMResponse, NewTask, ToolCall
from tasks_app.store import DjangoStore

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])


def _store(kind: str):  # type: ignore[no-untyped-def]
    return InMemoryStore() if kind == "memory" else DjangoStore(using="sqlite" if kind == "sqlite" else "default")


def test_validation_errors_do_not_depend_on_the_order_keys_arrive_in() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    one = validate_arguments(schema, {"alpha": 1, "zeta": 2, "text": 3})
    other = validate_arguments(schema, {"text": 3, "zeta": 2, "alpha": 1})
    assert one == other
    assert one == [
        "unexpected argument 'alpha'",
        "unexpected argument 'zeta'",
        "argument 'text' does not match {'type': 'string'}",
    ]


class Crash(Exception):
    """A worker dying in the middle of a step (the tick gives its lease back and re-raises)."""


def _registry(crashes: list[int]) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool(idempotent=True)
    def echo(ctx: ToolContext, text: str) -> str:
        "Say the text back."
        return text

    @tools.tool(idempotent=True)
    def crash_once(ctx: ToolContext) -> str:
        "Die the first time."
        if not crashes:
            crashes.append(1)
            raise Crash("the worker died")
        return "survived"

    return tools


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_a_step_resumed_after_bad_arguments_replays_without_a_mismatch(kind: str) -> None:
    # "alpha" arrives first; jsonb keeps "zeta" (shorter) first.
    scenario = validate_scenario(
        {
            "name": "jsonb-order",
            "plan": [{"title": "Call with bad arguments", "instructions": "x"}],
            "steps": {
                "0": [
                    {"tool": "echo", "arguments": {"alpha": {"y": 1, "b": 2.0}, "zeta": 2}},
                    {"tool": "crash_once", "arguments": {}},
                    {"final": "done"},
                ]
            },
        }
    )
    store = _store(kind)
    runner = Runner(store, ScriptedModel(scenario), _registry([]), lease_seconds=30)
    task_id = runner.create("reproduce the jsonb key order bug")
    assert runner.tick(task_id).decision == "plan"
    with pytest.raises(Crash):
        runner.tick(task_id)
    # The step resumes on the recorded answers (read back from the store), as after a kill.
    time.sleep(1.2)  # the crashed tick gave its lease back due in 1 s
    result = runner.run(task_id)
    events = store.events(task_id)
    assert result.status == "completed", result.reason
    assert not [e for e in events if e.type in (ev.TASK_ESCALATED, ev.CODE_CHANGED)]
    completed = next(e for e in events if e.type == ev.STEP_COMPLETED)
    assert completed.payload["journal_hits"] >= 1


@st.composite
def shuffled(draw: st.DrawFn, value: object) -> object:
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        keys = draw(st.permutations(list(value)))
        return {k: draw(shuffled(value[k])) for k in keys}
    if isinstance(value, list):
        return [draw(shuffled(v)) for v in value]
    return value


TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8)
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20
)
ARGUMENTS = st.dictionaries(TEXT, JSON_VALUES, max_size=6)


def _next_request(answer: LLMResponse, output: object) -> LLMRequest:
    """The request a step sends after `answer`: its tool call, the validation error, and a result."""
    call = answer.tool_calls[0]
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    error = "; ".join(validate_arguments(schema, call.arguments))
    messages = (
        _assistant_message(answer),
        _tool_message(call.call_id, {"ok": False, "error": error}),
        _tool_message("c2", {"ok": True, "output": output}),
    )
    return LLMRequest(purpose="step", messages=messages)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_the_next_request_digest_survives_any_store(kind: str) -> None:
    store = _store(kind)
    task_id = store.create_task(NewTask(goal="property"))
    lease = store.claim(task_id, owner="w", lease_seconds=600)
    assert lease is not None

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data(), arguments=ARGUMENTS, output=JSON_VALUES)
    def check(data: st.DataObject, arguments: dict, output: object) -> None:
        sent = data.draw(shuffled(arguments))
        answer = LLMResponse(content=None, tool_calls=(ToolCall(name="echo", arguments=sent, call_id="c1"),))
        before = _next_request(answer, data.draw(shuffled(output))).digest()
        key = f"{task_id}/p1/s0/c{uuid.uuid4().hex}"
        store.journal_complete(
            lease, JournalEntry(key=key, kind="llm", name="m", request_digest="-", status="completed", result=answer.to_json())
        )
        # Tool results come back through the journal too (and their output through the store).
        result_key = key + "r"
        store.journal_complete(
            lease,
            JournalEntry(
                key=result_key,
                kind="tool",
                name="echo",
                request_digest="-",
                status="completed",
                result={"ok": True, "output": output},
            ),
        )
        entry = store.journal_get(key)
        result = store.journal_get(result_key)
        assert entry is not None and result is not None
        after = _next_request(LLMResponse.from_json(entry.result), result.result["output"]).digest()
        assert after == before

    check()
    assert store.get_task(task_id).status == TaskStatus.RUNNING
