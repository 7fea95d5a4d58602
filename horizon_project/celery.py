"""The Celery app. Every setting comes from Django settings under the CELERY_ namespace."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "horizon_project.settings")

app = Celery("horizon_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
