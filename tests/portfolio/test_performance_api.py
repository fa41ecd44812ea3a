"""GET /api/v1/portfolio/performance: the equity curve from the daily snapshots plus the live
value, and its TWR and MWR, for each period; bad periods refused."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portfolio import performance, snapshots
from tests.orders.conftest import print_index
from tests.portfolio.report_helpers import closes, days_from, deposit, moment, trader, withdraw

pytestmark = pytest.mark.django_db
D = Decimal


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def history():
    """A trader with 40 days of history: USDT in, BTC bought by deposit, part withdrawn;
    BTC closes rising 1 % a day, the live index at the last close's price."""
    today = timezone.now().date()
    days = days_from(today - timedelta(days=40), 40)
    prices = {d: (D(50000) * D("1.01") ** n).quantize(D("0.01")) for n, d in enumerate(days)}
    closes("BTC", prices)
    closes("ETH", dict.fromkeys(days, 3000))
    print_index("BTC", prices[days[-1]])
    print_index("ETH", D(3000))
    alice = trader()
    deposit(alice, "USDT", "10000", moment(days[0], 9))
    deposit(alice, "BTC", "1", moment(days[0], 23, 59, 30))  # valued at the 23:59 candle: that day's close
    withdraw(alice, "USDT", "4000", moment(days[20], 12))
    snapshots.snapshots_write(days=days)
    return alice, days, prices


def test_every_period_chains_the_snapshots_and_the_live_value(history):
    alice, days, prices = history
    for period, length in (("7d", 7), ("30d", 30), ("90d", None), ("1y", None), ("all", None)):
        response = client_for(alice).get("/api/v1/portfolio/performance", {"period": period})
        assert response.status_code == 200, response.content
        body = response.json()
        points = body["points"]
        live = points[-1]
        assert live["live"] is True and live["date"] == timezone.now().date().isoformat()
        snapshot_points = points[1:-1] if length is None else points[:-1]
        if length is not None:  # starts at the last close at or before now - period
            first = (timezone.now() - timedelta(days=length)).date() - timedelta(days=1)
            assert points[0]["date"] == first.isoformat()
        else:  # the trader's first day, from nothing
            assert points[0] == {
                "date": (days[0] - timedelta(days=1)).isoformat(),
                "at": f"{days[0].isoformat()}T00:00:00Z",
                "value_usdt": "0.000000",
                "net_flows_usdt": "0.000000",
                "live": False,
            }
        for point in snapshot_points:
            day = next(d for d in days if d.isoformat() == point["date"])
            btc = prices[day]
            usdt = D(10000) if day < days[20] else D(10000 - 4001)
            assert D(point["value_usdt"]) == usdt + btc, point
        # the live value: the same holdings at the live index
        assert D(live["value_usdt"]) == D(10000 - 4001) + prices[days[-1]]
        assert D(live["net_flows_usdt"]) == 0
        # the returns are performance.returns of those very points
        curve = [
            performance.Point(
                datetime.fromisoformat(p["at"].replace("Z", "+00:00")),
                D(p["value_usdt"]),
                D(p["net_flows_usdt"]),
            )
            for p in points
        ]
        expected = performance.returns(curve)
        assert body["twr"] == (None if expected.twr is None else f"{expected.twr:f}")
        assert body["mwr"] == (None if expected.mwr is None else f"{expected.mwr:f}")
        assert body["twr_annualized"] is None  # under a year of history


def test_the_twr_is_the_markets_not_the_deposits(history):
    alice, days, prices = history
    body = client_for(alice).get("/api/v1/portfolio/performance", {"period": "all"}).json()
    # day 0: 10000 USDT + 1 BTC brought in, worth exactly that at the close: no return; then
    # USDT stays flat and BTC rises 1 % a day; the withdrawal is not a loss
    assert D(body["points"][1]["net_flows_usdt"]) == D(10000) + prices[days[0]]
    twr = D(body["twr"])
    # between flat USDT and BTC alone (up 1 % a day for 39 days)
    assert D(0) < twr < D("1.01") ** 39 - 1
    # by hand: the daily factors of USDT + BTC, the withdrawal taken off at its day's start
    growth = D(1)
    for before, after in pairwise(days):
        usdt_before = D(10000) if before < days[20] else D(5999)
        usdt_after = D(10000) if after < days[20] else D(5999)
        flow = D(-4000) if after == days[20] else D(0)
        growth *= (usdt_after + prices[after]) / (usdt_before + prices[before] + flow)
    # the fee (1 USDT) on day 20 is a loss, and the live point adds nothing (prices unchanged)
    assert abs(twr - (growth - 1)) < D("0.00000002")


def test_a_trader_without_snapshots_starts_from_today(db):
    print_index("BTC", D(60000))
    print_index("ETH", D(3000))
    bob = trader()
    today_start = datetime.combine(timezone.now().date(), time(0), tzinfo=UTC)
    deposit(bob, "USDT", "500", max(timezone.now() - timedelta(minutes=5), today_start))
    body = client_for(bob).get("/api/v1/portfolio/performance").json()
    assert body["period"] == "30d"
    assert [p["value_usdt"] for p in body["points"]] == ["0.000000", "500.000000"]
    assert body["points"][-1]["net_flows_usdt"] == "500.000000"
    assert body["twr"] == "0.00000000"


def test_unknown_period_is_refused(history):
    alice, _, _ = history
    for bad in ("5d", "ALL ", "1Y", "30"):
        response = client_for(alice).get("/api/v1/portfolio/performance", {"period": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "validation_error"
        assert "period" in response.json()["error"]["fields"]


def test_only_your_own_curve(history):
    stranger = trader()
    body = client_for(stranger).get("/api/v1/portfolio/performance", {"period": "all"}).json()
    assert all(D(p["value_usdt"]) == 0 for p in body["points"])
    assert APIClient().get("/api/v1/portfolio/performance").status_code == 401


def test_without_a_live_index_the_live_value_is_the_last_candle_and_marked_stale(db):
    today = timezone.now().date()
    day = today - timedelta(days=2)
    closes("BTC", {day: 60000})
    closes("ETH", {day: 3000})
    carol = trader()
    deposit(carol, "BTC", "2", moment(day, 8))
    snapshots.snapshots_write(days=[day, today - timedelta(days=1)])
    # no index print at all: the feed has not run since the last restart
    body = client_for(carol).get("/api/v1/portfolio/performance", {"period": "7d"}).json()
    live = body["points"][-1]
    assert live["live"] is True and D(live["value_usdt"]) == 2 * 60000
    assert body["stale"] is True and body["twr"] == "0.00000000"
