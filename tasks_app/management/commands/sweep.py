import json
from typing import Any

from tasks_app.management.base import HorizonCommand
from tasks_app.services.sweep import sweep


class Command(HorizonCommand):
    help = "Run one sweep now (celery-beat runs it every 5 s): enqueue due and stalled tasks, enforce deadlines."

    def handle(self, *args: Any, **options: Any) -> None:
        report = sweep()
        self.stdout.write("skipped: another sweep is running" if report.skipped else json.dumps(report.counts()))
