"""Saved goals that celery-beat starts on a schedule."""

from __future__ import annotations

from django.db import models


class GoalTemplate(models.Model):
    """A goal that celery-beat starts on a schedule (issue 5): each run is a new task from this template.

    The schedule is a django-celery-beat PeriodicTask (task "horizon.start_goal", kwargs {"template": name}),
    so operators see and edit it in the admin next to the sweep. Services: tasks_app/services/schedules.py.
    A disabled template keeps its schedule row but starts nothing (and the row is disabled too).
    """

    name = models.CharField(max_length=100, unique=True)
    goal = models.TextField()
    context = models.JSONField(default=dict, blank=True)
    profile = models.CharField(max_length=100, default="default")
    max_steps = models.PositiveIntegerField(null=True, blank=True)  # None: the HORIZON_MAX_STEPS setting
    enabled = models.BooleanField(default=True)
    # SET_NULL: deleting the schedule in the admin stops the runs but keeps the template.
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="goal_template"
    )
    # Set by the conditional UPDATE that starts a run: a second beat (a rolling deploy) or a
    # duplicated message within START_GUARD_SECONDS starts nothing (tasks_app/services/schedules.py).
    last_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
