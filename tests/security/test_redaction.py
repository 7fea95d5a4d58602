"""Secrets are redacted where outside text enters: goals and contexts, events, model answers, tool
results, signal payloads and log records. (test_secret_leak.py does it end to end with a real worker.)"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import secrets
import sys

import pytest

from agents.errors import ModelRejected
from agents.inmemory_store import InMemoryStore
from agents.profiles import AgentProfile
from agents.redaction import REDACTED, RedactingFilter, Redactor, redact, register_secret_values
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.tools.registry import ToolContext, ToolRegistry
from agents.types import LLMRequest, LLMResponse
from tasks_app.models import Event, GoalTemplate, Signal
from tasks_app.services.control import signal_send
from tasks_app.services.schedules import goal_template_schedule
from tasks_app.services.tasks import agent_task_create
from tests.conftest import make_scenario
from tests.test_settings import run_with_env


class RecordingModel:
    """The model seam, recording every request it is asked (what a real endpoint would receive)."""

    def __init__(self, inner: ScriptedModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.requests: list[str] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(json.dumps(request.to_json()))
        return self.inner.complete(request)


def test_known_values_and_secret_shapes_are_replaced_everywhere_in_json() -> None:
    r = Redactor(["hunter2-but-longer", "short"])
    value = {
        "a": "my password is hunter2-but-longer!",
        "b": ["Authorization: Bearer abc.DEF-123_xyz=", ("sk-proj-" + "A" * 40,)],
        "hunter2-but-longer": 3,
        "n": 1.5,
        "short": "short",  # under MIN_SECRET_CHARS: not registered, ordinary text is left alone
        "gh": "ghp_" + "a" * 36,
    }
    out = r.redact(value)
    assert out == {
        "a": f"my password is {REDACTED}!",
        "b": [f"Authorization: {REDACTED}", (REDACTED,)],
        REDACTED: 3,
        "n": 1.5,
        "short": "short",
        "gh": REDACTED,
    }
    assert r.contains_secret(value) and not r.contains_secret(out)


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    key = "planted-" + secrets.token_hex(16)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets=[key]))
    logger = logging.getLogger("horizon.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling with key %s and header %s", key, "Bearer " + "t" * 20)
        try:
            raise RuntimeError(f"the server said: bad key {key}")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert key not in text and "t" * 20 not in text
    assert text.count(REDACTED) == 3 and "RuntimeError: the server said: bad key [REDACTED]" in text


def test_settings_collect_every_configured_secret_and_install_the_filter() -> None:
    code = (
        "import django, json; django.setup(); from django.conf import settings; import logging;"
        "print(json.dumps(settings.HORIZON_SECRET_VALUES));"
        "logging.getLogger('horizon').warning('key is %s', settings.OPENAI_API_KEY)"
    )
    result = run_with_env(
        [sys.executable, "-c", code],
        OPENAI_API_KEY="planted-openai-key-0001",
        DATABASE_URL="postgres://u:db-password-0002@127.0.0.1/x",
        CELERY_BROKER_URL="redis://:broker-password-0003@127.0.0.1:6379/0",
        HORIZON_SECRET_ENV_VARS="CRM_TOKEN",
        CRM_TOKEN="crm-token-0004",
        HORIZON_SECRET_VALUES="literal-secret-0005",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    for planted in (
        "planted-openai-key-0001",
        "db-password-0002",
        "broker-password-0003",
        "crm-token-0004",
        "literal-secret-0005",
    ):
        assert planted in values
    assert "key is [REDACTED]" in result.stderr and "planted-openai-key-0001" not in result.stderr


def test_a_run_keeps_a_planted_key_out_of_the_task_events_checkpoints_journal_and_prompts() -> None:
    key = "planted-" + secrets.token_hex(16)
    register_secret_values([key])  # as the settings would for a configured key
    tools = ToolRegistry()

    @tools.tool(idempotent=True)
    def read_env(ctx: ToolContext) -> str:
        "Read the configuration."
        return f"OPENAI_API_KEY={key}\nother=fine"

    scenario = make_scenario(
        1, tool_steps={0: [{"tool": "read_env", "arguments": {}}, {"final": f"The key is {key}, as asked."}]}
    )
    model = RecordingModel(ScriptedModel(scenario))
    store = InMemoryStore()
    result = Runner(store, model, tools=tools).start(f"Use the key {key}", {"api_key": key, "nested": [f"x {key} y"]})
    assert result.status == "completed"
    task = store.get_task(result.task_id)
    everything = json.dumps(
        {
            "task": [task.goal, task.context, task.result],
            "events": [e.payload for e in store.events(task.id)],
            "checkpoints": [c.state for c in store.checkpoints(task.id)],
            "steps": [[s.result, list(s.transcript)] for s in store.steps(task.id)],
            "journal": [e.result for e in store.journal_entries(task.id)],
            "prompts": model.requests,
        }
    )
    assert key not in everything
    assert task.goal == f"Use the key {REDACTED}" and task.context == {"api_key": REDACTED, "nested": [f"x {REDACTED} y"]}
    assert f"OPENAI_API_KEY={REDACTED}" in everything  # the tool's result, redacted before the model saw it
    assert f"The key is {REDACTED}, as asked." in everything  # the model's answer, redacted before it was kept
    assert redact(key) == REDACTED


@pytest.mark.django_db(transaction=True)
def test_task_creation_signals_and_goal_templates_keep_no_secret() -> None:
    key = "sk-proj-" + secrets.token_hex(24)  # shaped like an OpenAI key: redacted without being configured
    task = agent_task_create(goal=f"Deploy with {key}", context={"token": key})
    assert (task.goal, task.context) == (f"Deploy with {REDACTED}", {"token": REDACTED})
    signal_send(task_id=str(task.id), name="credentials", payload={"authorization": f"Bearer {key}"})
    assert Signal.objects.get(task=task).payload == {"authorization": REDACTED}
    goal_template_schedule(name="nightly", goal=f"Rotate {key}", context={"k": key}, every_seconds=3600)
    template = GoalTemplate.objects.get(name="nightly")
    assert (template.goal, template.context) == (f"Rotate {REDACTED}", {"k": REDACTED})
    assert key not in json.dumps([e.payload for e in Event.objects.filter(task=task)])


class EndpointEchoingTheKey:
    """Plans like the scripted model, then fails every step the way a careless endpoint would:
    with an error body that repeats the credential it was sent."""

    def __init__(self, inner: ScriptedModel, key: str) -> None:
        self.inner, self.key, self.name = inner, key, inner.name

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "plan":
            return self.inner.complete(request)
        raise ModelRejected(f"401 Unauthorized: invalid api key {self.key}")


def test_an_endpoints_error_that_repeats_the_key_is_redacted_in_the_step_row_events_and_reason() -> None:
    key = "planted-" + secrets.token_hex(16)
    register_secret_values([key])
    store = InMemoryStore()
    model = EndpointEchoingTheKey(ScriptedModel(make_scenario(1)), key)
    profiles = {"default": AgentProfile(name="default", replan_on_failure=False)}
    result = Runner(store, model, profiles=profiles).start("Try the endpoint")
    assert result.status == "requires_human"
    task = store.get_task(result.task_id)
    [step] = store.steps(task.id)
    everything = json.dumps([task.status_reason, step.error, [e.payload for e in store.events(task.id)]])
    assert key not in everything and f"invalid api key {REDACTED}" in step.error
