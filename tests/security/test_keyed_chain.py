"""Secrets and the audit trail: production refuses weak secrets in one line; the event chain is an
HMAC whose key is not in the database, so a superuser's rewrite with recomputed plain hashes is found;
the delete opt-in purges a whole task's log only."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from agents import audit
from agents import events as ev
from agents.runner import Runner
from agents.scripted import ScriptedModel
from agents.types import OperatorChange
from horizon_project.checks import PLACEHOLDERS
from tasks_app.models import AgentTask, Event
from tasks_app.services.audit import agent_task_purge, events_verify
from tasks_app.store import DjangoStore
from tests.conftest import make_scenario
from tests.test_settings import run_with_env

REPO = Path(__file__).resolve().parents[2]
KEY_1 = secrets.token_urlsafe(50).encode()
KEY_2 = secrets.token_urlsafe(50).encode()
PRODUCTION = {
    "HORIZON_ENV": "production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "HORIZON_AUDIT_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://horizon@127.0.0.1:5432/horizon",
    "DJANGO_ALLOWED_HOSTS": "horizon.example.com",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
}


# --- production secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DJANGO_SECRET_KEY": PLACEHOLDERS["DJANGO_SECRET_KEY"]}, "DJANGO_SECRET_KEY is a placeholder"),
        ({"DJANGO_SECRET_KEY": secrets.token_urlsafe(20)}, "production needs at least 50"),
        ({"DJANGO_SECRET_KEY": "ab" * 40}, "DJANGO_SECRET_KEY has too little entropy"),
        ({"HORIZON_AUDIT_KEY": ""}, "HORIZON_AUDIT_KEY is required"),
        ({"HORIZON_AUDIT_KEY": PLACEHOLDERS["HORIZON_AUDIT_KEY"]}, "HORIZON_AUDIT_KEY is a placeholder"),
        ({"HORIZON_WEBHOOK_SECRET": "change-me"}, "HORIZON_WEBHOOK_SECRET is a placeholder"),
    ],
    ids=["placeholder", "short", "low-entropy", "no-audit-key", "audit-placeholder", "webhook-placeholder"],
)
def test_production_start_up_refuses_weak_secrets_in_one_line(overrides: dict[str, str], expected: str) -> None:
    result = run_with_env([sys.executable, "manage.py", "check"], **{**PRODUCTION, **overrides})
    assert result.returncode != 0
    assert result.stderr.count("\n") <= 1 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_production_start_up_accepts_strong_secrets() -> None:
    result = run_with_env([sys.executable, "manage.py", "check"], **PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_the_placeholders_are_the_example_files_values() -> None:
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for name, placeholder in PLACEHOLDERS.items():
        assert example[name] == placeholder


def test_the_webhook_key_is_never_derived_from_a_placeholder_in_production(settings) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ImproperlyConfigured

    from tasks_app.services.webhook_signatures import webhook_secret

    settings.PRODUCTION = True
    settings.HORIZON_WEBHOOK_SECRET = ""
    settings.SECRET_KEY = PLACEHOLDERS["DJANGO_SECRET_KEY"]
    with pytest.raises(ImproperlyConfigured, match="placeholder"):
        webhook_secret()
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    assert len(webhook_secret()) == 64


# --- the keyed chain ------------------------------------------------------------------------------


@pytest.fixture
def keyed() -> Iterator[None]:
    saved = audit.audit_keys()
    audit.configure_keys(KEY_1, 1)
    yield
    audit.configure_keys(
        saved.keys.get(saved.version), saved.version or 1, {v: k for v, k in saved.keys.items() if v != saved.version}
    )


def run_task() -> str:
    result = Runner(DjangoStore(), ScriptedModel(make_scenario(3))).start("Audit me", {"k": 1})
    assert result.status == "completed"
    return result.task_id


def _rewrite_as_superuser(task_id: str, seq: int, *, prefix: str = "") -> None:
    """What someone with the database but not the key can do: change an event, switch the triggers
    off, and recompute the plain SHA-256 chain from that event on (the task row too)."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                "UPDATE tasks_app_event SET payload = jsonb_set(payload, '{output}', '\"forged\"') "
                "WHERE task_id = %s AND seq = %s",
                [task_id, seq],
            )
            prev = Event.objects.get(task_id=task_id, seq=seq - 1).hash if seq > 1 else ""
            for event in Event.objects.filter(task_id=task_id, seq__gte=seq).order_by("seq"):
                digest = prefix + audit.event_hash(
                    prev,
                    task_id=task_id,
                    seq=event.seq,
                    type_=event.type,
                    schema_version=event.schema_version,
                    payload=event.payload,
                    worker=event.worker,
                    created_at=event.created_at,
                )
                cursor.execute("UPDATE tasks_app_event SET prev_hash = %s, hash = %s WHERE id = %s", [prev, digest, event.pk])
                prev = digest
            cursor.execute("UPDATE tasks_app_agenttask SET last_event_hash = %s WHERE id = %s", [prev, task_id])
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.django_db(transaction=True)
def test_a_keyed_chain_verifies_and_says_its_key_version(keyed: None) -> None:
    task_id = run_task()
    assert all(e.hash.startswith("k1:") for e in Event.objects.filter(task_id=task_id))
    out = StringIO()
    call_command("verify_events", task_id, stdout=out)
    assert f"task {task_id}: ok (" in out.getvalue() and "verified with key version 1" in out.getvalue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("prefix", "reason"), [("", "is not keyed"), ("k1:", "does not match its hash")])
def test_a_superusers_rewrite_with_recomputed_plain_hashes_is_detected(keyed: None, prefix: str, reason: str) -> None:
    task_id, other = run_task(), run_task()
    _rewrite_as_superuser(task_id, 4, prefix=prefix)
    out = StringIO()
    with pytest.raises(CommandError, match=f"first: task {task_id} at event 4"):
        call_command("verify_events", task_id, other, stdout=out)
    assert f"task {task_id}: BROKEN at event 4: its" in out.getvalue() and reason in out.getvalue()
    assert f"task {other}: ok" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_same_rewrite_passes_an_unkeyed_chain_which_is_why_production_needs_the_key() -> None:
    task_id = run_task()
    _rewrite_as_superuser(task_id, 4)
    [report] = events_verify(task_ids=[task_id])
    assert report.ok and report.key_versions == (0,)


@pytest.mark.django_db(transaction=True)
def test_a_rotated_key_verifies_old_and_new_events_and_a_missing_old_key_is_named(keyed: None) -> None:
    store = DjangoStore()
    task_id = run_task()
    audit.configure_keys(KEY_2, 2, {1: KEY_1})
    store.operator_change(
        task_id, OperatorChange(event=ev.new_event(ev.TASK_STUCK, {"since": "now"}), from_statuses=frozenset({"completed"}))
    )
    [report] = events_verify(task_ids=[task_id])
    assert report.ok and report.key_versions == (1, 2)
    out = StringIO()
    call_command("verify_events", task_id, stdout=out)
    assert "verified with key version 1 then key version 2" in out.getvalue()
    audit.configure_keys(KEY_2, 2)  # the old key dropped
    [report] = events_verify(task_ids=[task_id])
    assert report.broken_seq == 1 and "key version 1 is not configured" in report.reason


@pytest.mark.django_db(transaction=True)
def test_unkeyed_events_are_refused_under_a_key_unless_allowed(keyed: None) -> None:
    audit.configure_keys(None)
    task_id = run_task()  # written before the key existed
    audit.configure_keys(KEY_1, 1)
    [report] = events_verify(task_ids=[task_id])
    assert report.broken_seq == 1 and "not keyed" in report.reason
    [report] = events_verify(task_ids=[task_id], allow_unkeyed=True)
    assert report.ok and report.key_versions == (0,)


# --- the purge is the only delete -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_delete_setting_purges_a_whole_task_never_single_events() -> None:
    task_id, other = run_task(), run_task()
    for value in (task_id, "on"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('horizon.allow_event_delete', %s, true)", [value])
            cursor.execute("DELETE FROM tasks_app_event WHERE task_id = %s AND seq = 2", [task_id])
    # Every event of the task, but the task stays: refused at commit.
    with pytest.raises(DatabaseError, match="only with their whole task"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('horizon.allow_event_delete', %s, true)", [task_id])
        cursor.execute("DELETE FROM tasks_app_event WHERE task_id = %s", [task_id])
    # Naming one task does not open another's log.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('horizon.allow_event_delete', %s, true)", [task_id])
        cursor.execute("DELETE FROM tasks_app_event WHERE task_id = %s", [other])
    assert Event.objects.filter(task_id=task_id).count() == AgentTask.objects.get(pk=task_id).last_event_seq
    agent_task_purge(task_id=task_id)
    assert not Event.objects.filter(task_id=task_id).exists() and Event.objects.filter(task_id=other).exists()
