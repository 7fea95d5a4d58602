"""Issue 3 end to end: the real `openai` SDK over HTTP to the local fake server, the real Runner and the
Django store on PostgreSQL.

tests/agents/test_agent_behaviour.py drives the same behaviours with an in-memory scripted model;
here every model call is an HTTP request the SDK makes and the fake server records, and every
outcome is read back from the database rows a worker would leave behind.

Scripting note: the fake server answers requests in arrival order from one queue, so each test
scripts the whole conversation; an empty reply `{}` means "the server's default answer" (a 2-step
plan for a planning request, "done: <title>" for a step).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from agents.errors import TransientError
from agents.llm.breaker import CircuitBreaker, GuardedModel
from agents.llm.client import OpenAIModel
from agents.llm.config import EndpointConfig
from agents.model import Model
from agents.profiles import AgentProfile
from agents.runner import Runner
from agents.tools import default_registry
from tasks_app.breaker_state import DjangoBreakerState
from tasks_app.models import AgentTask, EndpointBreaker, WorkspaceFile
from tasks_app.store import DjangoStore
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULT: dict[str, Any] = {}  # the fake server's own answer for whatever was asked
BOOM = {"status": 500, "body": {"error": {"message": "upstream exploded", "type": "server_error"}}}


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def plan_reply(*titles: str, **extra: Any) -> dict[str, Any]:
    steps = [
        {"title": t, "instructions": f"Do {t}.", "depends_on": [], "expected_minutes": 1, "needs_approval": False} for t in titles
    ]
    return {"content": json.dumps({"steps": steps}), **extra}


def tool_reply(name: str, arguments: Any, call_id: str = "call_1", **extra: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments, "id": call_id}], **extra}


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


def user_text(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m.get("role") == "user" and isinstance(m.get("content"), str))


def planning(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in bodies if b.get("response_format", {}).get("json_schema", {}).get("name") == "plan"]


def event_payloads(store: DjangoStore, task_id: str, kind: str) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in store.events(task_id) if e.type == kind]


def free_port() -> int:
    """A port nothing listens on: connecting to it is refused at once (an endpoint that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seconds_until_due(task_id: str) -> float:
    row = AgentTask.objects.get(pk=task_id)
    assert row.next_run_at is not None
    return (row.next_run_at - timezone.now()).total_seconds()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def openai_model(server: FakeOpenAI) -> Iterator[Callable[..., OpenAIModel]]:
    """OpenAIModel on the fake server (SDK retries off unless asked); keyword arguments override EndpointConfig."""
    made: list[OpenAIModel] = []

    def make(**overrides: Any) -> OpenAIModel:
        fields: dict[str, Any] = {"base_url": server.url, "api_key": "test-key", "model": "gpt-4o", "timeout": 5.0}
        fields["max_retries"] = 0
        model = OpenAIModel(EndpointConfig(**(fields | overrides)))
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()


def make_runner(model: Model, **profile: Any) -> Runner:
    profiles = {"default": AgentProfile(name="default", **profile)}
    return Runner(DjangoStore(), model, default_registry, profiles=profiles)


# --- 1. the happy path ------------------------------------------------------------------------


def test_a_two_step_goal_completes_over_http_with_a_tool_call_usage_and_cost(server, openai_model) -> None:
    model = openai_model(input_price_per_mtok=2.0, output_price_per_mtok=8.0)
    server.script(
        plan_reply("Write the greeting", "Report back", usage=usage(100, 40)),
        tool_reply("write_file", {"path": "out/hello.txt", "content": "Hello, Acme"}, usage=usage(200, 20)),
        {"content": "wrote out/hello.txt", "usage": usage(300, 10)},
        {"usage": usage(150, 5)},  # step 2: the server's default "done: Report back"
    )
    runner = make_runner(model)

    result = runner.start("Greet Acme in a file")

    assert (result.status, result.reason) == ("completed", "")
    assert [(s.title, s.status, s.output) for s in result.steps] == [
        ("Write the greeting", "completed", "wrote out/hello.txt"),
        ("Report back", "completed", "done: Report back"),
    ]
    bodies = server.requests()
    assert len(bodies) == server.count() == 4
    # The plan was asked for with structured output: the schema travels as response_format.
    plan_format = bodies[0]["response_format"]
    assert plan_format["type"] == "json_schema"
    assert plan_format["json_schema"]["name"] == "plan" and plan_format["json_schema"]["strict"] is True
    assert "steps" in plan_format["json_schema"]["schema"]["properties"]
    assert all(b["model"] == "gpt-4o" for b in bodies)
    # Steps offer the tools and are not structured output.
    assert "response_format" not in bodies[1]
    assert "write_file" in {t["function"]["name"] for t in bodies[1]["tools"]}
    # The tool really ran, and its result went back to the model as the tool message.
    [tool_message] = tool_messages(bodies[2])
    assert tool_message["tool_call_id"] == "call_1" and "wrote 11 characters to out/hello.txt" in tool_message["content"]
    assert WorkspaceFile.objects.get(task_id=result.task_id, path="out/hello.txt").content == "Hello, Acme"

    task = AgentTask.objects.get(pk=result.task_id)
    assert (task.prompt_tokens, task.completion_tokens) == (750, 75)
    assert (task.model_calls, task.tool_calls, task.steps_completed) == (4, 1, 2)
    assert task.cost_usd == pytest.approx((750 * 2.0 + 75 * 8.0) / 1_000_000)


def test_a_malformed_plan_is_repaired_over_http(server, openai_model) -> None:
    server.script({"content": '{"steps": [oops'}, DEFAULT, DEFAULT, DEFAULT)
    result = make_runner(openai_model()).start("Onboard Acme")

    assert result.status == "completed" and len(result.steps) == 2
    plans = planning(server.requests())
    assert len(plans) == 2
    repair = plans[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"steps": [oops'}
    assert "not valid JSON" in repair[-1]["content"]
    [created] = event_payloads(DjangoStore(), result.task_id, "plan.created")
    assert created["usage"]["model_calls"] == 2


# --- 3. bad outputs, each ending in a clear outcome ------------------------------------------


def test_a_plan_cut_off_three_times_requires_a_human_with_the_raw_output(server, openai_model) -> None:
    cut = {"content": '{"steps": [{"title": "Gath', "finish_reason": "length"}
    server.script(cut, cut, cut)
    result = make_runner(openai_model(), max_plan_repairs=2).start("Onboard Acme")

    assert result.status == "requires_human"
    assert "cut off at the output token limit" in result.reason and "after 2 repair prompts" in result.reason
    assert server.count() == 3
    [escalated] = event_payloads(DjangoStore(), result.task_id, "task.escalated")
    assert escalated["error"] == "PlanInvalid" and escalated["raw_output"] == '{"steps": [{"title": "Gath'
    assert AgentTask.objects.get(pk=result.task_id).status == "requires_human"


def test_a_refused_step_requires_a_human_naming_the_refusal(server, openai_model) -> None:
    server.script(DEFAULT, {"content": None, "refusal": "I can't help with onboarding competitors."})
    result = make_runner(openai_model(), replan_on_failure=False).start("Onboard Acme")

    assert result.status == "requires_human"
    assert "refused step 1" in result.reason and "I can't help with onboarding competitors." in result.reason
    [escalated] = event_payloads(DjangoStore(), result.task_id, "task.escalated")
    assert escalated["error"] == "StepRefused"
    assert result.steps[0].status == "failed"
    assert server.count() == 2


def test_an_enormous_step_answer_is_cut_at_the_byte_cap_and_escalated_with_an_excerpt(server, openai_model) -> None:
    server.script(DEFAULT, {"huge": 5_000_000})
    started = time.monotonic()
    result = make_runner(openai_model(max_output_bytes=64 * 1024)).start("Onboard Acme")

    assert time.monotonic() - started < 5  # the body was not read to its end
    assert result.status == "requires_human"
    assert f"{64 * 1024}-byte cap" in result.reason
    [escalated] = event_payloads(DjangoStore(), result.task_id, "task.escalated")
    assert escalated["error"] == "ModelOutputTooLarge"
    assert escalated["raw_output"].startswith('{"id":"chatcmpl-huge"')
    assert 0 < len(escalated["raw_output"]) <= 20_000


def test_a_401_requires_a_human_with_the_endpoints_message_and_is_not_retried(server, openai_model) -> None:
    message = "Incorrect API key provided: sk-test****. You can find your API key at https://platform.openai.com."
    error = {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
    server.script({"status": 401, "body": error})
    # SDK retries on: a 401 must still be asked once only.
    result = make_runner(openai_model(max_retries=2)).start("Onboard Acme")

    assert result.status == "requires_human"
    assert "HTTP 401" in result.reason and message in result.reason
    assert "Error code:" not in result.reason  # the endpoint's words, not the SDK's wrapper
    [escalated] = event_payloads(DjangoStore(), result.task_id, "task.escalated")
    assert escalated["error"] == "ModelRejected"
    assert server.count() == 1


@pytest.mark.parametrize(
    ("name", "arguments", "complaint"),
    [
        ("delete_everything", {"path": "x"}, "unknown tool 'delete_everything'"),
        ("write_file", {"path": "a.txt"}, "missing required argument 'content'"),
        ("write_file", {"path": "a.txt", "content": "x", "mode": "w"}, "unexpected argument 'mode'"),
        ("write_file", {"path": 3, "content": "x"}, "argument 'path' does not match"),
        ("write_file", '{"path": "a.txt", "content": ', "not a JSON object"),
    ],
    ids=["unknown-tool", "missing-arg", "extra-arg", "wrong-type", "not-json"],
)
def test_a_bad_tool_call_goes_back_to_the_model_and_the_task_completes(
    server, openai_model, name: str, arguments: Any, complaint: str
) -> None:
    server.script(plan_reply("Write it"), tool_reply(name, arguments, call_id="call_bad"), {"content": "gave up on the file"})
    result = make_runner(openai_model()).start("Write a file")

    assert result.status == "completed" and result.steps[0].output == "gave up on the file"
    bodies = server.requests()
    assert len(bodies) == 3
    [tool_message] = tool_messages(bodies[2])
    assert tool_message["tool_call_id"] == "call_bad"
    assert complaint in json.loads(tool_message["content"])["error"]
    # The assistant turn that made the bad call is in the transcript the model sees.
    assistant = [m for m in bodies[2]["messages"] if m.get("role") == "assistant"]
    assert assistant[-1]["tool_calls"][0]["function"]["name"] == name
    assert not WorkspaceFile.objects.filter(task_id=result.task_id).exists()
    assert AgentTask.objects.get(pk=result.task_id).tool_calls == 1


# --- 4. transient failures: the lease is released and the task rescheduled -------------------


def test_a_429_with_retry_after_releases_the_lease_until_then_and_the_next_tick_succeeds(server, openai_model) -> None:
    rate_limited = {
        "status": 429,
        "headers": {"Retry-After": "2"},
        "body": {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "code": "rate_limit_exceeded"}},
    }
    server.script(DEFAULT, rate_limited)
    runner = make_runner(openai_model())
    task_id = runner.create("Onboard Acme")
    assert runner.tick(task_id).decision == "plan"

    with pytest.raises(TransientError) as caught:
        runner.tick(task_id)

    assert caught.value.retry_after == pytest.approx(2.0)
    assert "Rate limit reached for gpt-4o" in str(caught.value)
    row = AgentTask.objects.get(pk=task_id)
    assert row.lease_owner is None and row.status == "running"
    assert 1.5 < seconds_until_due(task_id) <= 2.0
    assert runner.tick(task_id).claimed is False  # not due yet: nobody retries it hot
    assert server.count() == 2

    time.sleep(max(0.0, seconds_until_due(task_id)) + 0.05)
    outcome = runner.tick(task_id)

    assert outcome.committed and outcome.decision == "step" and outcome.output == "done: Gather the facts"
    assert server.count() == 3
    assert not event_payloads(DjangoStore(), task_id, "task.escalated")


def test_repeated_500s_raise_transient_after_the_sdk_retries_and_then_recover(server, openai_model) -> None:
    # retry-after-ms keeps the SDK's own back-off between its retries short.
    boom = {**BOOM, "headers": {"retry-after-ms": "10"}}
    max_retries = 2
    server.script(DEFAULT, *[boom] * (2 * (max_retries + 1)))
    runner = make_runner(openai_model(max_retries=max_retries))
    task_id = runner.create("Onboard Acme")
    runner.tick(task_id)  # the plan
    assert server.count() == 1

    for tick in (1, 2):
        with pytest.raises(TransientError) as caught:
            runner.tick(task_id)
        assert "HTTP 500" in str(caught.value) and "upstream exploded" in str(caught.value)
        assert server.count() == 1 + tick * (max_retries + 1)
        assert AgentTask.objects.get(pk=task_id).lease_owner is None
        time.sleep(0.05)

    result = runner.run(task_id)
    assert result.status == "completed"
    assert server.count() == 1 + 2 * (max_retries + 1) + 2


# --- 5. the circuit breaker, with its state in PostgreSQL ------------------------------------


def test_an_open_breaker_defers_the_task_without_calling_then_a_trial_closes_it(server, openai_model) -> None:
    key = f"{server.url}#gpt-4o"
    breaker = CircuitBreaker(DjangoBreakerState(), key, failure_threshold=2, cool_down=1.0)
    runner = make_runner(GuardedModel(openai_model(), breaker))
    server.script(DEFAULT, BOOM, BOOM)
    task_id = runner.create("Onboard Acme")
    runner.tick(task_id)  # the plan

    for _ in range(2):
        with pytest.raises(TransientError):
            runner.tick(task_id)
    row = EndpointBreaker.objects.get(key=key)
    assert (row.state, row.failures) == ("open", 2)
    assert server.count() == 3

    outcome = runner.tick(task_id)

    assert outcome.claimed and not outcome.committed
    assert 0 < outcome.retry_in <= 1.0
    assert server.count() == 3  # the endpoint was not called
    assert 0 < seconds_until_due(task_id) <= 1.0  # rescheduled for the end of the cool-down, not retried hot
    assert AgentTask.objects.get(pk=task_id).lease_owner is None
    assert runner.tick(task_id).claimed is False

    time.sleep(max(0.0, seconds_until_due(task_id)) + 0.05)
    trial = runner.tick(task_id)

    assert trial.committed and trial.decision == "step" and trial.output == "done: Gather the facts"
    assert server.count() == 4
    row.refresh_from_db()
    assert (row.state, row.failures, row.opened_at) == ("closed", 0, None)
    assert runner.run(task_id).status == "completed"


def test_deferrals_by_an_open_breaker_do_not_use_up_the_tasks_attempts(server, openai_model) -> None:
    """A deferral makes no call, so it is not an attempt at the step: the claim's increment of
    step_attempts is refunded on release. Without that, an outage longer than max_attempts
    cool-downs escalated every waiting task although its step never ran."""
    now = [1_000_000.0]
    key = f"{server.url}#gpt-4o"
    breaker = CircuitBreaker(DjangoBreakerState(), key, failure_threshold=1, cool_down=0.2, clock=lambda: now[0])
    runner = make_runner(GuardedModel(openai_model(), breaker))
    task_id = runner.create("Onboard Acme", max_attempts=2)
    runner.tick(task_id)  # the plan
    breaker.record_failure()  # the endpoint went down (another worker saw it)

    deferred = []
    for _ in range(3):  # the breaker's clock stands still: the cool-down never ends
        time.sleep(max(0.0, seconds_until_due(task_id)) + 0.02)
        deferred.append(runner.tick(task_id).retry_in > 0)
    row = AgentTask.objects.get(pk=task_id)
    assert (row.status, row.status_reason) == ("running", ""), f"deferrals used up the attempts: {row.status_reason}"
    assert deferred == [True, True, True]
    assert server.count() == 1

    now[0] += 1.0  # the cool-down is over and the endpoint is back
    time.sleep(max(0.0, seconds_until_due(task_id)) + 0.02)
    result = runner.run(task_id)

    assert (result.status, result.reason) == ("completed", "")
    assert server.count() == 3


# --- 6. the fallback model answers while the primary's breaker is open -----------------------


def test_the_fallback_model_answers_while_the_primary_is_down(server, openai_model) -> None:
    down = openai_model(base_url=f"http://127.0.0.1:{free_port()}/v1", model="gpt-4o")
    fallback = openai_model(model="gpt-4o-mini")
    key = "down#gpt-4o"
    breaker = CircuitBreaker(DjangoBreakerState(), key, failure_threshold=1, cool_down=60.0)
    runner = make_runner(GuardedModel(down, breaker, fallback=fallback))
    task_id = runner.create("Onboard Acme")

    with pytest.raises(TransientError, match="cannot reach the model endpoint"):
        runner.tick(task_id)  # the primary is refused: the breaker opens
    assert EndpointBreaker.objects.get(key=key).state == "open"
    assert server.count() == 0

    result = runner.run(task_id)

    assert result.status == "completed" and [s.output for s in result.steps] == [
        "done: Gather the facts",
        "done: Write the result",
    ]
    bodies = server.requests()
    assert len(bodies) == 3 and {b["model"] for b in bodies} == {"gpt-4o-mini"}
    [created] = event_payloads(DjangoStore(), task_id, "plan.created")
    assert created["model"] == "gpt-4o-mini"
    assert EndpointBreaker.objects.get(key=key).state == "open"  # the primary was not tried again


# --- 7. self-review and re-plans over HTTP ---------------------------------------------------


def test_a_rejected_self_review_retries_the_step_with_the_critique(server, openai_model) -> None:
    critique = "The memo does not cite the contract number."
    server.script(
        plan_reply("Draft the memo"),
        {"content": "Memo: welcome Acme."},
        {"content": json.dumps({"approved": False, "critique": critique})},
        {"content": "Memo: welcome Acme, contract #4471."},
        {"content": json.dumps({"approved": True, "critique": ""})},
    )
    result = make_runner(openai_model(), self_review=True, max_review_retries=1).start("Write the welcome memo")

    assert result.status == "completed" and result.steps[0].output == "Memo: welcome Acme, contract #4471."
    bodies = server.requests()
    assert len(bodies) == 5
    review = bodies[2]
    assert review["response_format"]["json_schema"]["name"] == "verdict"
    assert "Memo: welcome Acme." in user_text(review)
    assert critique not in user_text(bodies[1])
    assert f"A reviewer rejected your previous result for this step: {critique}" in user_text(bodies[3])
    store = DjangoStore()
    reviewed = event_payloads(store, result.task_id, "step.reviewed")
    assert [(r["round"], r["approved"], r["critique"]) for r in reviewed] == [(0, False, critique), (1, True, "")]


def test_a_refused_step_is_replanned_over_http(server, openai_model) -> None:
    server.script(
        DEFAULT,  # plan v1: "Gather the facts", "Write the result"
        {"content": None, "refusal": "I cannot access that system."},
        plan_reply("Ask the account manager", "Write the result"),
        DEFAULT,
        DEFAULT,
    )
    result = make_runner(openai_model(), replan_on_failure=True).start("Onboard Acme")

    assert result.status == "completed"
    assert [(s.title, s.output) for s in result.steps] == [
        ("Ask the account manager", "done: Ask the account manager"),
        ("Write the result", "done: Write the result"),
    ]
    store = DjangoStore()
    [failed] = event_payloads(store, result.task_id, "step.failed")
    assert failed["index"] == 0 and "I cannot access that system." in failed["error"]
    [revised] = event_payloads(store, result.task_id, "plan.revised")
    assert (revised["version"], revised["from_index"]) == (2, 0)
    assert [s["title"] for s in revised["steps"]] == ["Ask the account manager", "Write the result"]
    replan = server.requests()[2]
    assert replan["response_format"]["json_schema"]["name"] == "plan"
    assert "'Gather the facts', could not be done" in user_text(replan) and "I cannot access that system." in user_text(replan)
    assert server.count() == 5
