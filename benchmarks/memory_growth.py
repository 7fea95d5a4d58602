"""Memory growth of one long task: bytes stored per step and prompt tokens per model call, early and late.

    .venv/bin/python benchmarks/memory_growth.py [--steps 500] [--budget 1500] [--embedder hash|local]

One task of --steps steps runs in this process (the in-process driver's runner) on its own PostgreSQL
database (horizon_bench_mem), with the offline scripted model. Every step remembers a fact in
long-term memory, reads a ~600-token file three times (so that its own messages outgrow the
profile's prompt budget and are compacted), recalls by meaning, and finishes.

It prints, for the first 10 steps and for the last 10: bytes stored per step (live row bytes and
table growth per table, and the WAL this database wrote, through pg_walinspect), and the prompt
tokens of each model call (counted offline, as the model would be billed) beside what the step's
raw transcript would have cost uncompacted. Asserts nothing. A minute or two at 500 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `tasks_app` importable
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from benchmarks import bench_db  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/horizon_bench_mem"
TABLES = (*bench_db.HORIZON_TABLES, "tasks_app_memoryitem")
WINDOW = 10
LEDGER = "\n".join(f"row {i}: account {1000 + i} holds {i * 37} credits in region {i % 7}" for i in range(45))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500, help="steps of the task (default 500; at least 25)")
    parser.add_argument("--budget", type=int, default=1500, help="the profile's max_prompt_tokens (default 1500)")
    parser.add_argument("--embedder", choices=("hash", "local"), default="hash", help="HORIZON_EMBEDDER (default hash)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_MEM_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--json-out", type=Path, default=REPO / "benchmarks" / "results" / "memory_growth.json")
    args = parser.parse_args(argv)
    if not 2 * WINDOW + 5 <= args.steps <= 10_000:
        parser.error(f"--steps must be between {2 * WINDOW + 5} and 10000")
    return args


def scenario(steps: int) -> dict[str, Any]:
    work = [
        {"tool": "remember", "arguments": {"text": "The ledger's totals were checked in this step."}},
        *[{"tool": "read_file", "arguments": {"path": "ledger.txt"}} for _ in range(3)],
        {"tool": "recall", "arguments": {"query": "ledger totals"}},
        {"final": "checked: {title}"},
    ]
    return {
        "name": "memory-growth",
        "plan": [{"title": f"Check ledger part {i}", "instructions": "Re-read the ledger and check it."} for i in range(steps)],
        "steps": {"0": [{"tool": "write_file", "arguments": {"path": "ledger.txt", "content": LEDGER}}, *work]},
        "default_step": work,
    }


def configure(args: argparse.Namespace, workdir: Path) -> None:
    profiles = workdir / "profiles.json"
    # No task token budget (500 steps spend millions), room for the compactions' calls.
    profiles.write_text(
        json.dumps({"bench": {"max_prompt_tokens": args.budget, "max_tokens": 0, "max_model_calls_per_step": 20}})
    )
    scenario_file = workdir / "scenario.json"
    scenario_file.write_text(json.dumps(scenario(args.steps)))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="horizon_project.settings",
        DATABASE_URL=args.database_url,
        HORIZON_DISPATCH="inprocess",
        DJANGO_DEBUG="0",
        HORIZON_PROFILES_FILE=str(profiles),
        HORIZON_SCENARIO=str(scenario_file),
        HORIZON_EMBEDDER=args.embedder,
        HORIZON_MAX_STEPS=str(args.steps),
    )
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        os.environ.pop(name, None)
    import django

    django.setup()


class Counting:
    """The scripted model, with the prompt tokens of every request counted as a real endpoint would bill them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.offline = True
        self.calls: list[dict[str, Any]] = []

    def complete(self, request: Any) -> Any:
        from agents.llm.tokens import count_tokens

        self.calls.append(
            {"step": request.step_index, "purpose": request.purpose, "prompt_tokens": count_tokens(list(request.messages))}
        )
        return self.inner.complete(request)


def snapshot(conn: psycopg.Connection) -> dict[str, Any]:
    rows = {t: int(conn.execute(f"SELECT coalesce(sum(pg_column_size(r.*)), 0) FROM {t} r").fetchone()[0]) for t in TABLES}
    return {"rows": rows, "sizes": bench_db.relation_sizes(conn, TABLES), "lsn": bench_db.wal_insert_lsn(conn)}


def per_step(conn: psycopg.Connection, a: dict[str, Any], b: dict[str, Any], steps: int, wal: bool) -> dict[str, Any]:
    rows = {t: (b["rows"][t] - a["rows"][t]) / steps for t in TABLES}
    growth = {t: (b["sizes"][t] - a["sizes"][t]) / steps for t in TABLES}
    found = bench_db.wal_of_database(conn, a["lsn"], b["lsn"]) if wal else None
    return {
        "row_bytes": round(sum(rows.values())),
        "row_bytes_by_table": {t: round(v) for t, v in rows.items()},
        "table_growth_bytes": round(sum(growth.values())),
        "wal_db_bytes": round(sum(v["bytes"] for v in found.values()) / steps) if found else None,
        "wal_cluster_bytes": round(bench_db.wal_bytes_between(conn, a["lsn"], b["lsn"]) / steps),
    }


def prompt_figures(calls: list[dict[str, Any]], step: int, raw_tokens: int) -> dict[str, Any]:
    mine = [c for c in calls if c["step"] == step]
    sent = [c["prompt_tokens"] for c in mine if c["purpose"] == "step"]
    return {
        "step": step + 1,
        "model_calls": len(sent),
        "summary_calls": sum(1 for c in mine if c["purpose"] == "summarise"),
        "prompt_tokens_max": max(sent),
        "prompt_tokens_mean": round(statistics.mean(sent)),
        "raw_transcript_tokens": raw_tokens,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_db.prepare(args.database_url)
    with tempfile.TemporaryDirectory() as tmp:
        configure(args, Path(tmp))
        from agents.llm.tokens import count_tokens
        from agents.scripted import ScriptedModel
        from tasks_app.models import Event, Step
        from tasks_app.runtime import build_runner
        from tasks_app.services.tasks import agent_task_create

        conn = bench_db.connect(args.database_url)
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        wal = bench_db.enable_walinspect(conn) and bench_db.hold_wal(conn)
        bench_db.checkpoint(conn)
        model = Counting(ScriptedModel.from_file(os.environ["HORIZON_SCENARIO"]))
        runner = build_runner(model=model)  # type: ignore[arg-type]
        task = agent_task_create(goal="Check the ledger, part by part", profile="bench", max_steps=args.steps)
        marks: dict[str, dict[str, Any]] = {}
        done = 0
        started = time.monotonic()

        def on_tick(outcome: Any) -> None:
            nonlocal done
            if outcome.decision == "plan":
                marks["start"] = snapshot(conn)
            elif outcome.decision == "step":
                done += 1
                if done in (WINDOW, args.steps - WINDOW, args.steps):
                    marks[str(done)] = snapshot(conn)
                if done % 100 == 0:
                    print(f"  {done} steps, {time.monotonic() - started:.0f} s", flush=True)

        result = runner.run(str(task.id), on_tick=on_tick)
        elapsed = time.monotonic() - started
        if result.status != "completed":
            print(f"the task ended {result.status}: {result.reason}")
            return 1

        def raw_tokens(index: int) -> int:
            transcript = Step.objects.get(task_id=task.id, index=index).transcript
            return count_tokens([{"role": "system", "content": "x"}, *transcript])

        n = args.steps
        early = per_step(conn, marks["start"], marks[str(WINDOW)], WINDOW, wal)
        late = per_step(conn, marks[str(n - WINDOW)], marks[str(n)], WINDOW, wal)
        prompts = [
            prompt_figures(model.calls, WINDOW - 1, raw_tokens(WINDOW - 1)),
            prompt_figures(model.calls, n - 1, raw_tokens(n - 1)),
        ]
        compactions = Event.objects.filter(task_id=task.id, type="context.compacted").count()
        report = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "postgres": bench_db.server_version(conn)},
            "steps": n,
            "budget": args.budget,
            "embedder": args.embedder,
            "seconds": round(elapsed, 1),
            "ms_per_step": round(1000 * elapsed / n, 1),
            "compactions": compactions,
            "memory_items": conn.execute("SELECT count(*) FROM tasks_app_memoryitem").fetchone()[0],
            "bytes_per_step": {f"steps 1-{WINDOW}": early, f"steps {n - WINDOW + 1}-{n}": late},
            "prompt": prompts,
        }
        bench_db.release_wal(conn)

    print(f"{n} steps in {elapsed:.0f} s ({report['ms_per_step']} ms/step), embedder {args.embedder}")
    print(f"prompt budget (max_prompt_tokens): {args.budget}")
    print(f"{compactions} compactions; {report['memory_items']} memory items")
    print(f"{'bytes per step':<16}{'rows':>10}{'table growth':>14}{'WAL (this db)':>15}")
    for label, fig in report["bytes_per_step"].items():
        wal_text = f"{fig['wal_db_bytes']:,}" if fig["wal_db_bytes"] is not None else "n/a"
        print(f"{label:<16}{fig['row_bytes']:>10,}{fig['table_growth_bytes']:>14,}{wal_text:>15}")
    print(f"{'prompt tokens':<16}{'calls':>6}{'summaries':>11}{'max sent':>10}{'mean sent':>11}{'raw transcript':>16}")
    for p in prompts:
        print(
            f"{'step ' + str(p['step']):<16}{p['model_calls']:>6}{p['summary_calls']:>11}{p['prompt_tokens_max']:>10,}"
            f"{p['prompt_tokens_mean']:>11,}{p['raw_transcript_tokens']:>16,}"
        )
    ratio = late["row_bytes"] / early["row_bytes"] if early["row_bytes"] else float("nan")
    report["late_vs_early_row_bytes"] = round(ratio, 2)
    print(f"row bytes per step, last {WINDOW} vs first {WINDOW}: {ratio:.2f}x")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
