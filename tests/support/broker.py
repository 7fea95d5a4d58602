"""A look into the Redis broker the worker processes use: what is queued, what is delivered and unacked."""

from __future__ import annotations

import redis
from django.conf import settings

# The keys kombu's Redis transport keeps for the default queue and for delivered-but-unacked
# messages (ack emulation). Leftovers of an earlier run, such as a killed worker's unacked ticks,
# would be restored into this run's queue and ring for tasks of a database that no longer exists.
QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
UNACKED_KEYS = ("unacked", "unacked_index", "unacked_mutex")


class Broker:
    """A look into the Redis broker the workers use (db 15 under scripts/test.sh)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def purge(self) -> None:
        # A queue with priorities lives in several lists named QUEUE + separator + priority.
        keys = [QUEUE, *UNACKED_KEYS, *self.client.scan_iter(match=f"{QUEUE}\x06\x16*")]
        self.client.delete(*keys)

    def queued(self) -> list[bytes]:
        return list(self.client.lrange(QUEUE, 0, -1))

    def unacked(self) -> list[bytes]:
        return list(self.client.hvals("unacked"))

    def task_ids_with_messages(self, task_ids: list[str]) -> set[str]:
        """The tasks for which a tick waits in the queue or is delivered and not yet acked."""
        # One snapshot of both places. Message headers carry the arguments in plain text
        # (argsrepr), so a substring test finds a task id in the raw messages.
        messages = self.queued() + self.unacked()
        return {task_id for task_id in task_ids if any(task_id.encode() in raw for raw in messages)}
