from __future__ import annotations

import pytest
from django.core.management import call_command

from tasks_app.models import AgentTask

pytestmark = pytest.mark.django_db


def test_a_staff_user_sees_tasks_with_their_steps_and_events(admin_client) -> None:  # type: ignore[no-untyped-def]
    from io import StringIO

    call_command("run_goal", "Onboard Acme Corp", stdout=StringIO())
    task = AgentTask.objects.get()
    listing = admin_client.get("/admin/tasks_app/agenttask/")
    assert listing.status_code == 200 and b"Onboard Acme Corp" in listing.content
    page = admin_client.get(f"/admin/tasks_app/agenttask/{task.pk}/change/")
    assert page.status_code == 200
    assert b"Write the welcome note" in page.content and b"task.completed" in page.content


def test_events_and_checkpoints_cannot_be_edited_or_deleted(admin_client) -> None:  # type: ignore[no-untyped-def]
    from io import StringIO

    from tasks_app.models import AppendOnlyError, Event

    call_command("run_goal", "Onboard Acme Corp", stdout=StringIO())
    event = Event.objects.first()
    assert event is not None
    event.payload = {"tampered": True}
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    checkpoint_id = AgentTask.objects.get().checkpoints.first().pk
    assert admin_client.post(f"/admin/tasks_app/checkpoint/{checkpoint_id}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/tasks_app/agenttask/add/").status_code == 403
