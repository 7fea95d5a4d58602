"""Horizon's settings with database connections kept across Celery tasks: `step_overhead.py --db-reuse-max N`.

With the project's settings, Celery's Django fixup (celery/fixups/django.py, Celery 5.7) calls
`connection.close()` before and after every task, whatever CONN_MAX_AGE says: every tick, and
every baseline task, opens a new PostgreSQL connection and starts on a backend whose catalog caches
are cold. Only Celery's CELERY_DB_REUSE_MAX changes that (the fixup then closes connections every
N tasks). This module measures what that would buy, without touching the project's settings: the
workers of that experiment run with DJANGO_SETTINGS_MODULE=benchmarks.conn_reuse_settings.

Not a production recommendation as it stands: between those closes nothing checks that a kept
connection still works (CONN_HEALTH_CHECKS acts only through close_if_unusable_or_obsolete, which
the fixup does not call), so a restarted database would fail ticks until the next close.
"""

import os

from horizon_project.settings import *  # noqa: F403 - the project's settings, then one change

CELERY_DB_REUSE_MAX = int(os.environ.get("BENCH_DB_REUSE_MAX", "1000"))
