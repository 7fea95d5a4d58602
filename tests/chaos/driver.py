"""The fault driver (the nemesis): a timeline of faults against a live run, each one recorded.

Every fault records when it struck (wall clock, comparable with Event.created_at: one machine),
the unfinished goals' log positions at that moment and, for a killed or stopped worker, the goals
whose lease that worker held. Recovery is computed afterwards from the event log, so the driver
never waits on a guess: see Fault.recovery.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.chaos.fleet import TIMEOUTS, BrokerClient, WorkerSlot
from tests.chaos.probe import Probe
from tests.chaos.servers import PrivatePostgres, PrivateRedis
from tests.support.processes import REPO, CeleryBeat

LEASE = TIMEOUTS["HORIZON_LEASE_SECONDS"]
STOP_FOR = LEASE + 4  # SIGSTOP past the lease, and past a sweep that declares it stalled
DUPLICATES = 10
TWO_BEATS_FOR = 15.0
KILL_GAP = (3.0, 5.0)
# The test wants ten kills while the goals run. After every fault has happened once, kills come
# faster until ten have landed: the load finishes in about two minutes now that a tick waits for
# one WAL flush instead of three. The gap runs from the kill, not from the replacement being ready:
# on a loaded machine a worker takes seconds to start, and waiting for it made the tail too slow
# to reach ten kills (9 on CI).
KILLS_WANTED = 10
TAIL_KILL_GAP = (1.5, 3.0)
# A replacement works this long before it may be killed, so that the goals always move between kills.
MIN_WORKER_LIFE = 3.0


@dataclass
class Fault:
    kind: str
    at: datetime
    detail: str = ""
    active: dict[str, int] = field(default_factory=dict)  # unfinished goals -> log position
    held: dict[str, int] = field(default_factory=dict)  # goals the faulty worker held -> log position
    held_resumed_s: float | None = None
    all_moved_s: float | None = None
    unmoved: list[str] = field(default_factory=list)

    def recovery(self, probe: Probe, exclude: set[str]) -> None:
        """Seconds until every goal the fault held committed again, and until every unfinished goal did."""

        def latest(positions: dict[str, int]) -> tuple[float | None, list[str]]:
            positions = {t: s for t, s in positions.items() if t not in exclude}
            if not positions:
                return None, []
            moved = probe.moved_at(positions)
            never = [t for t, when in moved.items() if when is None]
            times = [when for when in moved.values() if when is not None]
            return (max(times) - self.at).total_seconds() if times else None, never

        self.held_resumed_s, never_held = latest(self.held)
        self.all_moved_s, never_all = latest(self.active)
        self.unmoved = sorted(set(never_held) | set(never_all))


def now() -> datetime:
    return datetime.now(UTC)


class Driver:
    def __init__(
        self,
        *,
        slots: list[WorkerSlot],
        redis_server: PrivateRedis,
        postgres: PrivatePostgres,
        probe: Probe,
        client: BrokerClient,
        env: dict[str, str],
        beats: list[CeleryBeat],
        make_beat,  # type: ignore[no-untyped-def]
        goals: list[str],
        cancellable: list[str],
        seed: int,
    ) -> None:
        self.slots = slots
        self.redis = redis_server
        self.postgres = postgres
        self.probe = probe
        self.client = client
        self.env = env
        self.beats = beats
        self.make_beat = make_beat
        self.goals = goals
        self.all_goals = goals + cancellable
        self.cancellable = list(cancellable)
        self.rng = random.Random(seed)
        self.faults: list[Fault] = []
        self.kills = 0
        self.worker_restarts = 0
        self.restarting: list[threading.Thread] = []
        self.restart_errors: list[BaseException] = []
        self.next_slot = 0
        self.cancelled: list[str] = []
        self.duplicate_ids: list[str] = []
        self.duplicate_goal = ""
        self.zombie = None
        self.zombie_resumed_at: datetime | None = None
        self.zombie_pids: set[int] = set()
        self.beat_sweeps: dict[str, int] = {}

    # --- bookkeeping -----------------------------------------------------------------------------

    def record(self, kind: str, detail: str = "", held: dict[str, int] | None = None) -> Fault:
        fault = Fault(kind=kind, at=now(), detail=detail, active=self.probe.positions(self.all_goals), held=held or {})
        self.faults.append(fault)
        return fault

    def settled(self) -> bool:
        statuses = self.probe.statuses(self.all_goals)
        return all(status in ("completed", "failed", "cancelled", "requires_human") for status in statuses.values())

    def pause(self) -> None:
        time.sleep(self.rng.uniform(*KILL_GAP))

    # --- faults ----------------------------------------------------------------------------------

    def baseline(self) -> None:
        """No fault: how long every unfinished goal takes to move once when nothing goes wrong."""
        self.record("(no fault: baseline)")

    def kill(self) -> None:
        """SIGKILL one worker's whole process tree, as a crashed machine, and start a new one.

        The replacement starts in the background and keeps the slot locked until it is ready, so the
        next fault on that slot strikes a running worker while the driver goes on with the other one.
        """
        self.check_restarts()
        slot = self.slots[self.next_slot % len(self.slots)]
        self.next_slot += 1
        slot.lock.acquire()
        try:
            time.sleep(max(0.0, slot.ready_at + MIN_WORKER_LIFE - time.monotonic()))
            pids = slot.pids()
            held = self.probe.held_by(pids, self.all_goals)
            self.record("SIGKILL worker", f"{slot.current.name}, held {len(held)}", held)
            slot.current.kill(signal.SIGKILL)
            self.kills += 1
        except BaseException:
            slot.lock.release()
            raise
        thread = threading.Thread(target=self._restart, args=(slot,), name=f"restart-{slot.name}", daemon=True)
        self.restarting.append(thread)
        thread.start()

    def _restart(self, slot: WorkerSlot) -> None:
        try:
            slot.start()
            self.worker_restarts += 1
        except BaseException as exc:  # re-raised in the driver's thread by check_restarts
            self.restart_errors.append(exc)
        finally:
            slot.lock.release()

    def finish_restarts(self, *, check: bool = True) -> None:
        """Wait until every replacement worker has started (or failed to)."""
        for thread in self.restarting:
            thread.join()
        if check:
            self.check_restarts()

    def check_restarts(self) -> None:
        """Raise, in the driver's thread, the first failure to start a replacement worker."""
        if self.restart_errors:
            raise RuntimeError("a replacement worker did not start") from self.restart_errors[0]

    def stop_and_continue(self) -> None:
        """SIGSTOP a worker past its lease, then SIGCONT: the zombie's writes must be fenced.

        The whole process tree stops, as in a VM pause. On SIGCONT the pool processes are resumed a
        second before the worker's main process: Celery's time limits live in the main process, and
        resumed together they usually kill the zombie's tick before it writes. The storage fence
        must hold without that help, so the zombie gets a second of free run first.
        """
        slot = self.slots[self.next_slot % len(self.slots)]
        self.next_slot += 1
        with slot.lock:
            worker = slot.current
            deadline = time.monotonic() + 10
            while True:  # strike while the worker holds a lease, so that there is a zombie to fence
                pids = slot.pids()
                held = self.probe.held_by(pids, self.all_goals)
                if held or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            os.killpg(worker.pid, signal.SIGSTOP)
            self.record("SIGSTOP worker > lease", f"{worker.name} for {STOP_FOR:.0f}s, held {len(held)}", held)
            self.zombie_pids = pids - {worker.pid}
            time.sleep(STOP_FOR)
            for pid in self.zombie_pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            self.zombie_resumed_at = now()
            time.sleep(1.0)
            os.killpg(worker.pid, signal.SIGCONT)
            self.zombie = worker
        time.sleep(3)  # let the zombie reach its fenced commits before anything else happens

    def duplicate_tick(self) -> None:
        """Deliver the same tick ten times at once for one unfinished goal."""
        positions = self.probe.positions(self.goals)
        self.duplicate_goal = self.rng.choice(sorted(positions))
        fault = self.record("same tick x10 at once", self.duplicate_goal[:8])
        fault.held = {self.duplicate_goal: positions[self.duplicate_goal]}
        self.duplicate_ids = self.client.deliver_at_once(self.duplicate_goal, DUPLICATES)

    def cancel(self, count: int) -> None:
        """Cancel goals in mid-run, through the operator command, all at once."""
        statuses = self.probe.statuses(self.cancellable)
        chosen = [t for t in self.cancellable if statuses.get(t) not in ("completed", "failed", "cancelled")][:count]
        self.cancellable = [t for t in self.cancellable if t not in chosen]
        procs = [
            subprocess.Popen(
                [sys.executable, "manage.py", "task_control", "cancel", task_id, "--reason", "chaos: cancelled mid-run"],
                cwd=REPO,
                env={**os.environ, **self.env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for task_id in chosen
        ]
        for task_id, proc in zip(chosen, procs, strict=True):
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"cancelling {task_id} failed: {err.decode(errors='replace')}")
        self.cancelled += chosen

    def restart_redis(self) -> None:
        """Crash Redis and start it empty: every queued and unacked tick is gone."""
        self.finish_restarts()  # a worker starting against a server going down tests neither
        self.record("Redis restart (queue wiped)")
        self.redis.restart()

    def restart_postgres(self) -> None:
        self.finish_restarts()
        fault = self.record("PostgreSQL restart")
        started = time.monotonic()
        self.postgres.restart()
        fault.detail = f"down {time.monotonic() - started:.1f}s"

    def two_beats(self) -> None:
        """A second beat for a while, with kills going on."""
        self.record("two beats", f"{TWO_BEATS_FOR:.0f}s")
        before = {b.name: b.sent() for b in self.beats}
        second = self.make_beat("b2").start()
        self.beats.append(second)
        ends = time.monotonic() + TWO_BEATS_FOR
        while time.monotonic() < ends:
            time.sleep(min(self.rng.uniform(*KILL_GAP), max(0.0, ends - time.monotonic())))
            if time.monotonic() < ends and not self.settled():
                self.kill()
        second.stop()
        self.beat_sweeps = {b.name: b.sent() - before.get(b.name, 0) for b in self.beats}

    # --- the timeline ----------------------------------------------------------------------------

    def run(self, *, settle_timeout: float) -> float:
        """Every fault once, with kills between them; then kills every few seconds until the goals settle."""
        started = time.monotonic()
        timeline = [
            self.baseline,
            lambda: self.cancel(2),
            self.kill,
            self.stop_and_continue,
            self.kill,
            self.duplicate_tick,
            lambda: self.cancel(3),
            self.kill,
            self.restart_redis,
            self.kill,
            self.restart_postgres,
            self.kill,
            self.two_beats,
        ]
        try:
            for step in timeline:
                step()
                if self.settled():
                    break
                self.pause()
            while not self.settled():
                if time.monotonic() - started > settle_timeout:
                    raise TimeoutError(f"the goals did not settle within {settle_timeout:.0f}s")
                self.kill()
                # Poll while waiting for the next kill, so that the end of the run is seen at once.
                gap = TAIL_KILL_GAP if self.kills < KILLS_WANTED else KILL_GAP
                gap_ends = time.monotonic() + self.rng.uniform(*gap)
                while time.monotonic() < gap_ends and not self.settled():
                    time.sleep(0.5)
        finally:
            self.finish_restarts(check=False)  # every worker started is known to its slot before the slots stop
        self.check_restarts()
        return time.monotonic() - started
