"""Forks on PostgreSQL (tasks_app/services/forks.py): a fork resumes exactly from its checkpoint,
reusing the calls journaled before it and making the later ones again, leaves its source untouched,
runs under another profile or model when asked; compare_branches and the admin's fork action and
Branches page. The LLM is the offline scripted model behind a recorder."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client

from agents.scripted import ScriptedModel, validate_scenario
from agents.status import TaskStatus
from agents.types import LLMRequest, LLMResponse
from tasks_app.models import AgentTask, Checkpoint, Event, Step
from tasks_app.models import JournalEntry as JournalRow
from tasks_app.services.audit import events_verify
from tasks_app.services.control import signal_send
from tasks_app.services.forks import agent_task_fork
from tasks_app.services.tasks import agent_task_create, agent_task_drive

pytestmark = pytest.mark.django_db

SCENARIO = validate_scenario(
    {
        "name": "fork",
        "plan": [{"title": "Collect facts"}, {"title": "Wait for the go"}, {"title": "Configure"}, {"title": "Report"}],
        "steps": {
            "0": [{"tool": "write_file", "arguments": {"path": "facts.md", "content": "acme"}}, {"final": "facts saved"}],
            "1": [{"tool": "wait_for_signal", "arguments": {"names": ["go"]}}, {"final": "got the go"}],
            "2": [{"tool": "write_file", "arguments": {"path": "config.json", "content": "{}"}}, {"final": "configured"}],
            "3": [{"final": "all done"}],
        },
    }
)


class Recorder:
    """The scripted model, recording what it was asked: (purpose, step index, tool results so far)."""

    name = "recorder"

    def __init__(self) -> None:
        self.inner = ScriptedModel(SCENARIO)
        self.asked: list[tuple[str, int | None, int]] = []
        self.systems: list[str] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        turn = sum(1 for m in request.messages if m.get("role") == "tool")
        self.asked.append((request.purpose, request.step_index, turn))
        self.systems.append(str(request.messages[0]["content"]))
        return self.inner.complete(request)


def run_source() -> AgentTask:
    """A task run to its end: it waited for a signal at step 1 in the middle."""
    task = agent_task_create(goal="Onboard Acme")
    agent_task_drive(task_id=str(task.pk), model=Recorder())
    task.refresh_from_db()
    assert task.status == TaskStatus.WAITING
    signal_send(task_id=str(task.pk), name="go", payload=None)
    agent_task_drive(task_id=str(task.pk), model=Recorder())
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    return task


def checkpoint_where(task: AgentTask, **state: Any) -> Checkpoint:
    for cp in Checkpoint.objects.filter(task=task).order_by("seq"):
        if all(cp.state.get(k) == v for k, v in state.items()):
            return cp
    raise AssertionError(f"no checkpoint with {state}")


def snapshot(task: AgentTask) -> dict[str, Any]:
    return {
        "row": AgentTask.objects.filter(pk=task.pk).values().get(),
        "events": list(Event.objects.filter(task=task).order_by("seq").values_list("seq", "type", "payload")),
        "steps": list(Step.objects.filter(task=task).order_by("index").values()),
        "journal": list(JournalRow.objects.filter(task=task).order_by("id").values()),
        "checkpoints": list(Checkpoint.objects.filter(task=task).order_by("seq").values()),
    }


def test_a_fork_from_an_early_checkpoint_reuses_what_was_journaled_and_reruns_the_rest() -> None:
    source = run_source()
    before = snapshot(source)
    after_step0 = checkpoint_where(source, next_step=1, status="running")
    fork = agent_task_fork(source_task_id=str(source.pk), checkpoint_seq=after_step0.seq)

    # The log up to the checkpoint, then task.forked.
    copied = list(Event.objects.filter(task=fork).order_by("seq").values_list("seq", "type", "payload"))
    assert copied[:-1] == before["events"][: after_step0.event_seq]
    assert copied[-1][1] == "task.forked"
    assert copied[-1][2]["source"] == str(source.pk) and copied[-1][2]["checkpoint_seq"] == after_step0.seq
    assert [s.status for s in fork.steps.order_by("index")] == ["completed", "pending", "pending", "pending"]
    fork_keys = set(JournalRow.objects.filter(task=fork).values_list("key", flat=True))
    assert f"{fork.pk}/p1/plan/c0" in fork_keys and f"{fork.pk}/p1/s0/c1" in fork_keys
    assert not any("/s1/" in k or "/s2/" in k for k in fork_keys)  # made after the checkpoint: not copied

    model = Recorder()
    agent_task_drive(task_id=str(fork.pk), model=model)
    fork.refresh_from_db()
    assert fork.status == TaskStatus.WAITING  # its own wait: the source's signal was the source's
    signal_send(task_id=str(fork.pk), name="go", payload=None)
    agent_task_drive(task_id=str(fork.pk), model=model)
    fork.refresh_from_db()
    assert fork.status == TaskStatus.COMPLETED and fork.result["output"] == "all done"
    # Nothing before the checkpoint was asked again (no plan, no step 0); the rest was.
    assert ("plan", None, 0) not in model.asked and all(index != 0 for _, index, _ in model.asked)
    assert {index for _, index, _ in model.asked} == {1, 2, 3}
    assert snapshot(source) == before  # the source is untouched
    replayed = StringIO()
    call_command("replay", str(fork.pk), stdout=replayed)  # its whole log rebuilds its last checkpoint
    assert "matches" in replayed.getvalue()
    # The copied log is chained anew under the fork's id, and its own ticks continue that chain.
    assert [r.ok for r in events_verify(task_ids=[str(source.pk), str(fork.pk)])] == [True, True]


def test_a_fork_from_a_waiting_checkpoint_resumes_the_wait_from_the_journal() -> None:
    source = run_source()
    waiting = checkpoint_where(source, status="waiting")
    fork = agent_task_fork(source_task_id=str(source.pk), checkpoint_seq=waiting.seq)
    model = Recorder()
    agent_task_drive(task_id=str(fork.pk), model=model)
    fork.refresh_from_db()
    assert fork.status == TaskStatus.WAITING
    assert model.asked == []  # the step's call that asked to wait came from the journal
    wait = JournalRow.objects.get(key=f"{fork.pk}/p1/s1/c1")
    assert wait.status == "started" and wait.result["wait"]["names"] == ["go"]  # as it was at the checkpoint
    signal_send(task_id=str(fork.pk), name="go", payload={"by": "fork"})
    agent_task_drive(task_id=str(fork.pk), model=model)
    fork.refresh_from_db()
    assert fork.status == TaskStatus.COMPLETED
    assert model.asked[0] == ("step", 1, 1)  # step 1 went on after its wait: only the answer to the signal was asked
    assert Step.objects.get(task=fork, index=1).attempts >= 1


def test_a_fork_with_another_profile_and_model() -> None:
    source = run_source()
    after_step0 = checkpoint_where(source, next_step=1, status="running")
    fork = agent_task_fork(source_task_id=str(source.pk), checkpoint_seq=after_step0.seq, profile="careful", model="gpt-x")
    assert fork.profile == "careful"
    assert fork.profile_config["self_review"] is True and fork.profile_config["model"] == "gpt-x"
    forked = Event.objects.get(task=fork, type="task.forked").payload
    assert forked["profile"] == "careful" and forked["model"] == "gpt-x"
    model = Recorder()
    agent_task_drive(task_id=str(fork.pk), model=model)
    signal_send(task_id=str(fork.pk), name="go", payload=None)
    agent_task_drive(task_id=str(fork.pk), model=model)
    fork.refresh_from_db()
    assert fork.status == TaskStatus.COMPLETED, fork.status_reason
    step_systems = [s for (purpose, _, _), s in zip(model.asked, model.systems, strict=True) if purpose == "step"]
    assert step_systems and all("Work carefully" in s for s in step_systems)
    assert any(purpose == "review" for purpose, _, _ in model.asked)  # careful reviews its steps
    source.refresh_from_db()
    assert source.profile == "default"


def test_fork_refuses_bad_input() -> None:
    source = run_source()
    last = Checkpoint.objects.filter(task=source).order_by("-seq").first()
    assert last is not None
    with pytest.raises(CommandError, match="has no checkpoint 999"):
        call_command("fork_task", str(source.pk), "--checkpoint", "999")
    with pytest.raises(CommandError, match="nothing is left to run"):
        call_command("fork_task", str(source.pk), "--checkpoint", str(last.seq))
    with pytest.raises(CommandError, match="unknown profile 'nope'"):
        call_command("fork_task", str(source.pk), "--checkpoint", "1", "--profile", "nope")
    with pytest.raises(CommandError):
        call_command("fork_task", "not-a-task", "--checkpoint", "1")
    assert AgentTask.objects.count() == 1  # nothing was written


def test_fork_task_command_and_compare_branches() -> None:
    source = run_source()
    out = StringIO()
    call_command("fork_task", str(source.pk), "--checkpoint", "2", stdout=out)
    fork_id = out.getvalue().split()[1]
    fork = AgentTask.objects.get(pk=fork_id)
    agent_task_drive(task_id=fork_id, model=Recorder())
    signal_send(task_id=fork_id, name="go", payload=None)
    agent_task_drive(task_id=fork_id, model=Recorder())
    # A fork of the fork, under another profile, left to run later.
    grand = agent_task_fork(source_task_id=fork_id, checkpoint_seq=3, profile="careful")

    table = StringIO()
    call_command("compare_branches", str(source.pk), stdout=table)
    lines = table.getvalue().splitlines()
    assert lines[0].split()[:4] == ["branch", "from", "profile", "status"]
    assert lines[1].startswith(str(source.pk)) and "completed" in lines[1] and "all done" in lines[1]
    assert lines[2].startswith(f"  {fork_id}") and "#2" in lines[2] and "completed" in lines[2]
    assert lines[3].startswith(f"    {grand.pk}") and "#3" in lines[3] and "careful" in lines[3] and "running" in lines[3]

    data = StringIO()
    call_command("compare_branches", str(source.pk), "--json", stdout=data)
    branches = json.loads(data.getvalue())
    assert [b["depth"] for b in branches] == [0, 1, 2]
    assert [b["source_id"] for b in branches] == [None, str(source.pk), fork_id]
    fork.refresh_from_db()
    source.refresh_from_db()
    assert branches[1]["tokens"] == fork.prompt_tokens + fork.completion_tokens > 0
    assert branches[0]["tokens"] == source.prompt_tokens + source.completion_tokens
    assert branches[0]["steps_completed"] == 4 and branches[1]["status"] == "completed"
    with pytest.raises(CommandError):
        call_command("compare_branches", "00000000-0000-0000-0000-000000000000")


def test_fork_task_run_drives_the_fork(settings) -> None:  # type: ignore[no-untyped-def]
    source = agent_task_create(goal="Onboard Acme")
    scenario = validate_scenario({"name": "short", "plan": [{"title": "A"}, {"title": "B"}, {"title": "C"}]})
    agent_task_drive(task_id=str(source.pk), model=ScriptedModel(scenario))
    source.refresh_from_db()
    assert source.status == TaskStatus.COMPLETED
    out = StringIO()
    call_command("fork_task", str(source.pk), "--checkpoint", "1", "--run", stdout=out)
    assert ": completed" in out.getvalue()
    fork = AgentTask.objects.exclude(pk=source.pk).get()
    assert fork.status == TaskStatus.COMPLETED


# --- admin -------------------------------------------------------------------------------------


def staff_client(*perms: str) -> Client:
    user = User.objects.create_user("op", password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_admin_fork_action_and_branches_page() -> None:
    source = run_source()
    client = staff_client("view_agenttask", "change_agenttask")
    page = client.get(f"/admin/tasks_app/agenttask/{source.pk}/change/")
    assert page.status_code == 200
    fork_url = f"/admin/tasks_app/agenttask/{source.pk}/fork/2/"
    assert fork_url in page.content.decode() and "Fork from checkpoint #2" in page.content.decode()
    assert f"/admin/tasks_app/agenttask/{source.pk}/branches/" in page.content.decode()

    confirm = client.get(fork_url)
    assert confirm.status_code == 200 and b'id="confirm-fork"' in confirm.content
    done = client.post(fork_url, {"profile": "careful", "model": ""})
    assert done.status_code == 302
    fork = AgentTask.objects.exclude(pk=source.pk).get()
    assert done["Location"] == f"/admin/tasks_app/agenttask/{fork.pk}/change/"
    assert fork.profile == "careful" and Event.objects.filter(task=fork, type="task.forked").exists()

    branches = client.get(f"/admin/tasks_app/agenttask/{source.pk}/branches/")
    html = branches.content.decode()
    assert branches.status_code == 200
    assert str(source.pk) in html and str(fork.pk) in html and "#2 of" in html and "careful" in html

    refused = client.post(f"/admin/tasks_app/agenttask/{source.pk}/fork/999/")
    assert refused.status_code == 404


def test_admin_fork_needs_the_change_permission() -> None:
    source = run_source()
    viewer = staff_client("view_agenttask")
    page = viewer.get(f"/admin/tasks_app/agenttask/{source.pk}/fork/2/")
    assert page.status_code == 200 and b"confirm-fork" not in page.content
    assert viewer.post(f"/admin/tasks_app/agenttask/{source.pk}/fork/2/").status_code == 403
    assert AgentTask.objects.count() == 1
