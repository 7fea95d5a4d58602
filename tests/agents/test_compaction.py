"""Context compaction: a step whose own messages outgrow the profile's prompt budget has its older
messages summarised; the event records the ranges; the summary call is journaled and a resumed step
reuses it; the raw transcript stays whole."""

from __future__ import annotations

import pytest

from agents.compaction import SUMMARY_PURPOSE, Compactor, summary_request, token_upper_bound
from agents.errors import TransientError
from agents.events import rebuild
from agents.inmemory_store import InMemoryStore
from agents.llm.tokens import count_tokens
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.scripted import ScriptedModel, validate_scenario
from agents.types import LLMRequest, LLMResponse
from tests.support.queue_model import QueueModel, call, final, plan

BUDGET = 700
BIG = "\n".join(f"line {i}: the quarterly figure for region {i} is {i * 37} units" for i in range(40))  # ~600 tokens


def long_step() -> list[LLMResponse]:
    """Write a big file, then read it back four times: each read adds ~600 tokens to the step's messages."""
    return [
        call("write_file", {"path": "report.txt", "content": BIG}),
        *[call("read_file", {"path": "report.txt"}) for _ in range(4)],
        final("the report is read"),
    ]


def profiles(budget: int = BUDGET) -> dict[str, AgentProfile]:
    return {"default": AgentProfile(name="default", max_prompt_tokens=budget)}


class FailAfter:
    """Delegates to a model, then fails (as a worker dying would) once `n` step requests were answered."""

    def __init__(self, inner: QueueModel, n: int) -> None:
        self.inner, self.n, self.name = inner, n, inner.name

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "step" and self.inner.by_purpose["step"] >= self.n:
            raise TransientError("the worker went away")
        return self.inner.complete(request)


def compacted(store: InMemoryStore, task_id: str) -> list[dict]:
    return [e.payload for e in store.events(task_id) if e.type == "context.compacted"]


def test_a_step_over_its_prompt_budget_is_compacted_and_the_event_records_the_ranges() -> None:
    store = InMemoryStore()
    model = QueueModel(plan=[plan("read the report")], step=long_step())
    result = Runner(store, model, profiles=profiles()).start("summarise the report")
    assert result.status == "completed", result.reason
    task_id = result.task_id

    # The raw transcript is whole: the step prompt, 5 tool turns (assistant + tool) and the answer.
    transcript = store.step(task_id, 0).transcript
    assert len(transcript) == 12 and [m["role"] for m in transcript[:3]] == ["user", "assistant", "tool"]

    events = compacted(store, task_id)
    assert events, "the step went over budget and was not compacted"
    step_requests = [r for r in model.requests if r.purpose == "step"]
    summaries = [r for r in model.requests if r.purpose == SUMMARY_PURPOSE]
    assert len(summaries) == len(events)
    for n, payload in enumerate(events):
        cut = payload["messages"]["to"]
        assert payload["messages"]["from"] == 1 and 1 < cut < len(transcript)
        assert transcript[cut]["role"] != "tool"  # never between a tool call and its result
        # The events the step's prompt was built on: task.created (1) and plan.created (2).
        assert payload["events"] == {"from": 1, "to": 2}
        assert payload["summary_key"] == f"{task_id}/p1/s0compact/c{n}"
        assert payload["tokens_before"] > BUDGET and payload["tokens_after"] < payload["tokens_before"]
        assert store.journal_get(payload["summary_key"]).status == "completed"  # type: ignore[union-attr]
    # The ranges only grow: each compaction folds the previous summary and the next turns.
    assert [p["messages"]["to"] for p in events] == sorted({p["messages"]["to"] for p in events})

    # The summariser saw exactly the replaced messages; the step's next request had the summary instead.
    first = events[0]
    assert summaries[0].messages[1]["content"].count("tool:") == sum(
        1 for m in transcript[1 : first["messages"]["to"]] if m["role"] == "tool"
    )
    after = next(r for r in step_requests if any("compacted to fit" in str(m.get("content")) for m in r.messages))
    assert after.messages[1] == {"role": "user", "content": transcript[0]["content"]}  # the step's prompt, verbatim
    assert first["summary"] in after.messages[2]["content"]
    assert count_tokens(list(step_requests[-1].messages)) < count_tokens(
        [{"role": "system", "content": step_requests[-1].messages[0]["content"]}, *transcript[:-1]]
    )
    # The compactions are in the log before the step's completion, and the log still replays.
    types = [e.type for e in store.events(task_id)]
    assert types.index("context.compacted") < types.index("step.completed")
    assert rebuild(None, store.events(task_id)).to_json() == store.latest_checkpoint(task_id).state  # type: ignore[union-attr]


def test_no_compaction_under_budget_or_when_disabled() -> None:
    for budget in (0, 100_000):
        store = InMemoryStore()
        model = QueueModel(plan=[plan("read the report")], step=long_step())
        result = Runner(store, model, profiles=profiles(budget)).start("summarise the report")
        assert result.status == "completed" and compacted(store, result.task_id) == []
        assert model.by_purpose[SUMMARY_PURPOSE] == 0


def test_a_resumed_step_reuses_the_journaled_summary_instead_of_asking_again() -> None:
    store = InMemoryStore()
    runner = Runner(store, FailAfter(QueueModel(plan=[plan("read the report")], step=long_step()), 5), profiles=profiles())
    task_id = runner.create("summarise the report")
    runner.tick(task_id)  # the plan
    with pytest.raises(TransientError):
        runner.tick(task_id)  # the step: compacted, then the worker "dies" before it finishes
    summary_keys = [e.key for e in store.journal_entries(task_id) if "compact" in e.key]
    assert summary_keys, "the first attempt did not get as far as a compaction"

    # A new worker with a model that knows only the answer still owed: the last one.
    fresh = QueueModel(step=long_step()[5:])
    resumed = Runner(store, fresh, profiles=profiles())
    outcome = resumed.tick(task_id)
    assert outcome.committed and outcome.status == "completed"
    # One model call: the step's last. Every earlier call, the summaries included, came from the journal.
    assert dict(fresh.by_purpose) == {"step": 1}
    assert outcome.journal_hits == 10 + len(summary_keys)  # 5 model calls, 5 tool calls, the summaries
    assert [e["summary_key"] for e in compacted(store, task_id)] == summary_keys
    assert len(store.step(task_id, 0).transcript) == 12


def test_the_scripted_model_summarises_deterministically_offline() -> None:
    model = ScriptedModel(validate_scenario({"plan": [{"title": "a"}]}))
    messages = [{"role": "user", "content": "step"}, {"role": "assistant", "content": "looked it up: t-42"}]
    request = summary_request("", messages, step_index=0, step_title="a")
    first, second = model.complete(request), model.complete(request)
    assert first.content == second.content and "t-42" in (first.content or "")


def test_a_tail_alone_over_budget_is_sent_as_it_is() -> None:
    compactor = Compactor(budget=10)
    messages = [{"role": "user", "content": "x " * 200}]
    prompt = compactor.prompt(
        {"role": "system", "content": "s"},
        messages,
        journal=None,  # type: ignore[arg-type] - nothing older to summarise: the journal is never used
        model=None,  # type: ignore[arg-type]
        task_id="t",
        plan_version=1,
        scope="s0",
        step_index=0,
        step_title="a",
        events_through=2,
        on_response=lambda r: None,
    )
    assert prompt == ({"role": "system", "content": "s"}, *messages) and compactor.records == []


def test_a_step_that_fails_after_compacting_keeps_its_compactions_in_the_log() -> None:
    store = InMemoryStore()
    endless = [call("write_file", {"path": "report.txt", "content": BIG})] + [call("read_file", {"path": "report.txt"})] * 8
    model = QueueModel(plan=[plan("read the report")], step=endless)
    profile = AgentProfile(name="default", max_prompt_tokens=BUDGET, max_model_calls_per_step=6, replan_on_failure=False)
    result = Runner(store, model, profiles={"default": profile}).start("summarise the report")
    assert result.status == "requires_human" and "model calls" in result.reason
    types = [e.type for e in store.events(result.task_id)]
    assert "context.compacted" in types and types.index("context.compacted") < types.index("task.escalated")
    # The summaries were paid for but did not use up the step's six turns.
    assert model.by_purpose["step"] == 6 and model.by_purpose[SUMMARY_PURPOSE] == types.count("context.compacted")


@pytest.mark.parametrize(
    "text",
    ["plain ascii words " * 50, "accentué, naïve façade " * 40, "日本語のテキストです。" * 60, "emoji 🚀🔥✨ " * 40, "x" * 3000],
)
def test_the_no_tokenizer_bound_is_never_below_the_real_count(text: str) -> None:
    view = [{"role": "system", "content": "s"}, {"role": "user", "content": text}, {"role": "tool", "content": text[:99]}]
    assert count_tokens(view) <= token_upper_bound(view)  # a prompt the bound lets through fits for real


def test_a_step_that_waits_after_compacting_records_its_compactions_once_when_it_completes() -> None:
    from tests.agents.test_waits import HOUR, Harness

    h = Harness([*long_step()[:3], call("sleep_for", {"seconds": HOUR}), *long_step()[3:]], max_prompt_tokens=BUDGET)
    paused = h.tick()
    assert paused.status == "waiting" and h.events("context.compacted") == []  # only the pause is recorded
    asked = h.model.by_purpose[SUMMARY_PURPOSE]
    assert asked >= 1
    h.clock.advance(HOUR + 1)
    done = h.tick()
    assert done.status == "completed"
    compactions = [e.payload for e in h.events("context.compacted")]
    # The summaries made before the wait were replayed, not asked again, and each is recorded once.
    assert len(compactions) == h.model.by_purpose[SUMMARY_PURPOSE] >= asked
    assert len({c["summary_key"] for c in compactions}) == len(compactions)
    # After the wait the step's prompt was built on a longer log: task.waiting is part of it now.
    waiting_seq = h.events("task.waiting")[0].seq
    assert all(c["events"] == {"from": 1, "to": waiting_seq} for c in compactions)
