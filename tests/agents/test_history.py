"""Episodic memory: the agent searches its own event log (issue 6, item 2)."""

from __future__ import annotations

import json

import pytest

from agents.history import search_events
from agents.inmemory_store import InMemoryStore
from agents.runner import Runner
from agents.types import EventRecord
from tests.support.queue_model import QueueModel, call, final, plan


def test_search_ranks_events_by_the_words_they_mention() -> None:
    events = [
        EventRecord(1, "task.created", {"goal": "onboard Acme"}),
        EventRecord(2, "step.completed", {"output": "SSO configured through Okta for acme.example"}),
        EventRecord(3, "step.completed", {"output": "seed data imported"}),
        EventRecord(4, "signal.received", {"name": "okta-ready"}),
    ]
    hits = search_events(events, "Okta SSO", limit=5)
    assert [h.seq for h in hits] == [2, 4]
    assert "Okta" in hits[0].excerpt
    with pytest.raises(ValueError, match="at least one word"):
        search_events(events, "  !! ")


def test_the_agent_finds_an_earlier_steps_result_in_its_history() -> None:
    model = QueueModel(
        plan=[plan("configure sso", "write the note")],
        step=[final("SSO configured through Okta"), call("search_history", {"query": "okta"}), final("noted")],
    )
    result = Runner(InMemoryStore(), model).start("onboard Acme")
    assert result.status == "completed"
    found = json.loads(model.requests[-1].messages[-1]["content"])
    assert found[0]["type"] == "step.completed" and "Okta" in found[0]["excerpt"]
