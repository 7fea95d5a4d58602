"""Gauges of the database's state, computed when Prometheus scrapes (no process keeps them).

Two cheap queries per scrape: tasks counted by status (a scan of agenttask_status_idx, whose
leading column is the status) and the pending approvals' count and oldest request (the partial
index approval_pending_idx holds only pending rows). Computing them here is what keeps them right
under Celery's prefork pool: a gauge set by a worker child would be wrong as soon as another
process changed a row.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agents.status import TaskStatus
from tasks_app.models import AgentTask, Approval


class DatabaseCollector(Collector):
    def __init__(self, using: str = "default") -> None:
        self.using = using

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = dict.fromkeys(sorted(TaskStatus.ALL), 0)
        rows = AgentTask.objects.using(self.using).order_by().values_list("status").annotate(n=Count("id"))
        for status, n in rows:
            by_status[status] = n
        tasks = GaugeMetricFamily("horizon_tasks", "Tasks by status, counted in the database at scrape time", labels=["status"])
        for status, n in by_status.items():
            tasks.add_metric([status], n)
        yield tasks

        pending = Approval.objects.using(self.using).filter(status=Approval.Status.PENDING)
        figures = pending.aggregate(n=Count("id"), oldest=Min("requested_at"))
        yield GaugeMetricFamily("horizon_approvals_pending", "Approvals waiting for a decision", value=figures["n"])
        age = (timezone.now() - figures["oldest"]).total_seconds() if figures["oldest"] else 0.0
        yield GaugeMetricFamily(
            "horizon_approvals_pending_oldest_age_seconds",
            "Age of the oldest pending approval (0 when none is pending)",
            value=max(0.0, age),
        )
