"""The celery-beat schedule for the sweeper (tasks_app/services/sweep.py): one row, created idempotently.

DatabaseScheduler reads it; an operator can change the interval in the admin (Periodic tasks).
Every 5 seconds by default: the sweep's queries are indexed over due work only, so a frequent
sweep of an idle fleet costs next to nothing.
"""

from django.db import migrations

SWEEP_TASK = "horizon.sweep"
EVERY_SECONDS = 5


def create_schedule(apps, schema_editor):  # type: ignore[no-untyped-def]
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    periodic_model = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = interval_model.objects.get_or_create(every=EVERY_SECONDS, period="seconds")
    periodic_model.objects.get_or_create(
        name=SWEEP_TASK,
        defaults={
            "task": SWEEP_TASK,
            "interval": interval,
            # A sweep that waited longer than its interval is stale: the next one replaces it.
            "expire_seconds": EVERY_SECONDS,
            "description": "Horizon: enqueue due and stalled tasks, enforce deadlines, flag stuck tasks",
        },
    )


def remove_schedule(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0004_sweeper_signals"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
