"""The monitor's rounds on the real database: incidents, one alert each, recoveries,
maintenance windows; the alerts' channels (staff notification, email, an apprise webhook
received by a real HTTP server); the probes against the real PostgreSQL and Redis; the API,
the staff console's queue and the maintenance command."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from notifications.models import Notification
from ops import services
from ops.alerting import alerts_send
from ops.models import CheckState, Incident, MaintenanceWindow
from ops.monitor import probe_all
from ops.probes import all_probes
from ops.services import LEASE, Outcome, round_record
from tests.factories import UserFactory
from tests.orders.spot.conftest import markets  # noqa: F401  (a fixture)
from trading import staff_queues
from trading.leases import lease_acquire

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead():
    holder = "test-monitor"
    epoch = lease_acquire(name=LEASE, holder=holder, ttl=600)
    return {"epoch": epoch, "holder": holder}


def rounds(lead, *oks, check="redis", start=None):
    start = start or timezone.now()
    alerts = []
    for i, ok in enumerate(oks):
        alerts.append(
            round_record(
                outcomes=[Outcome(check, ok, {"round": i}), Outcome("database", True, {})],
                now=start + timedelta(seconds=5 * i),
                **lead,
            )
        )
    return alerts


def test_an_incident_alerts_once_and_says_once_that_it_cleared(lead, settings):
    settings.MONITOR_FAIL_AFTER, settings.MONITOR_RECOVER_AFTER = 2, 2
    alerts = rounds(lead, True, False, False, False, True, True, True)
    kinds = [[a.kind for a in batch] for batch in alerts]
    assert kinds == [[], [], ["failed"], [], [], ["recovered"], []]
    incident = Incident.objects.get()
    assert incident.check_name == "redis" and incident.resolved_at is not None
    assert incident.alerted_at is not None and incident.recovery_sent_at is not None
    assert incident.detail == {"round": 2}
    state = CheckState.objects.get(name="redis")
    assert state.status == "ok" and state.detail == {"round": 6}
    assert CheckState.objects.get(name="database").status == "ok"


def test_a_second_failure_is_a_second_incident(lead):
    rounds(lead, False, False, True, True, False, False)
    assert Incident.objects.count() == 2
    assert Incident.objects.filter(resolved_at=None).count() == 1


def test_no_alert_during_maintenance_and_the_open_incident_alerts_when_it_ends(lead):
    window = services.maintenance_declare(minutes=10, reason="Redis upgrade")
    alerts = rounds(lead, False, False, False)
    assert all(batch == [] for batch in alerts)
    incident = Incident.objects.get()
    assert incident.silenced and incident.alerted_at is None
    services.maintenance_end(window=window)
    [alert] = rounds(lead, False)[0]
    assert (alert.kind, alert.check) == ("failed", "redis")


def test_an_incident_cleared_during_maintenance_sends_no_recovery(lead):
    services.maintenance_declare(minutes=10, reason="restart")
    alerts = rounds(lead, False, False, True, True)
    assert all(batch == [] for batch in alerts)
    assert Incident.objects.get().resolved_at is not None


def test_round_record_is_fenced_by_the_lease(lead):
    from trading.leases import LeaseLost

    with pytest.raises(LeaseLost):
        round_record(outcomes=[Outcome("redis", False, {})], epoch=lead["epoch"], holder="someone-else")


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_port}/hook", Hook.received
    server.shutdown()


def test_the_alert_reaches_staff_email_and_the_webhook(lead, settings, staff, user, webhook):
    url, received = webhook
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.OPS_ALERT_EMAILS = ["ops@meridian.test", "oncall@meridian.test"]
    settings.OPS_ALERT_URLS = [url]
    other_staff = UserFactory(is_staff=True)
    [[alert]] = [batch for batch in rounds(lead, False, False) if batch]
    alerts_send([alert])

    [email] = mail.outbox
    assert email.to == ["ops@meridian.test", "oncall@meridian.test"]
    assert email.subject == "[Meridian Exchange] ALERT: redis is failing"
    assert "docs/operations.md" in email.body
    [hook] = received
    assert hook["title"] == email.subject and hook["type"] == "failure"
    told = Notification.objects.filter(kind="ops_alert")
    assert sorted(told.values_list("user_id", flat=True)) == sorted([staff.pk, other_staff.pk])
    assert not Notification.objects.filter(user=user).exists()
    assert told.first().data["check"] == "redis"

    alerts_send([alert])  # the same incident's alert again: still one notification each
    assert told.count() == 2

    [[recovered]] = [batch for batch in rounds(lead, True, True, start=timezone.now() + timedelta(seconds=30)) if batch]
    alerts_send([recovered])
    assert mail.outbox[-1].subject == "[Meridian Exchange] RECOVERED: redis is ok again"
    assert received[-1]["type"] == "success"
    assert Notification.objects.filter(kind="ops_alert").count() == 4


def test_one_channel_failing_does_not_stop_the_others(lead, settings, staff):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 1  # nothing listens
    settings.OPS_ALERT_EMAILS = ["ops@meridian.test"]
    [[alert]] = [batch for batch in rounds(lead, False, False) if batch]
    alerts_send([alert])
    assert Notification.objects.filter(kind="ops_alert", user=staff).exists()


def test_the_probes_answer_against_the_real_database_and_redis(settings):
    settings.MONITOR_CHECKS = []
    settings.MONITOR_BEAT_MAX_AGE_SECONDS = 0
    checks = all_probes()
    expected = {"database", "redis", "celery", "beat", "relay", "feed", "marketmaker", "settlement", "venues"}
    assert expected <= set(checks)
    assert {"engine:BTC-USDT", "engine:ETH-USDT"} <= set(checks)
    started = time.monotonic()
    outcomes = {o.check: o for o in probe_all(checks)}
    assert time.monotonic() - started < settings.MONITOR_PROBE_TIMEOUT_SECONDS + 1
    assert outcomes["database"].ok and outcomes["redis"].ok, outcomes
    assert not outcomes["beat"].ok  # no heartbeat yet
    assert not outcomes["celery"].ok  # no worker answers on this Redis database
    assert not outcomes["relay"].ok and "no relay" in outcomes["relay"].detail["error"]
    assert outcomes["relay"].detail["backlog"] == 0


def test_a_hung_probe_fails_by_its_timeout():
    started = time.monotonic()
    [outcome] = probe_all({"slow": lambda: (time.sleep(5), (True, {}))[1]}, timeout=0.3)
    assert time.monotonic() - started < 1
    assert not outcome.ok and "timeout" in outcome.detail["error"]


def test_a_web_probe_reads_readyz_over_http(live_server, settings):
    settings.MONITOR_WEB_URLS = [live_server.url, "http://127.0.0.1:1"]
    settings.MONITOR_CHECKS = ["web"]
    outcomes = {o.check: o for o in probe_all()}
    up, down = outcomes[f"web:{live_server.url}"], outcomes["web:http://127.0.0.1:1"]
    assert up.ok and up.detail["http_status"] in (200, 503)
    assert not down.ok


def test_the_heartbeat_task_makes_beat_ok(settings, eager_tasks):
    from ops.probes import beat
    from ops.tasks import heartbeat

    heartbeat.delay()
    ok, detail = beat()
    assert ok and detail["age_seconds"] < 5


def test_health_api_for_staff_only(lead, api, staff, user):
    rounds(lead, False, False, True, True, False, False)
    api.force_authenticate(staff)
    response = api.get("/api/v1/ops/health")
    assert response.status_code == 200
    body = response.json()
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["redis"]["status"] == "failing" and checks["redis"]["since"].endswith("Z")
    assert checks["database"]["status"] == "ok" and checks["redis"]["detail"] == {"round": 5}
    assert [i["check"] for i in body["incidents"]] == ["redis", "redis"]
    assert body["incidents"][0]["resolved_at"] is None and body["incidents"][1]["resolved_at"].endswith("Z")

    bad = api.get("/api/v1/ops/health?hours=nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"

    api.force_authenticate(user)
    refused = api.get("/api/v1/ops/health")
    assert refused.status_code == 403 and refused.json()["error"]["code"]


def test_old_resolved_incidents_leave_the_report(lead, api, staff):
    Incident.objects.create(
        check_name="feed",
        started_at=timezone.now() - timedelta(hours=30),
        resolved_at=timezone.now() - timedelta(hours=29),
    )
    Incident.objects.create(check_name="relay", started_at=timezone.now() - timedelta(hours=30))  # still open
    api.force_authenticate(staff)
    assert [i["check"] for i in api.get("/api/v1/ops/health").json()["incidents"]] == ["relay"]


def test_open_incidents_wait_for_staff_in_the_console(lead, admin_client_otp):
    rounds(lead, False, False)
    [queue] = [q for q in staff_queues.waiting() if q["label"].startswith("Open incidents")]
    assert queue["count"] == 1 and "resolved_at__isempty=1" in queue["url"]
    assert admin_client_otp.get(queue["url"]).status_code == 200
    assert admin_client_otp.get("/admin/ops/checkstate/").status_code == 200
    page = admin_client_otp.get("/admin/").content.decode()
    assert "Open incidents (monitor)" in page


def test_maintenance_from_the_admin_and_the_command(admin_client_otp, staff):
    response = admin_client_otp.post("/admin/ops/maintenancewindow/add/", {"minutes": "15", "reason": "deploy"})
    assert response.status_code == 302, response.content[:2000]
    window = MaintenanceWindow.objects.get()
    assert window.created_by == staff and window.reason == "deploy"
    assert abs((window.ends_at - window.starts_at).total_seconds() - 900) < 1
    assert services.maintenance_active() == window
    response = admin_client_otp.post(
        "/admin/ops/maintenancewindow/", {"action": "end_now", "_selected_action": [window.pk]}
    )
    assert response.status_code == 302
    assert services.maintenance_active() is None

    call_command("ops_maintenance", "--minutes", "5", "--reason", "Redis failover drill")
    assert services.maintenance_active().reason == "Redis failover drill"
    with pytest.raises(CommandError):
        call_command("ops_maintenance", "--minutes", "0", "--reason", "x")


@pytest.mark.slow
def test_the_monitor_runs_as_a_thread_in_embedded_mode(tmp_path):
    from pathlib import Path

    from tests.processes import run_embedded

    seen = run_embedded(Path(__file__).parent / "monitor_embedded_flow.py", tmp_path)
    assert seen["heartbeat"], seen
    assert set(seen["checks"]) == {"database", "redis", "celery", "beat", "feed", "settlement"}, seen
    assert all(status == "ok" and successes >= 3 for status, successes in seen["checks"].values()), seen
    assert seen["incidents"] == [], seen


def test_the_feed_check_wants_a_leader_and_a_fresh_index_not_a_stale_mark():
    from marketdata.feed_runner import LEASE as FEED
    from marketdata.models import IndexPrint
    from ops.probes import feed

    ok, detail = feed()
    assert not ok and detail["error"] == "no feed holds the lease"
    lease_acquire(name=FEED, holder="feed-test", ttl=600)
    now = timezone.now()
    IndexPrint.objects.create(underlying="BTC", ts=now - timedelta(seconds=1), price="65000", sources={})
    assert feed()[0]
    # every source went stale: the feed writes stale marks, and the last real price ages
    IndexPrint.objects.filter(underlying="BTC").update(ts=now - timedelta(seconds=120))
    IndexPrint.objects.create(underlying="BTC", ts=now, price=None, stale=True, sources={})
    ok, detail = feed()
    assert not ok and detail["error"].startswith("stale index: BTC") and detail["age_seconds"]["BTC"] >= 120


def test_the_engine_check_wants_a_leader_and_no_order_waiting_too_long(settings):
    from ops.probes import engine
    from orders.spot.runner import lease_name

    probe = engine("BTC-USDT")
    ok, detail = probe()
    assert not ok and detail["error"] == "no engine runner holds the lease"
    lease_acquire(name=lease_name("BTC-USDT"), holder="engine-test", ttl=600)
    ok, detail = probe()
    assert ok and detail["leader"] == "engine-test" and detail["oldest_waiting_seconds"] == 0


@pytest.mark.usefixtures("markets")
def test_the_market_maker_check_counts_quotes_waiting_for_their_engine():
    """Quotes the market maker entered while their engine was away (a rolling restart) are
    live, still ``new``: the market maker is quoting, and the engine's check tells the rest."""
    import io

    from ops.probes import marketmaker
    from orders import demo
    from orders.models import SpotOrder, SpotStatus
    from orders.spot.marketmaker import LEASE as MAKER
    from orders.spot.marketmaker import MarketMaker

    demo.seed(io.StringIO())
    assert MarketMaker(announce=lambda line: None).quote_round() == {"BTC-USDT": "quoted", "ETH-USDT": "quoted"}
    lease_acquire(name=MAKER, holder="maker-test", ttl=600)
    assert set(SpotOrder.objects.values_list("status", flat=True)) == {SpotStatus.NEW}  # no engine ran
    ok, detail = marketmaker()
    assert ok and detail["quoting"] == ["BTC-USDT", "ETH-USDT"], detail
    SpotOrder.objects.filter(symbol="BTC-USDT").update(status=SpotStatus.CANCELLED)
    ok, detail = marketmaker()
    assert not ok and detail["error"] == "no quotes on BTC-USDT", detail


def test_the_market_maker_check_without_its_user_is_ok_by_design():
    from ops.probes import marketmaker

    ok, detail = marketmaker()
    assert ok and "not quoting by design" in detail["mode"]


def test_the_feed_check_fails_at_once_when_the_feed_writes_stale_marks():
    """Every source stopped answering a moment ago: the last real price is still young, but
    option quotes are refused from the first stale mark, so the check fails from it."""
    from marketdata.feed_runner import LEASE as FEED
    from marketdata.models import IndexPrint
    from ops.probes import feed

    lease_acquire(name=FEED, holder="feed-test", ttl=600)
    now = timezone.now()
    for underlying, price in (("BTC", "65000"), ("ETH", "3400")):
        IndexPrint.objects.create(underlying=underlying, ts=now - timedelta(seconds=2), price=price, sources={})
    assert feed()[0]
    excluded = {"sim-alpha": "missing", "sim-beta": "missing"}
    IndexPrint.objects.create(
        underlying="ETH", ts=now, price=None, stale=True, sources={"used": [], "excluded": excluded}
    )
    ok, detail = feed()
    assert not ok and detail["error"].startswith("stale index: ETH ")
    assert detail["stale_sources"] == {"ETH": excluded} and detail["age_seconds"]["ETH"] < 5
    IndexPrint.objects.create(underlying="ETH", ts=now + timedelta(seconds=1), price="3401", sources={})
    ok, detail = feed()
    assert ok and "stale_sources" not in detail and "error" not in detail
