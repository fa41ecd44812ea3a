"""The back office's Prometheus figures (see trading/metrics.py)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from . import selectors
from .relay import relay_lag_seconds

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SLIPPAGE_BUCKETS = (-50.0, -20.0, -10.0, -5.0, -1.0, 0.0, 1.0, 5.0, 10.0, 20.0, 50.0)


def _hist(name, doc, data, buckets, labels=None, label_values=None):
    counts, total, count = data
    family = HistogramMetricFamily(name, doc, labels=labels)
    family.add_metric(label_values or [], [*[(str(b), c) for b, c in zip(buckets, counts)], ("+Inf", count)], total)
    return family


class SettlementCollector:
    def collect(self):
        lag = relay_lag_seconds()
        yield GaugeMetricFamily(
            "relay_backlog_age_seconds",
            "Age of the oldest outbox event the relay has not published.",
            value=lag["backlog_age_seconds"],
        )
        relay_p50 = lag["cursor"].get("lag_ms_p50")
        if relay_p50 is not None:
            yield GaugeMetricFamily(
                "relay_last_batch_lag_ms",
                "Median commit-to-publish lag of the events the relay published since its previous checkpoint.",
                value=relay_p50,
            )
        states = GaugeMetricFamily("settlements", "Settlements by state.", labels=["state"])
        for state, n in selectors.settlement_counts().items():
            states.add_metric([state], n)
        yield states
        counters = selectors.counters()
        for name, doc in (
            ("settlement_retries", "Step attempts that failed transiently and were retried."),
            ("settlement_manual_reviews", "Settlements sent to manual review."),
            ("settlement_recovered", "Settlements re-enqueued by the recovery sweep."),
            ("outbox_republished", "Outbox events re-published by reconciliation."),
        ):
            yield CounterMetricFamily(name, doc, value=counters.get(name, 0))
        yield _hist(
            "settlement_commit_to_settled_seconds",
            "From the order's commit to the end of step 4.",
            selectors.settled_latency_histogram(LATENCY_BUCKETS),
            LATENCY_BUCKETS,
        )
        steps = HistogramMetricFamily("settlement_step_seconds", "Duration of each settlement step.", labels=["step"])
        for step, (counts, total, count) in selectors.step_latency_histograms(LATENCY_BUCKETS).items():
            steps.add_metric(
                [str(step)], [*[(str(b), c) for b, c in zip(LATENCY_BUCKETS, counts)], ("+Inf", count)], total
            )
        yield steps
        yield _hist(
            "settlement_slippage_bps",
            "Venue fill price against the index at order time (positive costs the platform).",
            selectors.slippage_histogram(SLIPPAGE_BUCKETS),
            SLIPPAGE_BUCKETS,
        )
