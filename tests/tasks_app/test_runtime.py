"""Which model a process uses, from settings and profiles; and run_goal on a real endpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from agents.llm.breaker import GuardedModel
from agents.profiles import AgentProfile, profile_to_json
from agents.scripted import ScriptedModel
from tasks_app import runtime
from tasks_app.models import AgentTask, EndpointBreaker
from tests.support.fake_openai import FakeOpenAI


def clear_caches() -> None:
    runtime.default_model.cache_clear()
    runtime.endpoint_model.cache_clear()
    runtime.profiles.cache_clear()


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    clear_caches()
    with FakeOpenAI() as fake:
        yield fake
    clear_caches()  # the next test must not get a client for a stopped server


def test_without_an_endpoint_every_profile_gets_the_offline_scripted_model() -> None:
    clear_caches()
    with override_settings(OPENAI_BASE_URL="", OPENAI_API_KEY=""):
        assert isinstance(runtime.model_for_profile(AgentProfile(name="p", model="gpt-4o")), ScriptedModel)
    clear_caches()


def test_a_profile_chooses_its_model_fallback_timeout_and_retries(server: FakeOpenAI) -> None:
    with override_settings(OPENAI_BASE_URL=server.url, HORIZON_LLM_TIMEOUT=30.0, HORIZON_LLM_MAX_RETRIES=1):
        default = runtime.model_for_profile(AgentProfile(name="default"))
        own = runtime.model_for_profile(
            AgentProfile(name="p", model="big", fallback_model="small", llm_timeout=10, llm_max_retries=0)
        )
        slow = runtime.model_for_profile(AgentProfile(name="q", llm_timeout=500))
        slowest = runtime.model_for_profile(AgentProfile(name="r", llm_timeout=5000))
        # A reasoning model's profile may wait minutes for a call: its ticks' limits follow the call
        # (one 500 s attempt, a retry and the SDK's backoff: 1008 s), a margin apart.
        limits = runtime.profile_tick_limits(profile_to_json(AgentProfile(name="q", llm_timeout=500)))
        usual = runtime.profile_tick_limits(profile_to_json(AgentProfile(name="default")))
    assert isinstance(default, GuardedModel) and default is runtime.default_model()
    assert default.primary.config.model == "gpt-4o-mini" and default.fallback is None  # type: ignore[attr-defined]
    assert isinstance(own, GuardedModel)
    assert (own.primary.config.model, own.primary.config.timeout, own.primary.config.max_retries) == ("big", 10, 0)  # type: ignore[attr-defined]
    assert own.fallback is not None and own.fallback.config.model == "small"  # type: ignore[attr-defined]
    assert slow.primary.config.timeout == 500  # type: ignore[attr-defined]  # longer than HORIZON_LLM_TIMEOUT: allowed
    assert slowest.primary.config.timeout == 1800  # type: ignore[attr-defined]  # never past HORIZON_LLM_MAX_TIMEOUT
    assert limits == (1038.0, 1068.0) and usual == (240.0, 270.0)


@pytest.mark.django_db(transaction=True)
def test_run_goal_runs_on_a_configured_endpoint_and_says_so(server: FakeOpenAI) -> None:
    out = StringIO()
    with override_settings(OPENAI_BASE_URL=server.url, OPENAI_API_KEY="test"):
        call_command("run_goal", "Write a haiku about durable queues", stdout=out, stderr=StringIO())
    output = out.getvalue()
    assert f"model: gpt-4o-mini at {server.url}" in output and "offline" not in output
    task = AgentTask.objects.get()
    assert task.status == "completed" and task.model_calls == server.count() and task.prompt_tokens > 0
    assert all(body["model"] == "gpt-4o-mini" for body in server.requests())
    assert EndpointBreaker.objects.count() <= 1  # a closed breaker with no failures needs no row


@pytest.mark.django_db
def test_profiles_come_from_the_profiles_file_and_a_bad_file_stops_start_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ImproperlyConfigured

    good = tmp_path / "profiles.yaml"
    good.write_text("researcher:\n  tools: [read_file, recall]\n  max_tokens: 1000\n  self_review: true\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("researcher:\n  tools: [format_disk]\n")
    try:
        clear_caches()
        with override_settings(HORIZON_PROFILES_FILE=str(good), HORIZON_MAX_MODEL_CALLS_PER_STEP=7):
            profiles = runtime.profiles()
            call_command("create_goal", "Read the notes", "--profile", "researcher", stdout=StringIO())
        assert profiles["researcher"].tools == ("read_file", "recall") and profiles["researcher"].self_review
        assert profiles["default"].max_model_calls_per_step == 7
        assert AgentTask.objects.get().profile == "researcher"
        clear_caches()
        with override_settings(HORIZON_PROFILES_FILE=str(bad)), pytest.raises(ImproperlyConfigured, match="format_disk"):
            runtime.profiles()
    finally:
        clear_caches()


@pytest.mark.django_db
def test_inside_one_test_transaction_the_heartbeat_thread_does_not_beat_by_itself() -> None:
    # tests/conftest.py: its own connection could not see this test's tasks and would stop their ticks.
    assert runtime.build_runner().heartbeat.interval == threading.TIMEOUT_MAX


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_runs_the_real_heartbeat(settings) -> None:  # type: ignore[no-untyped-def]
    assert runtime.build_runner().heartbeat.interval == settings.HORIZON_HEARTBEAT_SECONDS
