"""Run one tick of a task in this process and SIGKILL it right after a spawn's transaction commits.

`python -m tests.support.spawn_crash TASK_ID` (with DATABASE_URL and HORIZON_SCENARIO set): the
tick spawns the step's sub-agents (journal row and children committed together) and the process
dies before the tick's own commit, holding its lease, as a worker killed at that instant would.
"""

from __future__ import annotations

import os
import signal
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "horizon_project.settings")
django.setup()

from tasks_app.runtime import build_runner  # noqa: E402
from tasks_app.store import DjangoStore  # noqa: E402


class DiesAfterSpawn(DjangoStore):
    def spawn_children(self, lease, entry, children):  # type: ignore[no-untyped-def]
        super().spawn_children(lease, entry, children)
        print(f"spawned {len(children)} children; dying", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    runner = build_runner()
    runner.store = DiesAfterSpawn()
    runner.tick(sys.argv[1])
