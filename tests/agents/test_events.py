from __future__ import annotations

import pytest

from agents.events import PLAN_CREATED, SCHEMA_VERSIONS, EventSchemaError, TaskState, new_event, rebuild
from agents.types import CheckpointRecord, EventRecord


def event(seq: int, type_: str, payload: dict, version: int = 1) -> EventRecord:
    return EventRecord(seq=seq, type=type_, payload=payload, schema_version=version)


def test_every_event_type_has_a_schema_version() -> None:
    assert all(v >= 1 for v in SCHEMA_VERSIONS.values())
    assert new_event(PLAN_CREATED, {"version": 1, "steps": []}).schema_version == SCHEMA_VERSIONS[PLAN_CREATED]
    with pytest.raises(EventSchemaError):
        new_event("no.such.event", {})


def test_rebuild_from_a_checkpoint_applies_only_later_events() -> None:
    log = [
        event(1, "task.created", {"goal": "g"}),
        event(2, "plan.created", {"version": 1, "steps": [{}, {}], "usage": {"model_calls": 1, "prompt_tokens": 5}}),
        event(3, "step.completed", {"index": 0, "usage": {"model_calls": 2, "completion_tokens": 3}}),
    ]
    full = rebuild(None, log)
    assert (full.next_step, full.step_count, full.model_calls, full.prompt_tokens) == (1, 2, 3, 5)
    checkpoint = CheckpointRecord(seq=1, event_seq=2, state=rebuild(None, log[:2]).to_json())
    assert rebuild(checkpoint, log[2:]) == full


def test_a_gap_in_the_log_is_detected() -> None:
    with pytest.raises(EventSchemaError, match="gap"):
        rebuild(None, [event(1, "task.created", {}), event(3, "task.created", {})])


def test_unknown_types_and_newer_schemas_are_refused_rather_than_misread() -> None:
    with pytest.raises(EventSchemaError, match="unknown type"):
        rebuild(None, [event(1, "mystery", {})])
    with pytest.raises(EventSchemaError, match="schema v99"):
        rebuild(None, [event(1, "task.created", {}, version=99)])
    with pytest.raises(EventSchemaError, match="newer"):
        TaskState.from_json({"version": 99})


def test_the_checkpoint_state_is_what_asdict_gives_and_shares_nothing_with_the_state() -> None:
    from dataclasses import asdict

    state = TaskState(next_step=3, recent=[{"index": 2, "title": "t", "summary": "s"}], extra={"k": {"nested": [1]}})
    data = state.to_json()
    assert data == asdict(state)
    data["recent"][0]["summary"] = "changed"
    data["extra"]["k"]["nested"].append(2)
    assert state.recent[0]["summary"] == "s" and state.extra == {"k": {"nested": [1]}}
    assert TaskState.from_json(asdict(state)) == state
