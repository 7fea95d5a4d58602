import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from agents.history import search_events
from tasks_app.management import inputs
from tasks_app.management.base import HorizonCommand
from tasks_app.store import store_for


class Command(HorizonCommand):
    help = "Search a task's event log (its episodic memory) for a few words, best matches first."

    def add_arguments(self, parser: CommandParser) -> None:
        inputs.one_line_errors(parser)
        parser.add_argument("task_id")
        parser.add_argument("query", type=inputs.text)
        parser.add_argument("--limit", type=inputs.positive, default=10)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        store = store_for()
        try:
            store.get_task(options["task_id"])
            hits = search_events(store.events(options["task_id"]), options["query"], limit=options["limit"])
        except ValueError as exc:  # search_events refuses a query without a word
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps([h.to_json() for h in hits], indent=2))
            return
        if not hits:
            self.stdout.write("no event mentions that")
        for hit in hits:
            self.stdout.write(f"#{hit.seq} {hit.type} (score {hit.score}): {hit.excerpt}")
