"""GET /metrics in Prometheus text format.

The figures are read from the database at scrape time by collectors the apps register, so
every process (web, workers, relay) is counted, across restarts, without a shared
multiprocess directory.
"""

from __future__ import annotations

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

registry = CollectorRegistry(auto_describe=False)


def register(collector) -> None:
    registry.register(collector)


def metrics_view(request):
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
