"""/metrics and what is built on it: deploy/prometheus/alerts.yml and
deploy/grafana/meridian.json parse, use only metrics a running app exports, and copy the
monitor's thresholds; figures of other processes reach the web process through Redis; a
failing collector costs its own figures, not the scrape."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from trading import metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "meridian.json"
SCRAPE_INTERVAL = 5.0  # docs/operations.md, "Metrics"
ALERT_WITHIN = 15.0

# Series Prometheus makes itself for every target, not found in any /metrics.
PROMETHEUS_OWN = {"up"}
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: its identifiers once strings, label matchers,
    ranges, grouping clauses and function calls are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def test_promql_metric_names_finds_the_selected_series_only():
    expr = (
        'histogram_quantile(0.99, sum by (le, view) (rate(http_request_duration_seconds_bucket{status="5xx"}[5m])))'
        ' > on (job) group_left max(lease_leader{lease=~"engine:.*"}) or vector(0)'
    )
    assert promql_metric_names(expr) == {"http_request_duration_seconds_bucket", "lease_leader"}


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_alert_rules_alert_within_15_s_with_the_monitors_thresholds():
    from django.conf import settings

    if shutil.which("promtool"):  # Prometheus' own check when it is installed (Debian: prometheus)
        result = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = _rules()
    assert {rule["labels"].get("check") for rule in rules} >= {
        "web", "database", "redis", "beat", "relay", "engine", "feed", "marketmaker", "settlement", "monitor",
    }  # fmt: skip
    assert any(rule["expr"].startswith("max by (check) (ops_check_failing)") for rule in rules)
    for group in groups:
        interval = float(group["interval"].rstrip("s"))
        for rule in group["rules"]:
            pending = float(str(rule.get("for", "0s")).rstrip("s"))
            # worst case: the next scrape, the next evaluation, then the pending time
            assert SCRAPE_INTERVAL + interval + pending <= ALERT_WITHIN, rule["alert"]
            name = rule["annotations"].get("threshold_setting")
            if name:
                threshold = float(re.search(r">\s*([\d.]+)\s*$", rule["expr"]).group(1))
                assert threshold == float(getattr(settings, name)), (rule["alert"], name)


def test_dashboard_is_grafana_json_with_a_query_per_panel():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(panel.get("targets") for panel in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def _run_app(script: Path, timeout: float = 150) -> dict:
    """``script`` in a child process on this test's database, its workers as threads."""
    import os
    import sys

    from tests.processes import test_database_url

    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(DATABASE_URL=test_database_url(), EMBEDDED_WORKERS="1", DEBUG="0", HTTPS="0")
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_metric_the_rules_and_dashboard_use_is_exported_by_a_running_app():
    seen = _run_app(Path(__file__).parent / "metrics_app_flow.py")
    assert seen["ready"] and seen["connected"], {k: v for k, v in seen.items() if k != "metrics"}
    samples = {}
    for family in text_string_to_metric_families(seen["metrics"]):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    exported = set(samples) | PROMETHEUS_OWN
    used = {name for rule in _rules() for name in promql_metric_names(rule["expr"])}
    used |= {name for expr in _dashboard_exprs() for name in promql_metric_names(expr)}
    assert used and not used - exported, f"used but not exported: {sorted(used - exported)}"

    def value(name, **labels):
        return sum(s.value for s in samples.get(name, []) if labels.items() <= s.labels.items())

    # the paths the flow exercised left their figures
    assert value("http_request_duration_seconds_count", view="api:spot_orders", method="POST", status="2xx") == 1
    assert value("order_entry_seconds_count", product="spot", outcome="accepted") >= 1
    assert value("order_entry_seconds_count", product="option", outcome="accepted") == 1
    assert value("engine_batch_orders_count", symbol="BTC-USDT") >= 1
    assert value("engine_batch_orders_sum", symbol="BTC-USDT") >= 1
    assert value("websocket_clients", stream="market") == 1  # scraped while the client was connected
    assert 'websocket_clients{stream="market"} 0.0' in seen["after_disconnect"]
    assert value("lease_leader", lease="relay") == 1 and value("lease_leader", lease="monitor") == 1
    assert value("dependency_up", dependency="database") == 1
    assert value("metrics_collector_errors_total") == 0


def test_a_shared_histogram_adds_up_in_redis_what_another_process_observed(settings):
    assert settings.REDIS_URL, "the suite runs with Redis"
    name = f"test_shared_{uuid.uuid4().hex[:8]}_seconds"
    writer_registry, reader_registry = CollectorRegistry(), CollectorRegistry()
    # the runner's process and a web process: the same histogram, different memories
    writer = metrics.SharedHistogram(name, "test", ("symbol",), (0.1, 1.0), flush_seconds=60, registry=writer_registry)
    metrics.SharedHistogram(name, "test", ("symbol",), (0.1, 1.0), registry=reader_registry)
    try:
        writer.observe(0.05, "BTC-USDT")
        writer.observe(0.5, "BTC-USDT")
        writer.observe(7.0, "ETH-USDT")
        assert f"{name}_count" not in generate_latest(reader_registry).decode()  # not flushed yet
        writer.flush()
        writer.observe(0.05, "BTC-USDT")
        writer.flush()
        text = generate_latest(reader_registry).decode()
        assert f'{name}_bucket{{le="0.1",symbol="BTC-USDT"}} 2.0' in text
        assert f'{name}_bucket{{le="1.0",symbol="BTC-USDT"}} 3.0' in text
        assert f'{name}_count{{symbol="BTC-USDT"}} 3.0' in text
        assert f'{name}_bucket{{le="1.0",symbol="ETH-USDT"}} 0.0' in text
        assert f'{name}_bucket{{le="+Inf",symbol="ETH-USDT"}} 1.0' in text
        assert f'{name}_sum{{symbol="ETH-USDT"}} 7.0' in text
    finally:
        metrics._redis().delete(writer.key)


def test_a_shared_histogram_keeps_what_it_could_not_flush(settings):
    name = f"test_shared_{uuid.uuid4().hex[:8]}_seconds"
    histogram = metrics.SharedHistogram(name, "test", (), (1.0,), flush_seconds=60, registry=CollectorRegistry())
    histogram.observe(0.5)
    good_redis = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    histogram.flush()
    settings.REDIS_URL = good_redis
    try:
        histogram.flush()
        assert metrics._redis().hgetall(histogram.key) == {b"|b0": b"1", b"|sum": b"0.5", b"|count": b"1"}
    finally:
        metrics._redis().delete(histogram.key)


def test_a_failing_collector_costs_its_own_figures_not_the_scrape():
    from prometheus_client.core import GaugeMetricFamily

    class Broken:
        def collect(self):
            raise RuntimeError("the database went away")
            yield

    class Working:
        def collect(self):
            yield GaugeMetricFamily("still_here", "test", value=1)

    registry = CollectorRegistry()
    registry.register(metrics._Guarded(Broken()))
    registry.register(metrics._Guarded(Working()))
    before = metrics.COLLECTOR_ERRORS.labels("Broken")._value.get()
    assert "still_here 1.0" in generate_latest(registry).decode()
    assert metrics.COLLECTOR_ERRORS.labels("Broken")._value.get() == before + 1


@pytest.mark.django_db
def test_metrics_time_each_view_and_read_the_monitor_state(client):
    from django.utils import timezone

    from ops.models import CheckState, Incident

    now = timezone.now()
    CheckState.objects.create(name="redis", status="failing", since=now, checked_at=now)
    Incident.objects.create(check_name="redis", started_at=now, alerted_at=now)
    client.get("/healthz", HTTP_HOST="127.0.0.1")
    text = client.get("/metrics", HTTP_HOST="127.0.0.1").content.decode()
    assert 'http_request_duration_seconds_count{method="GET",status="2xx",view="healthz"}' in text
    assert 'ops_check_failing{check="redis"} 1.0' in text
    assert "ops_incidents_open 1.0" in text
    assert 'ops_alerts_total{kind="failed"} 1.0' in text
