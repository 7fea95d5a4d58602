import json
from typing import Any

from django.core.management.base import CommandParser

from agents.events import CODE_CHANGED
from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.readable import cut, step_number, usage_text
from tasks_app.selectors.approvals import approval_pending_ids
from tasks_app.selectors.tasks import task_get
from tasks_app.selectors.timeline import timeline_steps


class Command(HorizonCommand):
    help = "Show a task's status, steps, usage and cost, pending approvals and latest checkpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        task = task_get(task_id=options["task_id"])
        steps = list(task.steps.order_by("index"))
        checkpoint = task.checkpoints.order_by("-seq").first()
        builds = task.builds.split()
        code_changes = [
            {"seq": e.seq, "build": e.payload.get("build", ""), "count": e.payload.get("count", 0)}
            for e in task.events.filter(type=CODE_CHANGED).order_by("seq")
        ]
        usage: dict[str, int | float] = {
            "steps_completed": task.steps_completed,
            "model_calls": task.model_calls,
            "tool_calls": task.tool_calls,
            "prompt_tokens": task.prompt_tokens,
            "completion_tokens": task.completion_tokens,
            "cost_usd": task.cost_usd,
        }
        pending = approval_pending_ids(task_id=str(task.pk))
        data = {
            "id": str(task.id),
            "goal": task.goal,
            "status": task.status,
            "reason": task.status_reason,
            "result": task.result,
            "resume_count": task.resume_count,
            "builds": builds,
            "code_changes": code_changes,
            "events": task.last_event_seq,
            "checkpoint": {"seq": checkpoint.seq, "event_seq": checkpoint.event_seq} if checkpoint else None,
            "usage": usage,
            "pending_approvals": pending,
            "steps": [
                {"index": s.index, "number": s.index + 1, "title": s.title, "status": s.status, "attempts": s.attempts}
                for s in steps
            ],
        }
        calls = {s["index"]: s["tool_calls"] for s in timeline_steps(task)["steps"]}
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, default=str))
            return
        self.stdout.write(f"task {task.id}: {task.status}" + (f" ({task.status_reason})" if task.status_reason else ""))
        self.stdout.write(f"  goal: {task.goal}")
        done = f"{task.steps_completed} of {len(steps)} steps done"
        self.stdout.write(f"  usage: {done}; {usage_text(usage)}")
        self.stdout.write(f"  resumes: {task.resume_count}, events: {task.last_event_seq}")
        if builds:
            self.stdout.write(f"  builds: {' -> '.join(builds)}")
        for change in code_changes:
            self.stdout.write(
                f"  code changed under the task (event {change['seq']}): build {change['build'] or '(unnamed)'} "
                f"continued from {change['count']} recorded answer(s) whose requests it renders differently"
            )
        if pending:
            ids = ", ".join(f"#{pk}" for pk in pending)
            self.stdout.write(f"  waiting for approval {ids} (manage.py approvals --task {task.id})")
        for s in steps:
            self.stdout.write(f"  [{s.status:>9}] {step_number(s.index)}: {s.title} (attempts {s.attempts})")
            for c in calls.get(s.index, []):
                outcome = ("ok" if c["ok"] else "error") + (", reused from the journal" if c["from_journal"] else "")
                self.stdout.write(f"      {c['name']} ({outcome}, {c['duration']}): {cut(c['output'], 100)}")
