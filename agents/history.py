"""Episodic memory: the task's own event log, searchable by the agent and by operators.

The log is already the complete, append-only record of what happened (plans, step results,
signals, approvals, failures); this module ranks its events against a few words. A plain keyword
score (how many of the query's words appear in an event's type and payload) is enough for "what
did step 3 find about the tenant's SSO" and needs no index: a task's log is read once per search.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agents.types import EventRecord

WORD = re.compile(r"[\w.-]+", re.UNICODE)
EXCERPT_CHARS = 300
MAX_RESULTS = 20


@dataclass(frozen=True)
class HistoryHit:
    seq: int
    type: str
    score: int
    excerpt: str

    def to_json(self) -> dict[str, object]:
        return {"seq": self.seq, "type": self.type, "score": self.score, "excerpt": self.excerpt}


def search_events(events: list[EventRecord], query: str, *, limit: int = 5) -> list[HistoryHit]:
    """The events that mention most of the query's words, best first (newer first on a tie)."""
    words = {w.lower() for w in WORD.findall(query)}
    if not words:
        raise ValueError("the query needs at least one word")
    hits = []
    for event in events:
        text = f"{event.type} {json.dumps(event.payload, ensure_ascii=False, sort_keys=True)}"
        lowered = text.lower()
        score = sum(1 for w in words if w in lowered)
        if score:
            first = min((lowered.find(w) for w in words if w in lowered), default=0)
            start = max(0, first - EXCERPT_CHARS // 3)
            hits.append(HistoryHit(event.seq, event.type, score, text[start : start + EXCERPT_CHARS]))
    hits.sort(key=lambda h: (-h.score, -h.seq))
    return hits[: max(1, min(limit, MAX_RESULTS))]
