"""Context compaction: when a step's prompt would exceed the profile's budget, the older part of the
step's conversation is summarised by the model and the summary replaces it in the prompt.

The prompt of a step is [system, the step's prompt (goal, plan, recent steps, instructions), the
step's own messages...]. The step's prompt is always kept verbatim; messages 1..k-1 (the older tool
turns) are replaced by one summary message, and a later compaction folds the previous summary and
the next turns into a new one. The cut never separates an assistant's tool calls from their
results (the API requires them together).

Nothing is deleted: the step's transcript (its raw messages, stored on the step row) stays whole,
and each compaction is recorded as a `context.compacted` event naming the transcript range it
replaced, the events the replaced messages were built on, and the summary text. The summarisation
is a model call like any other, journaled under `<step scope>compact/c<n>`, so a resumed step
reuses it instead of asking again.

The budget counts the messages (agents/llm/tokens.py, offline), not the tool schemas sent beside them.
A step that pauses (a wait, an approval) records its compactions when it completes or fails: the
resumed step replays its calls, the summaries included, from the journal, as it does for reviews.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.journal import Journal, call_key
from agents.json_value import as_list, as_object
from agents.llm.tokens import count_tokens
from agents.model import Model
from agents.types import JSON, LLMRequest, LLMResponse

SUMMARY_PURPOSE = "summarise"
SUMMARY_SYSTEM_PROMPT = (
    "You compress the working context of an agent. Summarise the conversation below: keep every fact, "
    "identifier, number, file name, decision and open question the agent will need to finish its step; "
    "drop pleasantries and repetition. Answer with the summary only."
)
# The kept tail gets at most this share of the budget, so that one compaction makes room for several turns.
TAIL_SHARE = 0.5
SUMMARY_EVENT_MAX_CHARS = 4000
RENDER_MESSAGE_MAX_CHARS = 4000  # each message as the summariser sees it


def render(messages: list[dict[str, JSON]]) -> str:
    """Messages as plain text for the summariser: role, content, and tool calls with their arguments."""
    lines = []
    for message in messages:
        text = str(message.get("content") or "")
        for call in as_list(message.get("tool_calls") or []):
            function = as_object(call.get("function", {})) if isinstance(call, dict) else {}
            text += f"\n[calls {function.get('name')}({function.get('arguments')})]"
        if len(text) > RENDER_MESSAGE_MAX_CHARS:
            text = text[:RENDER_MESSAGE_MAX_CHARS] + f"... [{len(text)} characters]"
        lines.append(f"{message.get('role')}: {text.strip()}")
    return "\n".join(lines)


def summary_request(previous: str, messages: list[dict[str, JSON]], *, step_index: int, step_title: str) -> LLMRequest:
    body = render(messages)
    if previous:
        body = f"Summary so far:\n{previous}\n\nThen:\n{body}"
    return LLMRequest(
        purpose=SUMMARY_PURPOSE,
        messages=({"role": "system", "content": SUMMARY_SYSTEM_PROMPT}, {"role": "user", "content": body}),
        step_index=step_index,
        step_title=step_title,
    )


SUMMARY_HEADER = re.compile(r"^\[Summary of this step's earlier messages 1-\d+ \((\d+) tool results\), compacted")


def summary_message(summary: str, messages: list[dict[str, JSON]], upto: int) -> dict[str, JSON]:
    # The count of tool results replaced lets a stateless model (the scripted one) tell how far the
    # step has got, as it would by counting the tool messages themselves.
    results = sum(1 for m in messages[1:upto] if m.get("role") == "tool")
    header = f"[Summary of this step's earlier messages 1-{upto - 1} ({results} tool results), compacted to fit the context]"
    return {"role": "user", "content": f"{header}\n{summary}"}


def tool_results_seen(messages: tuple[dict[str, JSON], ...] | list[dict[str, JSON]]) -> int:
    """Tool results in a prompt, those folded into a compaction summary included."""
    seen = 0
    for message in messages:
        if message.get("role") == "tool":
            seen += 1
        elif message.get("role") == "user" and (found := SUMMARY_HEADER.match(str(message.get("content") or ""))):
            seen += int(found.group(1))
    return seen


def _cut(messages: list[dict[str, JSON]], start: int, tail_budget: int, model: str) -> int:
    """Where the kept tail begins: the earliest message index > start whose tail fits `tail_budget`,
    at a message that is not a tool result; at least the last assistant turn is kept."""
    boundaries = [i for i in range(start + 1, len(messages)) if messages[i].get("role") != "tool"]
    if not boundaries:
        return start
    for i in boundaries:
        if count_tokens(messages[i:], model) <= tail_budget:
            return i
    return boundaries[-1]


def token_upper_bound(view: list[dict[str, JSON]]) -> int:
    """A bound that needs no tokenizer: a byte-level BPE token covers at least one byte, and the JSON
    of the messages holds every byte of their texts, so this many bytes (plus the chat framing) bounds
    the count from above. Most prompts are far under the budget and skip the count (and loading a
    vocabulary) entirely."""
    return len(json.dumps(view, ensure_ascii=False).encode()) + 4 * len(view) + 3


@dataclass
class Compactor:
    """The compaction state of one run of a step: what is summarised so far, and the records of it."""

    budget: int  # prompt tokens; 0: never compact
    model_name: str = ""  # for the token counter's vocabulary
    upto: int = 1  # messages[1:upto] are replaced by the summary
    summary: str = ""
    records: list[dict[str, JSON]] = field(default_factory=list)

    def view(self, messages: list[dict[str, JSON]]) -> list[dict[str, JSON]]:
        """The step's messages as the model sees them."""
        if not self.summary:
            return list(messages)
        return [messages[0], summary_message(self.summary, messages, self.upto), *messages[self.upto :]]

    def prompt(
        self,
        system: dict[str, JSON],
        messages: list[dict[str, JSON]],
        *,
        journal: Journal,
        model: Model,
        task_id: str,
        plan_version: int,
        scope: str,
        step_index: int,
        step_title: str,
        events_through: int,
        on_response: Callable[[LLMResponse], None],
    ) -> tuple[dict[str, JSON], ...]:
        """The messages to send: compacted first when they would exceed the budget."""
        view = [system, *self.view(messages)]
        if not self.budget or token_upper_bound(view) <= self.budget:
            return tuple(view)
        before = count_tokens(view, self.model_name)
        if before <= self.budget:
            return tuple(view)
        fixed = count_tokens([system, messages[0]], self.model_name)
        cut = _cut(messages, self.upto, max(0, int(self.budget * TAIL_SHARE) - fixed), self.model_name)
        if cut <= self.upto:
            return tuple(view)  # nothing older left to fold in: the tail alone is over budget
        request = summary_request(self.summary, messages[self.upto : cut], step_index=step_index, step_title=step_title)
        key = call_key(task_id, plan_version, f"{scope}compact", len(self.records))
        response = journal.model_call(key, model, request)
        on_response(response)
        self.summary = (response.content or "").strip() or render(messages[self.upto : cut])[:SUMMARY_EVENT_MAX_CHARS]
        self.upto = cut
        view = [system, *self.view(messages)]
        after = count_tokens(view, self.model_name)
        self.records.append(
            {
                "step_index": step_index,
                "scope": scope,
                # Half-open ranges into the step's transcript (the step row keeps every message).
                "messages": {"from": 1, "to": cut},
                # The replaced messages stand on the task's log as it was when the step's prompt was
                # built (goal, plan, earlier steps): events 1..events_through. Their own turns are no
                # events; they are the transcript range above and the journal's calls of this step.
                "events": {"from": 1, "to": events_through},
                "summary_key": key,
                "summary": self.summary[:SUMMARY_EVENT_MAX_CHARS],
                "tokens_before": before,
                "tokens_after": after,
                "budget": self.budget,
            }
        )
        return tuple(view)


def summarise_offline(request: LLMRequest) -> str:
    """A deterministic summary for offline models: the first few lines of the conversation, shortened."""
    body = str(request.messages[-1].get("content") or "")
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    shown = " | ".join(line[:60] for line in lines[:8])
    return f"Earlier in this step ({len(lines)} lines): {shown}"
