"""GET /metrics: Prometheus text exposition, served by the web process.

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) the counters and histograms come from the files
every process (web, Celery worker children, beat) wrote in that directory; otherwise from this
process's registry. The database gauges are computed now, in either case.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from tasks_app.conf import settings
from tasks_app.observability.collector import DatabaseCollector


class _ThisProcess(Collector):
    """This process's own registry, as one collector of the scrape's registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]  # unannotated upstream
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return registry


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
