"""GET /metrics in Prometheus text format.

Three kinds of figures, none of which costs a request a database query:

* read from the database (or Redis) at scrape time by collectors the apps register
  (``register``): every process (web, workers, relay) is counted, across restarts, without
  a shared multiprocess directory;
* kept in this web process (request latency per view, order entry, websocket clients):
  Prometheus scrapes each web process on its own, as the monitor probes each one;
* kept by a singleton in another process (the engine runner's batches): a
  ``SharedHistogram`` adds its observations up in Redis, at most once a second, and the
  scraped web process reads them back (in the embedded mode, where the runner is a thread
  of the web process, it stays in memory).

The names, and the alert rules built on them, are listed in docs/operations.md, "Metrics".
"""

from __future__ import annotations

import functools
import logging
import threading
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily

logger = logging.getLogger(__name__)

registry = CollectorRegistry(auto_describe=False)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request in this web process, per view (URL name), method and status class.",
    ["view", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=registry,
)
ORDER_ENTRY_SECONDS = Histogram(
    "order_entry_seconds",
    "Time to enter an order (validation, risk checks, hold, insert), per product and outcome.",
    ["product", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=registry,
)
ORDERS_ENTERED = Counter(
    "orders_entered",
    "Orders entered in this web process, per product and outcome (accepted, replayed, refused).",
    ["product", "outcome"],
    registry=registry,
)
WEBSOCKET_CLIENTS = Gauge(
    "websocket_clients",
    "Websocket connections open on this web process, per stream (market, user).",
    ["stream"],
    registry=registry,
)
for _stream in ("market", "user"):
    WEBSOCKET_CLIENTS.labels(_stream)  # 0 from the start: a dashboard's sum() has a series to add
COLLECTOR_ERRORS = Counter(
    "metrics_collector_errors",
    "Scrape-time collectors that failed (their figures are missing from that scrape).",
    ["collector"],
    registry=registry,
)


class _Guarded:
    """A collector whose failure (the database is down) drops its own figures, not the
    whole scrape: the in-process figures and ``dependency_up`` still answer."""

    def __init__(self, collector):
        self.collector = collector
        self.name = type(collector).__name__

    def collect(self):
        try:
            families = list(self.collector.collect())
        except Exception as exc:
            COLLECTOR_ERRORS.labels(self.name).inc()
            logger.warning("metrics: %s failed: %s: %s", self.name, type(exc).__name__, exc)
            return []
        return families


def register(collector) -> None:
    registry.register(_Guarded(collector))


def metrics_view(request):
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# --- request latency --------------------------------------------------------------------------


def _observe_request(request, response, started: float) -> None:
    match = getattr(request, "resolver_match", None)
    # the URL's name (bounded), never the path (a scanner would make a series per URL it tries)
    view = (match.view_name or match.route or "unnamed") if match is not None else "unresolved"
    method = request.method if request.method in _METHODS else "other"
    REQUEST_SECONDS.labels(view, method, f"{response.status_code // 100}xx").observe(time.perf_counter() - started)


class RequestMetricsMiddleware:
    """``http_request_duration_seconds``: first in MIDDLEWARE, so it times the whole stack.
    Sync and async, so it adds no thread hop under daphne."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started = time.perf_counter()
        response = self.get_response(request)
        _observe_request(request, response, started)
        return response

    async def __acall__(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        _observe_request(request, response, started)
        return response


def order_entry_timed(product: str):
    """Decorate an order entry service returning ``(order, replayed)``: its time and outcome
    (``accepted``, ``replayed``, or ``refused`` when it raised) go to ``order_entry_seconds``."""

    def wrap(service):
        @functools.wraps(service)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            outcome = "refused"
            try:
                result = service(*args, **kwargs)
                outcome = "replayed" if result[1] else "accepted"
                return result
            finally:
                ORDER_ENTRY_SECONDS.labels(product, outcome).observe(time.perf_counter() - started)
                ORDERS_ENTERED.labels(product, outcome).inc()

        return timed

    return wrap


# --- figures summed across processes in Redis -------------------------------------------------


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


class SharedHistogram:
    """A histogram observed in one process (a singleton such as an engine runner) and
    exported by every web process: the observations are summed locally and added to a Redis
    hash (``metrics:<name>``) at most every ``flush_seconds``, so the writer pays one
    pipelined round trip a second, not one per observation. Without Redis (the embedded
    mode) the sums stay in this process, which is then also the one scraped.

    A flush that fails (Redis away) keeps its sums for the next one: nothing is counted twice
    or lost, only late."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        buckets,
        flush_seconds: float = 1.0,
        registry: CollectorRegistry = registry,
    ):
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.buckets = tuple(float(b) for b in buckets)
        self.flush_seconds = flush_seconds
        self.key = f"metrics:{name}"
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}  # not yet in Redis
        self._local: dict[str, float] = {}  # the embedded mode's totals
        self._flushed_at = time.monotonic()
        registry.register(_Guarded(self))

    def observe(self, value: float, *labels: str) -> None:
        prefix = "\x1f".join(labels)
        index = next((i for i, bound in enumerate(self.buckets) if value <= bound), len(self.buckets))
        with self._lock:
            for field, amount in ((f"{prefix}|b{index}", 1), (f"{prefix}|sum", value), (f"{prefix}|count", 1)):
                self._pending[field] = self._pending.get(field, 0) + amount
        if time.monotonic() - self._flushed_at >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = time.monotonic()
        if not pending:
            return
        if not settings.REDIS_URL:
            with self._lock:
                for field, amount in pending.items():
                    self._local[field] = self._local.get(field, 0) + amount
            return
        try:
            client = _redis()
            try:
                pipe = client.pipeline(transaction=False)
                for field, amount in pending.items():
                    pipe.hincrbyfloat(self.key, field, amount)
                pipe.execute()
            finally:
                client.close()
        except Exception as exc:
            with self._lock:
                for field, amount in pending.items():
                    self._pending[field] = self._pending.get(field, 0) + amount
            logger.warning("metrics: %s not flushed to Redis: %s: %s", self.name, type(exc).__name__, exc)

    def _totals(self) -> dict[str, float]:
        if not settings.REDIS_URL:
            self.flush()
            with self._lock:
                return dict(self._local)
        client = _redis()
        try:
            raw = client.hgetall(self.key)
        finally:
            client.close()
        return {field.decode(): float(value) for field, value in raw.items()}

    def collect(self):
        series: dict[str, dict[str, float]] = {}
        for field, value in self._totals().items():
            prefix, _, part = field.rpartition("|")
            series.setdefault(prefix, {})[part] = value
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.labelnames))
        for prefix, parts in sorted(series.items()):
            cumulative, buckets = 0.0, []
            for i, bound in enumerate(self.buckets):
                cumulative += parts.get(f"b{i}", 0)
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", parts.get("count", 0)))
            family.add_metric(prefix.split("\x1f") if self.labelnames else [], buckets, parts.get("sum", 0))
        yield family
