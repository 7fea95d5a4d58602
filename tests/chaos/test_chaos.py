"""Chaos: 100 goals of 10 steps on two real workers and a real beat, under faults (issue 4, "Proof").

The servers are private (tests/chaos/conftest.py), so the driver (tests/chaos/driver.py) may
crash them. While the goals run it SIGKILLs a worker every few seconds and restarts it; SIGSTOPs
a worker past its lease and SIGCONTs it; restarts Redis without persistence (the queue is wiped);
restarts PostgreSQL; delivers the same tick ten times at once; runs a second beat for a while; and
cancels a few extra goals in mid-run.

Then, from the database: every goal completed; every step's side effect happened exactly once
(the tool writes under the call's journal key and counts its attempts apart); every event log is
gap-free; nothing of a cancelled goal ran after its cancel. It prints the figures: goals, steps,
kills, restarts, duplicates, fenced zombie writes and the recovery after each fault.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tasks_app.models import JournalEntry, Step
from tests.chaos.conftest import STEPS, ChaosServers
from tests.chaos.driver import DUPLICATES, KILLS_WANTED, TWO_BEATS_FOR, Driver, Fault
from tests.chaos.fleet import BrokerClient, WorkerSlot, create_goals
from tests.chaos.probe import EVENTS, TASKS, Probe
from tests.support.processes import CeleryBeat

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

GOALS = 100
CANCELLED = 5  # extra goals, cancelled in mid-run; not among the GOALS that must complete
SETTLE_TIMEOUT = 360.0
# Generous: lease (6 s) + visibility timeout (12 s) + the sweeper's redelivery (20 s) + queue cycles, on a slow CI machine.
RECOVERY_BOUND = 90.0
STEPS_TABLE = Step._meta.db_table
JOURNAL = JournalEntry._meta.db_table
TICK_LINE = re.compile(rb"Task horizon\.tick\[([0-9a-f-]{36})\] (\w+)")


def worker_log_figures(logs: list[Path]) -> dict[str, object]:
    fenced = problems = sweeps_run = sweeps_expired = 0
    outcomes: dict[str, list[str]] = {}
    for path in logs:
        if not path.exists():
            continue
        data = path.read_bytes()
        fenced += data.count(b"was fenced")
        sweeps_run += len(re.findall(rb"Task horizon\.sweep\[[0-9a-f-]+\] succeeded", data))
        sweeps_expired += data.count(b"Discarding revoked task: horizon.sweep")
        for line in data.splitlines():
            match = TICK_LINE.search(line)
            if match:
                outcomes.setdefault(match.group(1).decode(), []).append(match.group(2).decode())
                if match.group(2) not in (b"received", b"succeeded"):
                    problems += 1
    return {
        "fenced": fenced,
        "tick_problems": problems,
        "outcomes": outcomes,
        "sweeps_run": sweeps_run,
        "sweeps_expired": sweeps_expired,
    }


def zombie_writes_after_takeover(probe: Probe, held: list[str], zombie_pids: set[int], since: datetime) -> list[tuple]:
    """Events a SIGSTOPped worker's pool processes wrote for a goal after anyone else had written for it.

    Once another worker, the sweeper or an operator has appended to a goal's log, the zombie's lease
    epoch is gone: every later write of the zombie must have been refused. Event.worker is the
    lease owner, host:pid:nonce, for the events a tick writes.
    """
    rows = probe.query(
        f"SELECT task_id::text, seq, worker, type FROM {EVENTS} WHERE task_id = ANY(%s::uuid[]) AND created_at >= %s "
        "ORDER BY task_id, seq",
        [held, since],
    )
    accepted = []
    for _, events in itertools.groupby(rows, key=lambda row: row[0]):
        taken_over = False
        for row in events:
            parts = row[2].split(":")
            if len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) in zombie_pids:
                if taken_over:
                    accepted.append(row)
            else:
                taken_over = True
    return accepted


def check_invariants(probe: Probe, goals: list[str], cancelled: list[str]) -> dict[str, int]:
    """Every assertion of the run; returns the figures it counted."""
    statuses = probe.statuses(goals + cancelled)
    not_completed = {t: s for t, s in statuses.items() if t in goals and s != "completed"}
    assert not not_completed, f"goals that did not complete: {not_completed}"
    assert all(statuses[t] == "cancelled" for t in cancelled), {t: statuses[t] for t in cancelled}

    # Exactly once: the effect table's primary key refuses a second row, and the tool records any
    # refusal as a duplicate before failing; so duplicates show in chaos_duplicate, and a missing
    # effect shows in the counts per goal.
    duplicates = probe.query("SELECT key, task_id::text, pid, at FROM chaos_duplicate")
    assert not duplicates, f"side effects executed twice: {duplicates}"
    effects = probe.query("SELECT key, task_id::text, step FROM chaos_effect WHERE task_id = ANY(%s::uuid[])", [goals])
    assert len(effects) == len(goals) * STEPS, f"{len(effects)} effects for {len(goals)} goals x {STEPS} steps"
    by_goal: dict[str, list[int]] = {}
    for _, task_id, step in effects:
        by_goal.setdefault(task_id, []).append(step)
    wrong = {t: sorted(by_goal.get(t, [])) for t in goals if sorted(by_goal.get(t, [])) != list(range(STEPS))}
    assert not wrong, f"goals whose steps' effects are not exactly 0..{STEPS - 1}: {wrong}"
    # Each effect is the one journaled call under its key, and no call is left unfinished.
    journaled = {
        key
        for (key,) in probe.query(
            f"SELECT key FROM {JOURNAL} WHERE task_id = ANY(%s::uuid[]) AND name = 'chaos_side_effect' AND status = 'completed'",
            [goals],
        )
    }
    assert journaled == {key for key, _, _ in effects}
    # Attempts (counted outside the transaction) are never fewer than effects.
    attempts = dict(probe.query("SELECT key, attempts FROM chaos_attempt WHERE task_id = ANY(%s::uuid[])", [goals]))
    assert all(attempts.get(key, 0) >= 1 for key, _, _ in effects), "an effect without a counted attempt"

    # Event logs: seq 1..last_event_seq with no gap, for every goal (cancelled ones too).
    gaps = probe.query(
        f"SELECT t.id::text, t.last_event_seq, count(e.id), min(e.seq), max(e.seq) FROM {TASKS} t "
        f"LEFT JOIN {EVENTS} e ON e.task_id = t.id WHERE t.id = ANY(%s::uuid[]) "
        "GROUP BY t.id, t.last_event_seq "
        "HAVING count(e.id) <> t.last_event_seq OR min(e.seq) <> 1 OR max(e.seq) <> t.last_event_seq",
        [goals + cancelled],
    )
    assert not gaps, f"event logs with gaps (task, last_event_seq, count, min, max): {gaps}"
    steps = probe.query(
        f"SELECT task_id::text, count(*) FILTER (WHERE status = 'completed') FROM {STEPS_TABLE} "
        "WHERE task_id = ANY(%s::uuid[]) GROUP BY task_id",
        [goals],
    )
    assert sorted(n for _, n in steps) == [STEPS] * len(goals)

    # Nothing of a cancelled goal ran after its cancel: no effect written, no attempt of the tool
    # started, no step finished and no event by a tick after the task.cancelled event.
    after_cancel = probe.query(
        f"WITH c AS (SELECT task_id, created_at AS at FROM {EVENTS} WHERE type = 'task.cancelled' AND task_id = ANY(%s::uuid[])) "
        "SELECT 'effect', f.key FROM chaos_effect f JOIN c USING (task_id) WHERE f.created_at >= c.at "
        "UNION ALL SELECT 'attempt', a.key FROM chaos_attempt a JOIN c USING (task_id) WHERE a.last_at >= c.at "
        f"UNION ALL SELECT 'step', s.index::text FROM {STEPS_TABLE} s JOIN c USING (task_id) WHERE s.finished_at >= c.at "
        f"UNION ALL SELECT 'event', e.type FROM {EVENTS} e JOIN c USING (task_id) "
        "WHERE e.created_at > c.at AND e.worker NOT IN ('operator', 'sweeper', '')",
        [cancelled],
    )
    assert not after_cancel, f"work of cancelled goals after their cancel: {after_cancel}"
    cancelled_events = probe.query(
        f"SELECT count(*) FROM {EVENTS} WHERE type = 'task.cancelled' AND task_id = ANY(%s::uuid[])", [cancelled]
    )[0][0]
    assert cancelled_events == len(cancelled)
    cancelled_effects = probe.query("SELECT count(*) FROM chaos_effect WHERE task_id = ANY(%s::uuid[])", [cancelled])[0][0]

    takeovers = probe.query(
        f"SELECT coalesce(sum(resume_count), 0), (SELECT count(*) FROM {EVENTS} WHERE type = 'task.stalled' "
        "AND task_id = ANY(%s::uuid[])) FROM " + TASKS + " WHERE id = ANY(%s::uuid[])",
        [goals + cancelled, goals + cancelled],
    )[0]
    return {
        "effects": len(effects),
        "attempts": sum(attempts.values()),
        "rolled_back_attempts": sum(attempts.values()) - len(effects),
        "duplicates": len(duplicates),
        "cancelled_effects": cancelled_effects,
        "resume_count": int(takeovers[0]),
        "stalled_events": int(takeovers[1]),
        "events": probe.query(f"SELECT count(*) FROM {EVENTS} WHERE task_id = ANY(%s::uuid[])", [goals])[0][0],
    }


def duplicate_fault_at(driver: Driver) -> datetime:
    return next(f.at for f in driver.faults if f.kind.startswith("same tick"))


def fault_table(faults: list[Fault]) -> str:
    lines = [f"  {'fault':<28} {'t+s':>6} {'active':>6} {'held':>5} {'held resumed':>13} {'all moved':>10}  detail"]
    first = faults[0].at
    for f in faults:
        held = f"{f.held_resumed_s:.1f}s" if f.held_resumed_s is not None else "-"
        moved = f"{f.all_moved_s:.1f}s" if f.all_moved_s is not None else "-"
        lines.append(
            f"  {f.kind:<28} {(f.at - first).total_seconds():>6.1f} {len(f.active):>6} {len(f.held):>5} {held:>13} {moved:>10}"
            f"  {f.detail}"
        )
    return "\n".join(lines)


def test_hundred_goals_survive_kills_stops_restarts_duplicates_and_two_beats(chaos_servers: ChaosServers) -> None:
    servers = chaos_servers
    seed = random.randrange(1_000_000)
    env, log_dir = servers.env, servers.log_dir
    slots = [WorkerSlot(name, env=env, log_dir=log_dir) for name in ("wa", "wb")]

    def make_beat(name: str) -> CeleryBeat:
        return CeleryBeat(env=env, name=name, run_dir=log_dir / f"beat-{name}")

    beats = [make_beat("b1")]
    probe = Probe(lambda **kw: servers.postgres.connect("horizon_chaos", **kw))
    client = BrokerClient(servers.redis.url)
    started = time.monotonic()
    driver: Driver | None = None
    try:
        for slot in slots:
            slot.start()
        beats[0].start()
        ids = create_goals(env, GOALS + CANCELLED)
        goals, extra = ids[:GOALS], ids[GOALS:]
        driver = Driver(
            slots=slots,
            redis_server=servers.redis,
            postgres=servers.postgres,
            probe=probe,
            client=client,
            env=env,
            beats=beats,
            make_beat=make_beat,
            goals=goals,
            cancellable=extra,
            seed=seed,
        )
        run_seconds = driver.run(settle_timeout=SETTLE_TIMEOUT)
        beat_alive = beats[0].alive()
    finally:
        for slot in slots:
            slot.stop_all()
        for beat in beats:
            beat.stop()
        client.close()

    try:
        assert driver is not None
        assert beat_alive, f"the beat died during the run; see {beats[0].log_path}"
        cancelled = driver.cancelled
        assert len(cancelled) == CANCELLED, f"only {len(cancelled)} goals were still running to be cancelled"
        figures = check_invariants(probe, goals, cancelled)
        for fault in driver.faults:
            fault.recovery(probe, exclude=set(cancelled))
        logs = [w.log_path for slot in slots for w in slot.incarnations]
        log_figures = worker_log_figures(logs)
        zombie_fenced = worker_log_figures([driver.zombie.log_path])["fenced"] if driver.zombie else 0
        stop = next(f for f in driver.faults if f.kind == "SIGSTOP worker > lease")
        zombie_accepted = zombie_writes_after_takeover(probe, sorted(stop.held), driver.zombie_pids, stop.at)
        zombie_effects = probe.query(
            "SELECT count(*) FROM chaos_effect WHERE pid = ANY(%s) AND created_at >= %s",
            [sorted(driver.zombie_pids), driver.zombie_resumed_at],
        )[0][0]
        duplicate_steps = probe.query(
            f"SELECT count(*) FROM {EVENTS} WHERE task_id = %s AND type = 'step.completed' "
            "AND created_at BETWEEN %s AND %s + interval '5 seconds'",
            [driver.duplicate_goal, duplicate_fault_at(driver), duplicate_fault_at(driver)],
        )[0][0]
        outcomes = log_figures["outcomes"]
        assert isinstance(outcomes, dict)
        duplicate_outcomes = Counter(outcomes.get(i, ["never received"])[-1] for i in driver.duplicate_ids)
        kinds = Counter(f.kind for f in driver.faults)
    finally:
        probe.close()

    total = time.monotonic() - started
    print(
        f"\nchaos (seed {seed}): {GOALS} goals x {STEPS} steps completed, {len(cancelled)} more cancelled mid-run; "
        f"run {run_seconds:.0f}s, total {total:.0f}s\n"
        f"  faults: {driver.kills} worker SIGKILLs ({driver.worker_restarts} worker restarts), "
        f"{kinds['SIGSTOP worker > lease']} SIGSTOP past the lease, {servers.redis.starts - 1} Redis restarts, "
        f"{servers.postgres.restarts} PostgreSQL restarts, {DUPLICATES} copies of one tick at once "
        f"(outcomes {dict(duplicate_outcomes)}; the goal completed {duplicate_steps} steps in the next 5s), "
        f"two beats for {TWO_BEATS_FOR:.0f}s (sweeps each sent meanwhile: {driver.beat_sweeps})\n"
        f"  side effects: {figures['effects']} effects, duplicates found {figures['duplicates']}; "
        f"{figures['attempts']} tool executions, {figures['rolled_back_attempts']} of them rolled back (killed, fenced, "
        f"cut off); cancelled goals: {figures['cancelled_effects']} effects before their cancel, 0 after\n"
        f"  fencing: {log_figures['fenced']} ticks fenced ({zombie_fenced} by the SIGSTOPped zombie, which held "
        f"{len(stop.held)} goals; its writes accepted after a takeover: {len(zombie_accepted)}; "
        f"effects it committed after SIGCONT, before any takeover: {zombie_effects}); "
        f"{figures['stalled_events']} stalled leases swept, {figures['resume_count']} lease takeovers; "
        f"{figures['events']} events, no gaps; {log_figures['tick_problems']} tick messages that did not succeed "
        f"(retried database errors, time limits)\n"
        f"  sweeper: {sum(b.sent() for b in beats)} sweeps sent by beat, {log_figures['sweeps_run']} run, "
        f"{log_figures['sweeps_expired']} discarded as expired (they wait in the tick queue)\n"
        f"  recovery per fault (held resumed: the goals the faulty worker held committed again; "
        f"all moved: every unfinished goal committed again):\n{fault_table(driver.faults)}"
    )

    assert driver.kills >= KILLS_WANTED, f"only {driver.kills} kills landed before the goals completed"
    assert kinds["SIGSTOP worker > lease"] == 1 and kinds["Redis restart (queue wiped)"] == 1
    assert kinds["PostgreSQL restart"] == 1 and kinds["two beats"] == 1 and driver.duplicate_ids
    assert all(f.active for f in driver.faults), "a fault struck after every goal had finished"
    assert not zombie_accepted, f"the zombie's writes were accepted after its lease was taken over: {zombie_accepted}"
    unmoved = {f.kind: f.unmoved for f in driver.faults if f.unmoved}
    assert not unmoved, f"goals that never committed again after a fault: {unmoved}"
    slow = {f"{f.kind} at {f.at:%H:%M:%S}": f.all_moved_s for f in driver.faults if (f.all_moved_s or 0) > RECOVERY_BOUND}
    assert not slow, f"faults after which some goal waited more than {RECOVERY_BOUND:.0f}s to move again: {slow}"
