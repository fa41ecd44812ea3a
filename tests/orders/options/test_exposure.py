"""The counter's own exposure through the API: GET /api/v1/ops/risk/exposure reports what real
counter orders did to its book; past the soft limit its ask widens, past the hard one a buy is
refused (and writes nothing) while a sell to close still goes through; the admin page shows it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata.options import chain
from orders.models import OptionOrder, OptionPosition, OptionQuote
from orders.options import exposure
from tests.accounts.helpers import assert_error
from tests.factories import StaffFactory
from tests.risk.helpers import limit_set
from trading.models import OutboxEvent

from ..conftest import client_for, pick_series, trader
from .test_option_admin_and_schema import staff_client

pytestmark = pytest.mark.django_db

EXPOSURE = "/api/v1/ops/risk/exposure"
QUOTES = "/api/v1/options/quotes"
ORDERS = "/api/v1/options/orders"
ROW_KEYS = {
    "underlying",
    "index_price",
    "index_stale",
    "net_delta",
    "net_gamma",
    "net_vega",
    "net_theta",
    "contracts_open",
    "hedge_underlying",
    "venue_balance",
    "ledger_venue_balance",
    "limits",
    "usage_percent",
}


@pytest.fixture(autouse=True)
def fresh_exposure():
    # the order path reuses the book for up to a second: not across tests' databases
    exposure.exposure_forget()
    yield
    exposure.exposure_forget()


@pytest.fixture
def staff_api(db):
    return client_for(StaffFactory())


def report(client, underlying="BTC") -> dict:
    response = client.get(EXPOSURE)
    assert response.status_code == 200, response.content[:500]
    [row] = [row for row in response.json()["underlyings"] if row["underlying"] == underlying]
    return row


def quote(client, series, side="buy", contracts="1") -> dict:
    response = client.post(QUOTES, {"series": series.symbol, "side": side, "contracts": contracts}, format="json")
    assert response.status_code == 201, response.content[:500]
    return response.json()


def buy(client, series, contracts="1") -> dict:
    response = client.post(ORDERS, {"quote_id": quote(client, series, "buy", contracts)["quote_id"]}, format="json")
    assert response.status_code == 201, response.content[:500]
    return response.json()


def chain_leg(series) -> dict:
    found = chain(underlying=series.base, expiry=series.expiry)
    for block in found["expiries"]:
        for row in block["rows"]:
            for key in ("call", "put"):
                if key in row and row[key]["series"] == series.symbol:
                    return row[key]
    raise AssertionError(series.symbol)


def test_orders_move_the_counters_net_delta_with_the_right_sign(listed, staff_api):
    call, put = pick_series("BTC", "C"), pick_series("BTC", "P")
    empty = report(staff_api)
    assert set(empty) == ROW_KEYS
    assert Decimal(empty["net_delta"]) == 0 and Decimal(empty["contracts_open"]) == 0
    assert empty["limits"] == {"delta_soft": "50", "delta_hard": "100", "vega_soft": "20000", "vega_hard": "40000"}

    alice = client_for(trader())
    buy(alice, call, "2")
    after_call = report(staff_api)
    call_delta = Decimal(chain_leg(call)["delta"])
    # short two calls: the counter's delta is minus theirs, priced as the chain prices them
    assert Decimal(after_call["net_delta"]) < 0
    assert Decimal(after_call["net_delta"]) == pytest.approx(-2 * call_delta, abs=Decimal("0.001"))
    assert Decimal(after_call["net_vega"]) < 0 and Decimal(after_call["net_gamma"]) < 0
    assert Decimal(after_call["net_theta"]) > 0
    assert Decimal(after_call["contracts_open"]) == 2
    assert Decimal(after_call["usage_percent"]) > 0

    buy(alice, put, "2")  # short puts: long delta, back towards zero
    after_put = report(staff_api)
    assert Decimal(after_put["net_delta"]) > Decimal(after_call["net_delta"])
    assert Decimal(after_put["net_vega"]) < Decimal(after_call["net_vega"])  # vega only adds up


def test_the_report_has_the_hedge_and_the_venue(listed, staff_api):
    body = staff_api.get(EXPOSURE).json()
    assert set(body) == {"time", "venue", "venue_error", "venue_usdt", "ledger_venue_usdt", "underlyings"}
    assert [row["underlying"] for row in body["underlyings"]] == ["BTC", "ETH"]
    row = body["underlyings"][0]
    assert row["hedge_underlying"] == "0"  # settlement registered its reader; nothing settled yet
    assert row["ledger_venue_balance"] == "0"
    # the simulated venue reports its balances (null with venue_error when a venue cannot)
    assert (body["venue_error"] is None) == (row["venue_balance"] is not None)


def test_a_buy_past_the_hard_limit_is_refused_and_writes_nothing(listed):
    series = pick_series("BTC", "C")
    alice = client_for(trader())
    leg = chain_leg(series)
    limit_set("counter_delta", Decimal(leg["delta"]) / 2, target="BTC")
    before = (OptionOrder.objects.count(), OptionPosition.objects.count(), OutboxEvent.objects.count())
    response = alice.post(
        ORDERS,
        {"series": series.symbol, "side": "buy", "contracts": "1", "limit_price_usdt": "100000"},
        format="json",
    )
    error = assert_error(response, 422, "risk_limit", field="contracts")
    assert error["fields"]["limit"] == ["counter_delta"]
    assert (OptionOrder.objects.count(), OptionPosition.objects.count(), OutboxEvent.objects.count()) == before
    # a quote nobody could fill is not given either
    refused = alice.post(QUOTES, {"series": series.symbol, "side": "buy", "contracts": "1"}, format="json")
    assert assert_error(refused, 422, "risk_limit")["fields"]["limit"] == ["counter_delta"]
    assert not OptionQuote.objects.filter(side="buy").exists()


def test_a_quote_past_the_hard_limit_at_fill_time_is_refused(listed):
    series = pick_series("BTC", "C")
    alice = client_for(trader())
    given = quote(alice, series, "buy", "1")  # before staff lowered the limit
    limit_set("counter_vega", "0.01", target="BTC")
    response = alice.post(ORDERS, {"quote_id": given["quote_id"]}, format="json")
    assert assert_error(response, 422, "risk_limit")["fields"]["limit"] == ["counter_vega"]
    assert not OptionOrder.objects.exists()


def test_a_sell_to_close_still_works_past_the_hard_limit(listed, staff_api):
    series = pick_series("BTC", "C")
    alice = client_for(trader())
    buy(alice, series, "1")
    limit_set("counter_delta", "0.01", target="BTC")  # the book is now far past it
    limit_set("counter_delta_soft", "0", target="BTC")
    assert (
        alice.post(QUOTES, {"series": series.symbol, "side": "buy", "contracts": "1"}, format="json").status_code == 422
    )

    leg = chain_leg(series)
    sell = quote(alice, series, "sell", "0.5")
    assert Decimal(sell["price_usdt"]) == Decimal(leg["bid_usdt"])  # never widened
    closed = alice.post(ORDERS, {"quote_id": sell["quote_id"]}, format="json")
    assert closed.status_code == 201, closed.content[:300]
    direct = alice.post(
        ORDERS, {"series": series.symbol, "side": "sell", "contracts": "0.5", "limit_price_usdt": "0.01"}, format="json"
    )
    assert direct.status_code == 201, direct.content[:300]
    assert Decimal(report(staff_api)["contracts_open"]) == 0


def test_the_quotes_ask_is_wider_past_the_soft_limit(listed):
    series = pick_series("BTC", "C")
    alice = client_for(trader())
    leg = chain_leg(series)
    plain = quote(alice, series, "buy", "1")
    assert Decimal(plain["price_usdt"]) == Decimal(leg["ask_usdt"])

    delta = Decimal(leg["delta"])
    # this buy takes |net delta| to `delta`: 80 % of the way from soft to hard
    limit_set("counter_delta_soft", delta * Decimal("0.2"), target="BTC")
    limit_set("counter_delta", delta * Decimal("1.2"), target="BTC")
    wide = quote(alice, series, "buy", "1")
    mark, ask = Decimal(leg["mark_usdt"]), Decimal(leg["ask_usdt"])
    assert Decimal(wide["price_usdt"]) > ask
    # the half-spread is about 1 + k * 0.8 = 1.8 times as wide (k = 1)
    ratio = (Decimal(wide["price_usdt"]) - mark) / (ask - mark)
    assert ratio == pytest.approx(Decimal("1.8"), abs=Decimal("0.05"))
    # the fill honours the quote's price
    filled = alice.post(ORDERS, {"quote_id": wide["quote_id"]}, format="json")
    assert filled.status_code == 201 and filled.json()["price_usdt"] == wide["price_usdt"]


def test_a_limit_order_fills_at_the_widened_ask(listed):
    series = pick_series("BTC", "C")
    alice = client_for(trader())
    leg = chain_leg(series)
    limit_set("counter_delta_soft", "0", target="BTC")
    limit_set("counter_delta", "1", target="BTC")
    ask = Decimal(leg["ask_usdt"])
    at_plain_ask = alice.post(
        ORDERS, {"series": series.symbol, "side": "buy", "contracts": "1", "limit_price_usdt": str(ask)}, format="json"
    )
    assert_error(at_plain_ask, 409, "price_limit_exceeded")
    room = alice.post(
        ORDERS,
        {"series": series.symbol, "side": "buy", "contracts": "1", "limit_price_usdt": str(ask * 2)},
        format="json",
    )
    assert room.status_code == 201, room.content[:300]
    assert Decimal(room.json()["price_usdt"]) > ask


def test_only_staff_see_it(listed):
    assert client_for(trader()).get(EXPOSURE).status_code == 403
    from rest_framework.test import APIClient

    assert APIClient().get(EXPOSURE).status_code in (401, 403)


def test_the_admin_page(listed, staff, password):
    client = staff_client(staff, password)
    page = client.get("/admin/orders/optionposition/exposure/")
    assert page.status_code == 200
    assert EXPOSURE.encode() in page.content and b"Counter exposure" in page.content
    assert b"/admin/orders/optionposition/exposure/" in client.get("/admin/orders/optionposition/").content
