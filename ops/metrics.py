"""The monitor's figures for Prometheus (see trading/metrics.py): its verdict per check, the
alerts it sent, and the raw measurements its probes make, so that the rules in
deploy/prometheus/alerts.yml apply the monitor's thresholds to the same numbers.

Read at scrape time (a handful of small queries per scrape, none per request); each part is
measured on its own, so a failing one (the database is down) leaves the others and
``dependency_up`` in the scrape.
"""

from __future__ import annotations

import logging

from django.db.models import Count, Q
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from trading import health
from trading.models import Lease

from . import probes
from .models import CheckState, Incident
from .rules import FAILING

logger = logging.getLogger(__name__)


def _gauge(name, doc, labels, rows):
    family = GaugeMetricFamily(name, doc, labels=labels)
    for label_values, value in rows:
        family.add_metric(label_values, value)
    return family


def _dependencies():
    rows = []
    for name in ("database", "redis"):
        try:
            ok = bool(health._checks[name]()["ok"])
        except Exception:
            ok = False
        rows.append(([name], 1.0 if ok else 0.0))
    return [_gauge("dependency_up", "1 when this web process reaches the dependency, else 0.", ["dependency"], rows)]


def _monitor():
    checks = CheckState.objects.values_list("name", "status")
    totals = Incident.objects.aggregate(
        incidents=Count("pk"),
        open=Count("pk", filter=Q(resolved_at__isnull=True)),
        alerts=Count("pk", filter=Q(alerted_at__isnull=False)),
        recoveries=Count("pk", filter=Q(recovery_sent_at__isnull=False)),
        silenced=Count("pk", filter=Q(silenced=True)),
    )
    alerts = CounterMetricFamily("ops_alerts", "Alerts the monitor sent to staff, per kind.", labels=["kind"])
    alerts.add_metric(["failed"], totals["alerts"])
    alerts.add_metric(["recovered"], totals["recoveries"])
    return [
        _gauge(
            "ops_check_failing",
            "1 while the monitor holds the check failing (its rule: consecutive failed probes), else 0.",
            ["check"],
            [([name], 1.0 if status == FAILING else 0.0) for name, status in checks],
        ),
        GaugeMetricFamily("ops_incidents_open", "Incidents not resolved yet.", value=totals["open"]),
        CounterMetricFamily(
            "ops_incidents", "Incidents recorded (a check turning failing).", value=totals["incidents"]
        ),
        CounterMetricFamily(
            "ops_incidents_silenced", "Incidents begun in a maintenance window.", value=totals["silenced"]
        ),
        alerts,
    ]


def _leases():
    from django.utils import timezone

    now = timezone.now()
    rows = [
        ([name], 1.0 if holder and expires_at > now else 0.0)
        for name, holder, expires_at in Lease.objects.values_list("name", "holder", "expires_at")
    ]
    return [_gauge("lease_leader", "1 while a process holds the singleton's lease, else 0.", ["lease"], rows)]


def _beat():
    _, detail = probes.beat()
    age = detail.get("age_seconds", detail.get("waiting_seconds"))
    if age is None:
        return []
    return [_gauge("heartbeat_age_seconds", "Seconds since the periodic task last ran.", ["name"], [(["beat"], age)])]


def _engines():
    symbols = health._checks["engine"]()["symbols"]
    return [
        _gauge(
            "engine_oldest_waiting_seconds",
            "How long the oldest order not yet taken by the symbol's engine has waited.",
            ["symbol"],
            [([symbol], row["oldest_waiting_seconds"]) for symbol, row in symbols.items()],
        )
    ]


def _feed():
    _, detail = probes.feed()
    return [
        _gauge(
            "index_age_seconds",
            "Age of the last index print made from fresh sources, per underlying.",
            ["underlying"],
            [([underlying], age) for underlying, age in detail["age_seconds"].items()],
        )
    ]


def _marketmaker():
    _, detail = probes.marketmaker()
    if "mode" in detail:  # no market maker user: not quoting by design
        return []
    rows = [([s], 1.0) for s in detail["quoting"]] + [([s], 0.0) for s in detail["not_quoting"]]
    return [_gauge("marketmaker_quoting", "1 while the market maker has quotes on the symbol.", ["symbol"], rows)]


def _settlement():
    _, detail = probes.settlement()
    return [
        GaugeMetricFamily(
            "settlements_stuck",
            "Settlements idle in a non-final step for longer than MONITOR_SETTLEMENT_STUCK_SECONDS.",
            value=detail["stuck"],
        )
    ]


class OpsCollector:
    parts = (_dependencies, _monitor, _leases, _beat, _engines, _feed, _marketmaker, _settlement)

    def collect(self):
        from trading.metrics import COLLECTOR_ERRORS

        for part in self.parts:
            try:
                families = part()
            except Exception as exc:
                COLLECTOR_ERRORS.labels(f"ops{part.__name__}").inc()
                logger.warning("metrics: ops %s failed: %s: %s", part.__name__, type(exc).__name__, exc)
                continue
            yield from families
