"""The step executor: a ReAct-style tool loop, every call journaled, bounded by budgets.

Each turn asks the model; a plain answer ends the step, tool calls are validated against their
schemas and run through the journal, and their results go back to the model. Whatever the model
gets wrong (an unknown tool, bad or extra arguments, arguments that are not JSON, an empty answer,
an answer cut off at the token limit) goes back to it as an error message and costs a turn of the
step's budget, so a confused model ends in an escalation, never in a loop or a crash.

The context of a step is the system prompt, the goal, a compact summary of the plan and of the
last few steps (from the checkpointed state), and the step's own messages: never the history of
every step, so a prompt at step 1000 is as long as one at step 10. A step whose own messages grow
past the profile's max_prompt_tokens has its older messages summarised (agents/compaction.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from agents.approvals import gate, tool_approval
from agents.canonical import canonical_json, canonical_text, tool_request
from agents.compaction import Compactor
from agents.errors import JournalMismatch, PermanentError, StepBudgetExceeded
from agents.errors import StepRefused as StepRefused  # re-exported: defined in agents.errors
from agents.events import TaskState
from agents.journal import Journal, call_key
from agents.json_value import as_object, as_scalar, as_str
from agents.model import Model
from agents.planner import goal_text
from agents.profiles import AgentProfile
from agents.status import ApprovalStatus
from agents.subtasks import apply_policy, resolve_children
from agents.tools.control import ABORT_TASK, CONTROL_TOOLS, FINISH_STEP, FINISH_TASK
from agents.tools.registry import Tool, ToolContext, ToolRegistry, default_registry
from agents.tools.subtasks import SPAWN_SUBTASKS
from agents.tools.waits import WAIT_TOOLS
from agents.types import JSON, LLMRequest, LLMResponse, StepRecord, TaskRecord, ToolCall
from agents.usage import Spent, check_budget
from agents.waits import WaitResolver, resolve_wait

STEP_SYSTEM_PROMPT = (
    "You are a Horizon agent executing one step of a larger plan. Use the tools when they help. "
    "When the step is done, call finish_step with its result (or answer with the result as plain text). "
    "If the goal is already fully met, call finish_task; if it cannot be achieved at all, call abort_task "
    "with the reason."
)
MAX_TOOL_RESULT_CHARS = 20_000
MAX_TRANSCRIPT_MESSAGE_CHARS = 20_000
EMPTY_ANSWER = "Your answer was empty. Call a tool, or give the step's result."
CUT_OFF = "Your answer was cut off at the output token limit. Give the step's result again, more briefly."


@dataclass
class StepResult:
    """What the step executor hands back for the runner to persist."""

    output: str
    control: str = FINISH_STEP  # or FINISH_TASK / ABORT_TASK: the agent ended the whole task
    spent: Spent = field(default_factory=Spent)
    transcript: list[dict[str, JSON]] = field(default_factory=list)
    compactions: list[dict[str, JSON]] = field(default_factory=list)  # context.compacted payloads


def step_prompt(task: TaskRecord, step: StepRecord, state: TaskState, feedback: str = "") -> str:
    lines = [goal_text(task)]
    lines.append(f"Plan: {state.step_count} steps; {step.index} done so far.")
    for done in state.recent:
        lines.append(f"- step {int(as_scalar(done['index'])) + 1} ({done['title']}): {done['summary']}")
    lines.append(f"Step {step.index + 1} of {state.step_count}: {step.title}")
    if step.instructions:
        lines.append(step.instructions)
    if feedback:
        lines.append(f"A reviewer rejected your previous result for this step: {feedback}\nDo the step again.")
    return "\n".join(lines)


@contextmanager
def _charged_on_failure(spent: Spent, compactor: Compactor) -> Iterator[None]:
    """A step that fails still spent tokens and may have compacted its context: attach both to the
    error, so that the escalation counts them and the log keeps the compactions."""
    try:
        yield
    except PermanentError as exc:
        exc.usage = spent.as_json()
        exc.compactions = compactor.records
        raise


def _capped(message: dict[str, JSON]) -> dict[str, JSON]:
    content = message.get("content")
    if isinstance(content, str) and len(content) > MAX_TRANSCRIPT_MESSAGE_CHARS:
        return {**message, "content": content[:MAX_TRANSCRIPT_MESSAGE_CHARS] + f"... [{len(content)} characters]"}
    return message


def _tool_message(call_id: str, result: dict[str, JSON]) -> dict[str, JSON]:
    # Sorted keys: a result read back from the journal (PostgreSQL's jsonb reorders object keys)
    # must give the model the same text, or the resumed step's next request would not match its record.
    text = canonical_text(result.get("output") if result.get("ok") else {"error": result.get("error")})
    if len(text) > MAX_TOOL_RESULT_CHARS:
        text = text[:MAX_TOOL_RESULT_CHARS] + f"... [truncated from {len(text)} characters]"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _assistant_message(response: LLMResponse) -> dict[str, JSON]:
    message: dict[str, JSON] = {"role": "assistant", "content": response.content}
    if response.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": canonical_text(c.arguments)},
            }
            for c in response.tool_calls
        ]
    return message


class StepExecutor:
    def __init__(
        self,
        tools: ToolRegistry,
        clock: Callable[[], datetime],
        *,
        profiles: Mapping[str, AgentProfile] | None = None,
        children_recheck: float = 60.0,
    ) -> None:
        self.tools = tools
        self.clock = clock  # the runner's: waits compare it with their deadlines
        self.profiles: Mapping[str, AgentProfile] = profiles or {}  # what a sub-agent's profile may name
        self.children_recheck = children_recheck  # seconds: a waiting parent re-checks its children
        # How a wait call is answered: from the journal, the inbox and the clock. Regression replay
        # (agents/regression.py) puts its own here, which answers from the recording.
        self.resolve_wait: WaitResolver = resolve_wait

    def _tool(self, name: str) -> Tool | None:
        if name in CONTROL_TOOLS:
            return self.tools.get(name) or default_registry.get(name)
        return self.tools.get(name)

    def _approved_call(
        self,
        journal: Journal,
        key: str,
        tool: Tool,
        call: ToolCall,
        ctx: ToolContext,
        profile: AgentProfile,
        task: TaskRecord,
        step: StepRecord,
    ) -> dict[str, JSON]:
        """Run the call through the journal, first passing the approval gate when its risk needs one."""
        if tool.risk not in profile.approval_risks:
            return journal.tool_call(key, tool, call, ctx)
        journal.flush()  # the answer that asked for this call is recorded before a person is asked
        decision = gate(journal.store, journal.lease, tool_approval(task.id, step, key, call))
        if decision.status == ApprovalStatus.REJECTED:
            return {
                "ok": False,
                "error": f"a person rejected this call ({decision.decided_by}): {decision.comment or 'no reason given'}",
            }
        if decision.edited_arguments is not None:
            # Edit-then-approve: the person's arguments, validated when they decided, are what runs.
            call = ToolCall(name=call.name, arguments=dict(decision.edited_arguments), call_id=call.call_id)
        return journal.tool_call(key, tool, call, ctx)

    def _check_call(self, call: ToolCall, profile: AgentProfile) -> str:
        """Why this call cannot run ("" when it can): the model hears the reason as the tool's result."""
        if call.parse_error:
            return f"the arguments for {call.name} are not a JSON object: {call.parse_error}"
        tool = self._tool(call.name)
        if tool is None or (profile.tools is not None and call.name not in profile.tools and call.name not in CONTROL_TOOLS):
            return f"unknown tool {call.name!r}"
        errors = tool.validate(call.arguments)
        return f"invalid arguments for {call.name}: " + "; ".join(errors) if errors else ""

    def run(
        self,
        *,
        journal: Journal,
        model: Model,
        task: TaskRecord,
        step: StepRecord,
        state: TaskState,
        profile: AgentProfile,
        scope: str,
        feedback: str = "",
    ) -> StepResult:
        system = STEP_SYSTEM_PROMPT + (f"\n\n{profile.system_prompt}" if profile.system_prompt else "")
        messages: list[dict[str, JSON]] = [{"role": "user", "content": step_prompt(task, step, state, feedback)}]
        schemas = self.tools.schemas(None if profile.tools is None else (*profile.tools, *CONTROL_TOOLS))
        # The control tools are part of every step, whatever registry the runner was given.
        offered = {as_str(as_object(s["function"])["name"]) for s in schemas}
        schemas += tuple(t.schema() for name in sorted(CONTROL_TOOLS - offered) if (t := self._tool(name)) is not None)
        spent = Spent()
        compactor = Compactor(budget=profile.max_prompt_tokens, model_name=profile.model)
        with _charged_on_failure(spent, compactor):
            call_index = 0
            while True:
                # Summaries are paid for (spent) but do not use up the step's turns.
                if spent.model_calls - len(compactor.records) >= profile.max_model_calls_per_step:
                    raise StepBudgetExceeded(
                        f"the step used its {profile.max_model_calls_per_step} model calls without finishing"
                    )
                check_budget(profile, state, spent)
                prompt = compactor.prompt(
                    {"role": "system", "content": system},
                    messages,
                    journal=journal,
                    model=model,
                    task_id=task.id,
                    plan_version=step.plan_version,
                    scope=scope,
                    step_index=step.index,
                    step_title=step.title,
                    events_through=state.last_event_seq,
                    on_response=spent.add,
                )
                request = LLMRequest(
                    purpose="step",
                    messages=prompt,
                    tools=schemas,
                    step_index=step.index,
                    step_title=step.title,
                )
                response = journal.model_call(call_key(task.id, step.plan_version, scope, call_index), model, request)
                call_index += 1
                spent.add(response)

                def done(output: str, control: str = FINISH_STEP) -> StepResult:
                    return StepResult(
                        output=output,
                        control=control,
                        spent=spent,
                        transcript=[_capped(m) for m in messages],
                        compactions=compactor.records,
                    )

                if response.refusal:
                    messages.append({"role": "assistant", "content": None, "refusal": response.refusal})
                    raise StepRefused(f"the model refused step {step.index + 1}: {response.refusal[:500]}")
                if not response.tool_calls:
                    messages.append(_assistant_message(response))
                    if response.finish_reason == "length":
                        messages.append({"role": "user", "content": CUT_OFF})
                    elif not (response.content or "").strip():
                        messages.append({"role": "user", "content": EMPTY_ANSWER})
                    else:
                        return done(response.content or "")
                    continue
                messages.append(_assistant_message(response))
                # One model message, one effect: a call repeated in the same answer (same tool, same
                # canonical arguments) is answered with the first one's result, never run again.
                # It still uses up its call index, so that keys stay where recordings put them.
                answered: dict[str, dict[str, JSON]] = {}
                for call in response.tool_calls:
                    key = call_key(task.id, step.plan_version, scope, call_index)
                    call_index += 1
                    same = "" if call.parse_error else canonical_json(tool_request(call.name, call.arguments))
                    if same and same in answered:
                        messages.append(_tool_message(call.call_id, answered[same]))
                        continue
                    spent.tool_calls += 1
                    problem = self._check_call(call, profile)
                    if problem and not call.parse_error and self._tool(call.name) is None and journal.lookup(key) is not None:
                        # The recorded conversation ran this call; this build no longer has the tool.
                        raise JournalMismatch(
                            f"step {step.index + 1}: the recorded call {key} to tool {call.name!r} cannot be honoured: "
                            f"this build has no tool {call.name!r}"
                        )
                    if not problem and call.name == SPAWN_SUBTASKS:
                        outcome = resolve_children(
                            journal,
                            key,
                            call,
                            task=task,
                            state=state,
                            spent=spent,
                            profile=profile,
                            profiles=self.profiles,
                            now=self.clock(),
                            recheck=self.children_recheck,
                        )
                        spent.merge(outcome.get("usage"))  # the children's tokens, cost and steps are the parent's
                        messages.append(_tool_message(call.call_id, answered.setdefault(same, outcome)))
                        apply_policy(outcome, key=key, state=state)
                        continue
                    if not problem and call.name in WAIT_TOOLS:
                        waited = self.resolve_wait(journal, key, call, task.id, self.clock())
                        messages.append(_tool_message(call.call_id, answered.setdefault(same, waited)))
                        continue
                    if not problem and call.name in CONTROL_TOOLS:
                        argument = call.arguments.get("reason" if call.name == ABORT_TASK else "result", "")
                        messages.append(_tool_message(call.call_id, {"ok": True, "output": "acknowledged"}))
                        return done(str(argument), call.name)
                    if problem:
                        result: dict[str, JSON] = {"ok": False, "error": problem}
                    else:
                        tool = self.tools.get(call.name)
                        assert tool is not None
                        ctx = ToolContext(task_id=task.id, step_index=step.index, idempotency_key=key, store=journal.store)
                        result = self._approved_call(journal, key, tool, call, ctx, profile, task, step)
                    messages.append(_tool_message(call.call_id, answered.setdefault(same, result)))


__all__ = ["FINISH_TASK", "StepExecutor", "StepRefused", "StepResult", "step_prompt"]
