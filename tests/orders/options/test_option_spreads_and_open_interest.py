"""The counter's spread through the API (a round trip near the money costs a few percent; a
1-day in-the-money call's bid is at least intrinsic value less the fee) and the chain's open
interest (the open positions' contracts per series, from one grouped query)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketdata.models import Instrument, InstrumentKind
from orders.models import OptionQuote
from orders.options.selectors import open_interest
from orders.options.services import options_order_place

from ..conftest import INDEX, client_for, pick_series, trader

pytestmark = pytest.mark.django_db

CHAIN = "/api/v1/options/chain"
QUOTES = "/api/v1/options/quotes"
ORDERS = "/api/v1/options/orders"


def trade(client, series: str, side: str, contracts: str) -> dict:
    """Quote and fill at once, as the ticket does: the order's body."""
    quote = client.post(QUOTES, {"series": series, "side": side, "contracts": contracts}, format="json")
    assert quote.status_code == 201, quote.content[:400]
    order = client.post(ORDERS, {"quote_id": quote.json()["quote_id"]}, format="json")
    assert order.status_code == 201, order.content[:400]
    return order.json()


def chain_leg(client, series: Instrument) -> dict:
    response = client.get(CHAIN, {"underlying": series.base, "expiry": series.expiry.isoformat()})
    assert response.status_code == 200, response.content[:400]
    [block] = response.json()["expiries"]
    [row] = [row for row in block["rows"] if Decimal(row["strike"]) == series.strike]
    return row["call" if series.option_type == "C" else "put"]


def round_trip_cost(client, series: Instrument, contracts: str = "1") -> Decimal:
    """Buy, then sell straight back: the loss as a share of what the buy paid."""
    paid = Decimal(trade(client, series.symbol, "buy", contracts)["total_usdt"])
    received = Decimal(trade(client, series.symbol, "sell", contracts)["total_usdt"])
    return (paid - received) / paid


def nearest_daily_call(*, below_index_by: Decimal = Decimal(0)) -> Instrument:
    """The call of the nearest expiry at least two hours out (about a day or less) whose
    strike is nearest ``index * (1 - below_index_by)``."""
    now = timezone.now()
    live = Instrument.objects.filter(
        kind=InstrumentKind.OPTION, base="BTC", option_type="C", active=True, expiry__gt=now + timedelta(hours=2)
    )
    expiry = live.order_by("expiry").values_list("expiry", flat=True).first()
    assert expiry - now <= timedelta(days=1, hours=2)
    target = INDEX["BTC"] * (1 - below_index_by)
    return min(live.filter(expiry=expiry), key=lambda i: abs(i.strike - target))


# --- the spread -----------------------------------------------------------------------------------


def test_an_at_the_money_round_trip_costs_a_few_percent(listed):
    """It cost 12 % of the mark (11.3 % of the price paid) with a day to go under the flat spread."""
    client = client_for(trader())
    daily = nearest_daily_call()
    monthly = pick_series("BTC", "C", min_days=25)
    daily_cost, monthly_cost = round_trip_cost(client, daily), round_trip_cost(client, monthly)
    assert Decimal(0) < daily_cost < Decimal("0.06"), (daily.symbol, daily_cost)
    assert Decimal(0) < monthly_cost < Decimal("0.035"), (monthly.symbol, monthly_cost)
    assert monthly_cost < daily_cost  # wider in the last days


def test_a_one_day_in_the_money_calls_bid_is_at_least_intrinsic_less_the_fee(listed, settings):
    client = client_for(trader())
    series = nearest_daily_call(below_index_by=Decimal("0.05"))
    intrinsic = INDEX["BTC"] - series.strike
    assert intrinsic > INDEX["BTC"] * Decimal("0.03"), series.symbol
    fee = INDEX["BTC"] * Decimal(repr(settings.OPTION_BID_INTRINSIC_FEE_BPS)) / 10_000
    leg = chain_leg(client, series)
    assert Decimal(leg["bid_usdt"]) >= intrinsic - fee, (leg, intrinsic)
    bought = trade(client, series.symbol, "buy", "1")
    sold = trade(client, series.symbol, "sell", "1")
    assert Decimal(sold["price_usdt"]) >= intrinsic - fee, (sold, intrinsic)
    # each quote keeps its own side's distance from the mark as a share of it
    for body in (bought, sold):
        quote = OptionQuote.objects.get(order__id=body["id"])
        distance = abs(quote.price_usdt - quote.mark_usdt) / quote.mark_usdt
        assert abs(quote.spread - distance) <= Decimal("0.00000001"), (quote.side, quote.spread, distance)
    # in the money the premium is mostly intrinsic value: the round trip costs well under 1 %
    assert Decimal(bought["total_usdt"]) - Decimal(sold["total_usdt"]) < Decimal(bought["total_usdt"]) / 100


# --- open interest -----------------------------------------------------------------------------------


def buy(user, series, contracts):
    options_order_place(user=user, series=series.symbol, side="buy", contracts=contracts, limit_price_usdt="999999")


def sell(user, series, contracts):
    options_order_place(user=user, series=series.symbol, side="sell", contracts=contracts, limit_price_usdt="0.01")


def test_the_chain_shows_open_interest_per_series(listed, api):
    call, put, other = pick_series("BTC", "C"), pick_series("BTC", "P", offset=-1), pick_series("BTC", "C", offset=2)
    eth = pick_series("ETH", "C")
    first, second, third = trader(), trader(), trader()
    buy(first, call, "1")
    buy(second, call, "2.5")
    sell(second, call, "0.5")
    buy(first, put, "0.3")
    buy(third, other, "1")
    sell(third, other, "1")  # closed: no longer open interest
    buy(third, eth, "4")
    legs = {series.symbol: chain_leg(api, series) for series in (call, put, other, eth)}
    assert legs[call.symbol]["open_interest"] == "3.00"
    assert legs[put.symbol]["open_interest"] == "0.30"
    assert legs[other.symbol]["open_interest"] == "0.00"
    assert legs[eth.symbol]["open_interest"] == "4.00"
    # the whole chain (every expiry) agrees, and nobody's holding is named in it
    body = api.get(CHAIN, {"underlying": "BTC"}).json()
    held = {
        leg["series"]: leg["open_interest"]
        for block in body["expiries"]
        for row in block["rows"]
        for leg in (row["call"], row["put"])
        if leg["open_interest"] != "0.00"
    }
    assert held == {call.symbol: "3.00", put.symbol: "0.30"}


def test_open_interest_is_one_grouped_query(listed):
    series = [pick_series("BTC", "C", offset=n) for n in range(-2, 3)]
    for n, instrument in enumerate(series):
        for _ in range(3):
            buy(trader(), instrument, f"{n + 1}")
    with CaptureQueriesContext(connection) as queries:
        everything = open_interest(underlying="BTC")
        one_expiry = open_interest(underlying="BTC", expiry=series[0].expiry)
    assert len(queries) == 2, [q["sql"] for q in queries]
    assert "GROUP BY" in queries[0]["sql"].upper()
    expected = {instrument.symbol: Decimal(3 * (n + 1)) for n, instrument in enumerate(series)}
    assert everything == expected == one_expiry
    assert open_interest(underlying="ETH") == {}
