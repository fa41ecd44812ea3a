"""The analytics: daily aggregates per spot symbol recomputed from real trades (the engine runner
matched them) reconcile with the trades table to the unit, a re-run changes nothing, beat
schedules the task, the command reports its progress, the CSV export carries the rows, and the
live dashboard (admin page and staff JSON) is for staff only and shows the figures."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from compliance.models import AmlCase
from marketdata.models import Candle, CandleSource
from ops import services, tasks
from ops.dashboard import analytics_dashboard
from ops.models import DailyAggregate, Incident
from ops.volatility import realized_volatility
from orders.models import SpotOrder, SpotTrade
from orders.spot.services import order_request, spot_order_cancel, spot_order_place
from settlement.models import Settlement, State
from tests.orders.conftest import INDEX, print_index
from tests.orders.spot.conftest import Engine, funded_trader
from trading.celery import app as celery_app

D = Decimal
pytestmark = pytest.mark.django_db
ON_SQLITE = bool(os.environ.get("SQLITE_ONLY"))


@pytest.fixture
def markets(db):
    from marketdata.services import instruments_sync

    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


def place(user, **data):
    order, _ = spot_order_place(user=user, request=order_request(**data))
    return order


@pytest.fixture
def history(markets):
    """Two days of real trading: yesterday's BTC trades (moved back a day, as history) and
    today's BTC and ETH trades, with buyers and sellers taking in turn (fees in both assets),
    and a cancelled order each day."""
    alice, bob = funded_trader(eth="50"), funded_trader(eth="50")
    btc, eth = Engine("BTC-USDT"), Engine("ETH-USDT")
    place(alice, symbol="BTC-USDT", side="sell", type="limit", price="65000.00", quantity="0.3")
    place(alice, symbol="BTC-USDT", side="sell", type="limit", price="65010.50", quantity="0.2")
    cancelled = place(alice, symbol="BTC-USDT", side="sell", type="limit", price="69000.00", quantity="0.01")
    btc.run()
    place(bob, symbol="BTC-USDT", side="buy", type="market", quantity="0.41")  # sweeps both levels
    spot_order_cancel(user=alice, order_id=cancelled.pk, wait=0)
    btc.run()
    yesterday = timezone.now() - timedelta(days=1)
    SpotTrade.objects.update(created_at=yesterday)
    SpotOrder.objects.update(created_at=yesterday)
    SpotOrder.objects.filter(closed_at__isnull=False).update(closed_at=yesterday)

    place(bob, symbol="BTC-USDT", side="buy", type="limit", price="64990.00", quantity="0.05")
    place(alice, symbol="BTC-USDT", side="sell", type="limit", price="64980.00", quantity="0.09")  # a seller takes
    btc.run()
    place(bob, symbol="BTC-USDT", side="buy", type="market", quantity="0.03")  # a buyer takes from the rest
    place(bob, symbol="ETH-USDT", side="buy", type="limit", price="3400.00", quantity="1.5")
    btc.run()
    place(alice, symbol="ETH-USDT", side="sell", type="limit", price="3399.99", quantity="1.5")
    eth_cancel = place(bob, symbol="ETH-USDT", side="buy", type="limit", price="3200.00", quantity="0.1")
    eth.run()
    spot_order_cancel(user=bob, order_id=eth_cancel.pk, wait=0)
    eth.run()
    return yesterday.date(), timezone.now().date()


def expected(symbol: str, day) -> dict:
    """The day's figures straight from the trades and orders tables, summed here in Python."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    trades = list(SpotTrade.objects.filter(symbol=symbol, created_at__gte=start, created_at__lt=end).order_by("seq"))
    buys = [t for t in trades if t.taker_side == "buy"]
    sells = [t for t in trades if t.taker_side == "sell"]
    orders = SpotOrder.objects.filter(symbol=symbol, parent__isnull=True)
    return {
        "trades": len(trades),
        "volume_base": sum((t.quantity for t in trades), D(0)),
        "volume_quote": sum((t.quote_amount for t in trades), D(0)),
        "open": trades[0].price if trades else None,
        "close": trades[-1].price if trades else None,
        "high": max((t.price for t in trades), default=None),
        "low": min((t.price for t in trades), default=None),
        "fees_base": sum((t.taker_fee for t in buys), D(0)) + sum((t.maker_fee for t in sells), D(0)),
        "fees_quote": sum((t.taker_fee for t in sells), D(0)) + sum((t.maker_fee for t in buys), D(0)),
        "orders_placed": orders.filter(created_at__gte=start, created_at__lt=end).count(),
        "orders_cancelled": orders.filter(status="cancelled", closed_at__gte=start, closed_at__lt=end).count(),
    }


def figures(row: DailyAggregate) -> dict:
    return {key: getattr(row, key) for key in expected("BTC-USDT", row.day)}


def test_the_daily_aggregates_reconcile_with_the_trades_table_to_the_unit(history):
    yesterday, today = history
    services.daily_aggregates_compute(first=yesterday, last=today)
    rows = {(r.symbol, r.day): r for r in DailyAggregate.objects.all()}
    assert set(rows) == {(s, d) for s in ("BTC-USDT", "ETH-USDT") for d in (yesterday, today)}
    for (symbol, day), row in rows.items():
        assert figures(row) == expected(symbol, day), (symbol, day)
    # the figures are real ones, not zeros matching zeros
    btc = rows[("BTC-USDT", yesterday)]
    assert (btc.trades, btc.volume_base, btc.open, btc.close) == (2, D("0.41"), D("65000.00"), D("65010.50"))
    assert btc.volume_quote == D("19500") + D("7151.155")  # 0.3 x 65000 + 0.11 x 65010.50
    assert btc.fees_base > 0 and btc.fees_quote > 0 and btc.orders_cancelled == 1 and btc.orders_placed == 4
    today_btc = rows[("BTC-USDT", today)]
    assert (today_btc.open, today_btc.high, today_btc.low, today_btc.close) == (
        D("64990.00"),
        D("64990.00"),
        D("64980.00"),
        D("64980.00"),
    )
    assert today_btc.trades == 2 and today_btc.fees_base > 0 and today_btc.fees_quote > 0
    eth = rows[("ETH-USDT", today)]
    assert (eth.trades, eth.volume_base, eth.orders_cancelled) == (1, D("1.5"), 1)
    assert rows[("ETH-USDT", yesterday)].trades == 0 and rows[("ETH-USDT", yesterday)].open is None


def test_a_rerun_rewrites_the_same_rows_and_picks_up_late_changes(history):
    yesterday, today = history
    tasks.aggregate_daily()  # beat's call: yesterday and today
    first = {(r.symbol, r.day): figures(r) for r in DailyAggregate.objects.all()}
    tasks.aggregate_daily()
    tasks.aggregate_daily(day=today.isoformat())
    assert DailyAggregate.objects.count() == 4
    assert {(r.symbol, r.day): figures(r) for r in DailyAggregate.objects.all()} == first
    # a trade moved to yesterday (a late correction): both days follow it on the next run
    moved = SpotTrade.objects.filter(symbol="ETH-USDT").get()
    SpotTrade.objects.filter(pk=moved.pk).update(created_at=timezone.now() - timedelta(days=1))
    tasks.aggregate_daily()
    assert DailyAggregate.objects.get(symbol="ETH-USDT", day=today).trades == 0
    assert figures(DailyAggregate.objects.get(symbol="ETH-USDT", day=yesterday)) == expected("ETH-USDT", yesterday)


def test_beat_runs_the_aggregates_task():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "ops.aggregate_daily"]
    assert len(entries) == 1
    assert "ops.aggregate_daily" in celery_app.tasks
    schedule = entries[0]["schedule"]  # every 10 minutes, around the clock
    assert schedule.minute == set(range(0, 60, 10)) and schedule.hour == set(range(24))


def test_the_command_reports_each_day_and_refuses_a_bad_one(history):
    yesterday, today = history
    out = io.StringIO()
    call_command("aggregate_daily", "--since", (yesterday - timedelta(days=1)).isoformat(), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"[1/3] {yesterday - timedelta(days=1)}: BTC-USDT 0 trades 0 USDT")
    assert lines[1].startswith(f"[2/3] {yesterday}: BTC-USDT 2 trades 26651.155 USDT")
    assert lines[-1] == f"3 day(s) aggregated, {yesterday - timedelta(days=1)} to {today}."
    assert DailyAggregate.objects.count() == 6
    out = io.StringIO()
    call_command("aggregate_daily", "--day", today.isoformat(), stdout=out)
    assert out.getvalue().startswith(f"[1/1] {today}: BTC-USDT 2 trades")
    with pytest.raises(CommandError, match="not a day"):
        call_command("aggregate_daily", "--day", "2026-13-01")
    with pytest.raises(CommandError, match="in the future"):
        call_command("aggregate_daily", "--day", (today + timedelta(days=1)).isoformat())


def test_the_csv_export_has_every_selected_row_exactly(history, admin_client_otp):
    yesterday, today = history
    services.daily_aggregates_compute(first=yesterday, last=today)
    picked = DailyAggregate.objects.filter(symbol="BTC-USDT")
    response = admin_client_otp.post(
        "/admin/ops/dailyaggregate/",
        {"action": "export_csv", "_selected_action": [str(pk) for pk in picked.values_list("pk", flat=True)]},
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert 'attachment; filename="daily-aggregates-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["day"], r["symbol"]) for r in rows] == [(str(yesterday), "BTC-USDT"), (str(today), "BTC-USDT")]
    for row in rows:
        want = expected("BTC-USDT", datetime.fromisoformat(row["day"]).date())
        for key, value in want.items():
            assert (D(row[key]) if row[key] != "" else None) == value, key
        assert row["computed_at"].endswith("Z")
    assert rows[0]["volume_quote"] == "26651.155" and rows[0]["open"] == "65000"


def test_the_dashboard_is_for_staff_and_shows_the_figures(history, admin_client_otp, user, api, staff):
    now = timezone.now()
    Incident.objects.create(check_name="redis", started_at=now - timedelta(minutes=3), detail={})
    AmlCase.objects.create(user=user, score=D("72.5"))
    AmlCase.objects.create(user=staff, status="cleared", closed_at=now)
    Settlement.objects.create(
        ref="option_order:1",
        event_id=1,
        topic="options.order",
        kind="open",
        underlying="BTC",
        usdt=D("100"),
        underlying_qty=D("0.0015"),
        index_price=D("65000"),
        state=State.PENDING,
        event_created_at=now - timedelta(seconds=40),
    )
    for n, seconds in enumerate((2, 4), start=2):
        settled = Settlement.objects.create(
            ref=f"option_order:{n}",
            event_id=n,
            topic="options.order",
            kind="open",
            underlying="BTC",
            usdt=D("100"),
            underlying_qty=D("0.0015"),
            index_price=D("65000"),
            state=State.SETTLED,
            step=5,
            event_created_at=now - timedelta(minutes=5),
        )
        Settlement.objects.filter(pk=settled.pk).update(
            settled_at=settled.event_created_at + timedelta(seconds=seconds)
        )

    page = admin_client_otp.get("/admin/ops/dailyaggregate/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    board = json.loads(re.search(r'id="analytics-initial" type="application/json">(.*?)</script>', html).group(1))
    assert "/api/v1/ops/analytics" in html and "/api/v1/ops/risk/exposure" in html
    # today's trades fall in the last hour: the per-minute rows add up to them
    assert sum(m["trades"] for m in board["per_minute"]) == 3
    assert sum(D(m["volume_quote"]) for m in board["per_minute"]) == sum(
        (t.quote_amount for t in SpotTrade.objects.filter(created_at__gte=now - timedelta(hours=1))), D(0)
    )
    assert sum(m["orders"] for m in board["per_minute"]) == 6
    volume = {v["symbol"]: v for v in board["volume_24h"]}
    assert volume["ETH-USDT"]["trades"] == 1 and D(volume["ETH-USDT"]["volume_base"]) == D("1.5")
    assert volume["BTC-USDT"]["trades"] == 2  # yesterday's, moved back a whole day, are past the 24 h
    assert board["alerts"] == {"incidents_open": 1, "aml_cases_open": 1, "total": 2}
    lag = board["settlement"]
    assert (lag["waiting"], lag["manual_review"], lag["settled_1h"]) == (1, 0, 2)
    assert D(lag["lag_avg_seconds"]) == 3 and D(lag["lag_max_seconds"]) == 4
    assert 40 <= D(lag["oldest_waiting_seconds"]) < 60

    staff_api = api.__class__()
    staff_api.force_authenticate(staff)
    assert staff_api.get("/api/v1/ops/analytics").json()["alerts"]["total"] == 2
    api.force_authenticate(user)
    assert api.get("/api/v1/ops/analytics").status_code == 403
    api.force_authenticate(None)
    assert api.get("/api/v1/ops/analytics").status_code in (401, 403)


def test_the_dashboard_page_refuses_traders(client, user):
    client.force_login(user)
    response = client.get("/admin/ops/dailyaggregate/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.get("/admin/ops/dailyaggregate/")
    assert response.status_code == 302


def test_realized_volatility_of_the_index_candles(markets):
    now = timezone.now().replace(second=0, microsecond=0)
    closes = [D("65000"), D("65065"), D("64999.5"), D("65100"), D("65080.25")]
    Candle.objects.bulk_create(
        Candle(
            symbol="BTC-USDT",
            source=CandleSource.INDEX,
            interval="1m",
            open_time=now - timedelta(minutes=len(closes) - i),
            open=c,
            high=c,
            low=c,
            close=c,
        )
        for i, c in enumerate(closes)
    )
    vol = {v["symbol"]: v for v in analytics_dashboard().volatility}
    returns = [math.log(b / a) for a, b in pairwise(closes)]
    mean = sum(returns) / len(returns)
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    assert vol["BTC-USDT"]["samples_1h"] == 5
    assert vol["BTC-USDT"]["vol_1h"] == D(str(round(stdev * math.sqrt(525600) * 100, 2)))
    assert vol["BTC-USDT"]["vol_24h"] is None and vol["ETH-USDT"]["vol_1h"] is None  # too few closes


def test_realized_volatility_core():
    assert realized_volatility([D(1), D(2)], period_seconds=60) is None
    assert realized_volatility([D(100), D(0), D(100)], period_seconds=60) is None
    assert realized_volatility([D(100)] * 10, period_seconds=60) == 0
    # alternating +-1 % moves every day: the daily deviation times sqrt(365)
    closes = [D(100)]
    for i in range(20):
        closes.append(closes[-1] * (D("1.01") if i % 2 == 0 else 1 / D("1.01")))
    returns = [math.log(1.01), -math.log(1.01)] * 10
    mean = sum(returns) / 20
    daily = math.sqrt(sum((r - mean) ** 2 for r in returns) / 19)
    assert realized_volatility(closes, period_seconds=86400) == pytest.approx(daily * math.sqrt(365), rel=1e-12)


@pytest.mark.slow
@pytest.mark.skipif(ON_SQLITE, reason="this is the SQLite run")
def test_the_same_tests_pass_on_sqlite(tmp_path):
    from tests.processes import pytest_on_sqlite

    pytest_on_sqlite(tmp_path, __file__, "--nomigrations", "-k", "not on_sqlite", timeout=300)
