"""Observability on PostgreSQL: /metrics after known runs, the tick's JSON log lines, and the settings.

Ticks run through `build_runner` (the runner every worker and driver uses), so the metrics and log
context are the instrumented runner's own. Counters are process-wide, so each test compares the
scrape after its run with the scrape before it.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from agents.errors import TransientError
from agents.scripted import ScriptedModel
from agents.status import TaskStatus
from agents.types import LLMRequest, LLMResponse
from tasks_app.models import AgentTask, Approval
from tasks_app.observability.logs import ContextFilter, JsonFormatter, TextFormatter
from tasks_app.runtime import build_runner
from tasks_app.services.sweep import sweep
from tasks_app.services.tasks import agent_task_create, agent_task_drive
from tests.conftest import make_scenario

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client | None = None) -> Samples:
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_metrics_count_a_known_run() -> None:
    before = scrape()
    model = ScriptedModel(make_scenario(3, name="obs-known-run"))
    task = agent_task_create(goal="Count my ticks")
    agent_task_drive(task_id=str(task.pk), model=model)
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    after = scrape()

    # One plan tick and three step ticks, each one committed checkpoint.
    assert task.checkpoint_seq == 4
    assert delta(before, after, "horizon_ticks_total", decision="plan", result="committed") == 1
    assert delta(before, after, "horizon_ticks_total", decision="step", result="committed") == 3
    assert delta(before, after, "horizon_step_duration_seconds_count") == 3
    assert delta(before, after, "horizon_tick_overhead_seconds_count") == 4
    assert delta(before, after, "horizon_step_duration_seconds_sum") > 0
    # Tokens and calls by model are what the task's row says it spent.
    name = model.name
    assert delta(before, after, "horizon_model_calls_total", model=name) == task.model_calls == 4
    assert delta(before, after, "horizon_model_tokens_total", model=name, kind="prompt") == task.prompt_tokens > 0
    assert delta(before, after, "horizon_model_tokens_total", model=name, kind="completion") == task.completion_tokens > 0
    assert name and ("horizon_model_cost_usd_total", frozenset({("model", name)})) in after
    assert delta(before, after, "horizon_journal_hits_total") == 0
    # Gauges come from the database at scrape time.
    assert value(after, "horizon_tasks", status="completed") == 1
    for status in ("pending", "running", "waiting", "requires_human", "paused", "failed", "cancelled"):
        assert value(after, "horizon_tasks", status=status) == 0
    assert value(after, "horizon_approvals_pending") == 0
    assert value(after, "horizon_approvals_pending_oldest_age_seconds") == 0


class FlakyStepModel:
    """Steps call list_files, then the endpoint fails once (transient) before answering."""

    name = "flaky"

    def __init__(self) -> None:
        self.scripted = ScriptedModel(
            make_scenario(1, tool_steps={0: [{"tool": "list_files", "arguments": {}}, {"final": "listed"}]})
        )
        self.failed = False

    def complete(self, request: LLMRequest) -> LLMResponse:
        if request.purpose == "step" and request.messages and request.messages[-1].get("role") == "tool" and not self.failed:
            self.failed = True
            raise TransientError("the endpoint is busy")
        return self.scripted.complete(request)


def test_journal_hits_resumes_and_stalls() -> None:
    before = scrape()
    model = FlakyStepModel()
    runner = build_runner(model=model)  # type: ignore[arg-type]
    task_id = str(agent_task_create(goal="Survive a busy endpoint").pk)
    runner.tick(task_id)  # the plan
    with pytest.raises(TransientError):
        runner.tick(task_id)  # model call 1 and list_files are journaled, then call 2 fails
    runner.tick(task_id)  # the step again: call 1 and the tool come from the journal
    assert AgentTask.objects.get(pk=task_id).status == TaskStatus.COMPLETED
    after = scrape()
    assert delta(before, after, "horizon_journal_hits_total") == 2
    assert delta(before, after, "horizon_ticks_total", decision="", result="retried") == 1

    # A claim that takes over an expired lease is a resume; so is the sweeper's re-ring of one.
    past = timezone.now() - timedelta(minutes=5)
    taken = agent_task_create(goal="Owner died, a claim takes over")
    AgentTask.objects.filter(pk=taken.pk).update(lease_owner="gone:1:x", lease_expires_at=past, next_run_at=past)
    build_runner(model=ScriptedModel(make_scenario(1))).tick(str(taken.pk))
    swept = agent_task_create(goal="Owner died, the sweeper notices")
    AgentTask.objects.filter(pk=swept.pk).update(
        status=TaskStatus.RUNNING, lease_owner="gone:2:y", lease_expires_at=past, next_run_at=past
    )
    assert sweep().stalled == [str(swept.pk)]
    final = scrape()
    assert delta(after, final, "horizon_resumes_total", via="claim") == 1
    assert delta(after, final, "horizon_resumes_total", via="sweep") == 1
    assert delta(after, final, "horizon_stalled_detections_total") == 1


def test_pending_approvals_gauge_counts_and_ages() -> None:
    task = agent_task_create(goal="Needs a person")
    AgentTask.objects.filter(pk=task.pk).update(status=TaskStatus.REQUIRES_HUMAN)
    for i, age in enumerate((timedelta(hours=2), timedelta(minutes=1))):
        approval = Approval.objects.create(
            task=task, key=f"k{i}", kind="step", step_index=i, plan_version=1, action={"step": "x"}, digest="d"
        )
        Approval.objects.filter(pk=approval.pk).update(requested_at=timezone.now() - age)
    Approval.objects.create(
        task=task, key="done", kind="step", step_index=5, plan_version=1, action={"step": "y"}, digest="d", status="approved"
    )
    samples = scrape()
    assert value(samples, "horizon_approvals_pending") == 2
    assert 7200 <= value(samples, "horizon_approvals_pending_oldest_age_seconds") < 7200 + 60
    assert value(samples, "horizon_tasks", status="requires_human") == 1


class LoggingModel:
    """The scripted model, logging one line from inside each call: code running during a tick."""

    def __init__(self, scripted: ScriptedModel) -> None:
        self.scripted = scripted
        self.name = scripted.name

    def complete(self, request: LLMRequest) -> LLMResponse:
        logging.getLogger("horizon.test").warning("model asked: %s %s", request.purpose, request.step_index)
        return self.scripted.complete(request)


@pytest.fixture
def captured() -> Any:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    horizon = logging.getLogger("horizon")
    old_level = horizon.level
    horizon.addHandler(handler)
    horizon.setLevel(logging.DEBUG)
    yield stream
    horizon.removeHandler(handler)
    horizon.setLevel(old_level)


def test_json_log_lines_carry_task_step_epoch_and_worker(captured: io.StringIO) -> None:
    task_id = str(agent_task_create(goal="Log my ticks").pk)
    runner = build_runner(model=LoggingModel(ScriptedModel(make_scenario(2))), worker_id="worker-obs-1")  # type: ignore[arg-type]
    for _ in range(3):
        runner.tick(task_id)
    logging.getLogger("horizon.test").warning("after the ticks")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert {line["level"] for line in lines} >= {"WARNING", "DEBUG"}

    in_ticks, outside = lines[:-1], lines[-1]
    epochs = sorted({line["epoch"] for line in in_ticks})
    assert epochs == [1, 2, 3]  # one claim per tick
    for line in in_ticks:
        assert line["task_id"] == task_id
        assert line["worker"] == "worker-obs-1"
        assert isinstance(line["epoch"], int)
    asked = [line for line in in_ticks if line["message"].startswith("model asked: step")]
    assert [(line["message"], line["step"]) for line in asked] == [("model asked: step 0", 0), ("model asked: step 1", 1)]
    done = [line for line in in_ticks if line["logger"] == "horizon.tick"]
    assert [line["step"] for line in done] == [None, 0, 1]  # the plan tick works on no step
    assert all("decision=" in line["message"] for line in done)
    # Outside a tick the fields are there, empty.
    assert (outside["task_id"], outside["step"], outside["epoch"], outside["worker"]) == (None, None, None, None)


def test_text_format_appends_the_context() -> None:
    from tasks_app.observability.logs import tick_context

    record = logging.LogRecord("horizon.x", logging.INFO, __file__, 1, "hello", (), None)
    ContextFilter().filter(record)
    assert TextFormatter().format(record).endswith("hello")
    with tick_context(task_id="t1", worker="w", step=0, epoch=3):
        record = logging.LogRecord("horizon.x", logging.INFO, __file__, 1, "hello", (), None)
        ContextFilter().filter(record)
        assert TextFormatter().format(record).endswith("hello [task_id=t1 step=0 epoch=3 worker=w]")


def test_log_format_setting() -> None:
    from tests.test_settings import run_with_env

    code = "import django; django.setup(); from django.conf import settings; print(settings.HORIZON_LOG_FORMAT)"
    bad = run_with_env([sys.executable, "-c", code], HORIZON_LOG_FORMAT="xml")
    assert bad.returncode != 0 and "HORIZON_LOG_FORMAT must be 'json' or 'text'" in bad.stderr
    assert run_with_env([sys.executable, "-c", code]).stdout.strip() == "text"
    production = {
        "HORIZON_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "HORIZON_AUDIT_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://u@127.0.0.1/x",
    }
    assert run_with_env([sys.executable, "-c", code], **production).stdout.strip() == "json"
