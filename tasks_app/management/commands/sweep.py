import json

from django.core.management.base import BaseCommand

from tasks_app.services.sweep import sweep


class Command(BaseCommand):
    help = "Run one sweep now (celery-beat runs it every 5 s): enqueue due and stalled tasks, enforce deadlines."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        report = sweep()
        self.stdout.write("skipped: another sweep is running" if report.skipped else json.dumps(report.counts()))
