import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from agents.errors import TaskNotFound
from agents.resume_check import CHANGED, ESCALATE, VERBATIM
from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.services.regression import task_regress, task_resume_verdict, tasks_in_flight


class Command(HorizonCommand):
    help = (
        "Re-run recorded tasks on the current code, answering every model and tool call from their "
        "journals, and report the first point where a task's decisions diverge. Exits non-zero when "
        "any task diverges (a regression test over recorded tasks, for CI). With --gate, the deploy gate: "
        "what this build would do with each task on resume (verbatim, a recorded change, or an escalation)."
    )

    def refusal(self, exc: Exception) -> CommandError:
        if isinstance(exc, TaskNotFound):
            return CommandError(f"unknown task: {exc}")
        return super().refusal(exc)

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_ids", nargs="*", metavar="TASK_ID")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--gate",
            action="store_true",
            help="The deploy gate (docs/deploys.md): for each task, whether this build would continue it verbatim, "
            "continue with a recorded change, or escalate. Exits non-zero only when one would escalate.",
        )
        parser.add_argument("--in-flight", action="store_true", help="Every task that has not ended (with --gate).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["gate"] or options["in_flight"]:
            self._gate(options)
            return
        if not options["task_ids"]:
            raise CommandError("name at least one TASK_ID (or use --gate --in-flight)")
        reports = []
        for task_id in options["task_ids"]:
            reports.append(task_regress(task_id=task_id))
        if options["json"]:
            self.stdout.write(json.dumps([r.to_json() for r in reports], indent=2, default=str))
        else:
            for r in reports:
                if r.divergence is None:
                    self.stdout.write(
                        f"task {r.task_id}: no divergence ({r.model_calls} model calls, {r.tool_calls} tool calls, "
                        f"{r.recorded_events} decisions replayed)"
                    )
                else:
                    self.stdout.write(f"task {r.task_id}: DIVERGES: {r.divergence.message}")
                    if r.divergence.kind == "event":
                        self.stdout.write(f"  recorded: {json.dumps(r.divergence.recorded, default=str)}")
                        self.stdout.write(f"  replayed: {json.dumps(r.divergence.replayed, default=str)}")
                for note in r.notes:
                    self.stdout.write(f"  note: {note}")
        diverged = [r.task_id for r in reports if r.diverged]
        if diverged:
            raise CommandError(f"{len(diverged)} of {len(reports)} task(s) diverge: {', '.join(diverged)}")

    def _gate(self, options: dict[str, Any]) -> None:
        task_ids = list(options["task_ids"]) + (tasks_in_flight() if options["in_flight"] else [])
        if not task_ids:
            raise CommandError("no task to check: name TASK_IDs or use --in-flight")
        verdicts = []
        for task_id in task_ids:
            verdicts.append(task_resume_verdict(task_id=task_id))
        if options["json"]:
            self.stdout.write(json.dumps([v.to_json() for v in verdicts], indent=2, default=str))
        else:
            for v in verdicts:
                line = f"task {v.task_id} ({v.status}): {v.verdict}"
                self.stdout.write(line + (f": {v.reason}" if v.reason else ""))
            counts = {kind: sum(v.verdict == kind for v in verdicts) for kind in (VERBATIM, CHANGED, ESCALATE)}
            self.stdout.write(", ".join(f"{n} {kind}" for kind, n in counts.items()))
        escalating = [v.task_id for v in verdicts if v.verdict == ESCALATE]
        if escalating:
            raise CommandError(
                f"{len(escalating)} of {len(verdicts)} task(s) would escalate on this build: {', '.join(escalating)}"
            )
