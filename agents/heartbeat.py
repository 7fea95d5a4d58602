"""The lease heartbeat: short leases, kept alive for as long as their tick lives.

A lease is short (HORIZON_LEASE_SECONDS, 20 s by default) so that a dead worker's task moves on
within about one lease. A live tick may run far longer (a model that thinks for minutes), so while
it runs its lease is renewed every `interval` seconds by one thread per process, in one statement
for every tick in flight (Store.renew). The renewal is fenced like every write: it names the epoch
and the owner, so a lease that was taken over (this process was frozen or cut off past its expiry)
is not renewed but reported lost, and its tick stops before its commit (Runner.tick checks
`Kept.lost`); the fence on every write would refuse it anyway, this only stops it early.

A tick may also have a time limit (its profile's hard limit, tasks_app/runtime.py): past it the
heartbeat stops renewing, so a tick stuck beyond every timeout loses its lease within one lease and
another worker takes the task over; the stuck tick's writes are fenced. This is the hard limit of
pools that enforce none themselves (Celery's threads pool).

Failures to renew (the database restarting) are logged and tried again at the next beat: a lease
survives one missed renewal (the start-up check wants at least two renewals per lease).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agents.types import Lease

logger = logging.getLogger("horizon.heartbeat")


class RenewingStore(Protocol):
    """The one method of a TickStore (agents/store.py) the heartbeat calls: a test can hand it a stub."""

    def renew(self, leases: Sequence[Lease], *, lease_seconds: float) -> list[Lease]: ...


@dataclass(eq=False)
class Kept:
    """One tick's lease under the heartbeat. `lost` is set when a renewal was refused (taken over)
    or the tick outlived its time limit."""

    lease: Lease
    deadline: float | None = None  # time.monotonic() past which the lease is no longer renewed
    lost: threading.Event = field(default_factory=threading.Event)
    reason: str = ""


class Heartbeat:
    def __init__(self, store: RenewingStore, *, lease_seconds: float, interval: float | None = None) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.interval = interval if interval is not None else lease_seconds / 4
        self._kept: set[Kept] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.renewals = 0  # statements sent (tests and benchmarks read it)

    def keep(self, lease: Lease, *, limit: float | None = None) -> Kept:
        kept = Kept(lease, deadline=time.monotonic() + limit if limit else None)
        with self._lock:
            self._kept.add(kept)
            self._ensure_thread()
        return kept

    def set_limit(self, kept: Kept, limit: float | None) -> None:
        kept.deadline = time.monotonic() + limit if limit else None

    def update(self, kept: Kept, lease: Lease) -> None:
        """The tick goes on under another Lease object (same epoch and owner, fresher data)."""
        kept.lease = lease

    def drop(self, kept: Kept) -> None:
        with self._lock:
            self._kept.discard(kept)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._kept)

    def _ensure_thread(self) -> None:
        # A forked pool child inherits the object but not the thread: start one of its own.
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="horizon-heartbeat", daemon=True)
            self._thread.start()

    def beat(self) -> None:
        """Renew every kept lease once (the thread calls this every `interval`; tests call it directly)."""
        now = time.monotonic()
        with self._lock:
            kept = list(self._kept)
        overdue = [k for k in kept if k.deadline is not None and now > k.deadline]
        for k in overdue:
            k.reason = "the tick outlived its time limit; its lease is left to expire"
            k.lost.set()
            self.drop(k)
        live = [k for k in kept if k not in overdue and not k.lost.is_set()]
        if not live:
            return
        lost = self.store.renew([k.lease for k in live], lease_seconds=self.lease_seconds)
        self.renewals += 1
        lost_ids = {(lease.task_id, lease.epoch) for lease in lost}
        for k in live:
            if (k.lease.task_id, k.lease.epoch) in lost_ids:
                k.reason = f"lease epoch {k.lease.epoch} was taken over"
                k.lost.set()
                self.drop(k)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                if not self._kept:  # nothing in flight: the next keep() starts a thread again
                    self._thread = None
                    return
            try:
                self.beat()
            except Exception:  # a database restarting: the next beat tries again
                logger.warning("lease renewal failed; retrying in %.1f s", self.interval, exc_info=True)
