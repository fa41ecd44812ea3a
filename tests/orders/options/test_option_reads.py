"""GET /api/v1/options/positions, /options/orders and /options/exercises: the trader's own
objects only, positions valued at the chain's live mark, orders newest first and paginated."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.pagination import PageNumberPagination

from marketdata.options import chain
from orders.models import OptionOrder, SettlementState
from orders.options.services import options_order_place
from tests.accounts.helpers import assert_error

from ..conftest import INDEX, client_for, pick_series, print_index, trader

pytestmark = pytest.mark.django_db

POSITIONS = "/api/v1/options/positions"
ORDERS = "/api/v1/options/orders"
EXERCISES = "/api/v1/options/exercises"


def buy(user, series, contracts="1"):
    return options_order_place(
        user=user, series=series.symbol, side="buy", contracts=contracts, limit_price_usdt="999999"
    )[0]


def sell(user, series, contracts="1"):
    return options_order_place(
        user=user, series=series.symbol, side="sell", contracts=contracts, limit_price_usdt="0.01"
    )[0]


def chain_mark(series) -> Decimal:
    body = chain(underlying=series.base, expiry=series.expiry, now=timezone.now())
    [row] = [row for row in body["expiries"][0]["rows"] if Decimal(row["strike"]) == series.strike]
    return Decimal(row["call" if series.option_type == "C" else "put"]["mark_usdt"])


def test_positions_carry_the_live_mark_value_and_pnl(listed):
    user = trader()
    call, put = pick_series("BTC", "C"), pick_series("ETH", "P", offset=-1)
    paid = buy(user, call, "2").total_usdt
    buy(user, put, "3")
    body = client_for(user).get(POSITIONS).json()
    assert sorted(p["series"] for p in body) == sorted([call.symbol, put.symbol])
    row = next(p for p in body if p["series"] == call.symbol)
    assert (row["status"], row["contracts"], row["option_type"], row["underlying"]) == ("open", "2.00", "call", "BTC")
    assert Decimal(row["strike"]) == call.strike and row["expiry"].endswith("Z")
    assert Decimal(row["cost_usdt"]) == paid and Decimal(row["average_price_usdt"]) == paid / 2
    mark = Decimal(row["mark_price_usdt"])
    assert abs(mark - chain_mark(call)) <= Decimal("0.01")
    assert Decimal(row["mark_value_usdt"]) == mark * 2
    assert Decimal(row["unrealized_pnl_usdt"]) == mark * 2 - paid < 0  # bought at the ask, valued at the mark
    assert Decimal(row["close_price_usdt"]) < mark
    assert Decimal(row["index_price"]) == INDEX["BTC"] and row["realized_pnl_usdt"] == "0.000000"

    # the index rises: the call is worth more
    print_index("BTC", INDEX["BTC"] * Decimal("1.05"))
    richer = next(p for p in client_for(user).get(POSITIONS).json() if p["series"] == call.symbol)
    assert Decimal(richer["mark_value_usdt"]) > Decimal(row["mark_value_usdt"])
    assert Decimal(richer["unrealized_pnl_usdt"]) > 0


def test_a_stale_index_leaves_positions_visible_without_a_mark(listed):
    user = trader()
    call, eth = pick_series("BTC", "C"), pick_series("ETH", "C")
    buy(user, call)
    buy(user, eth)
    print_index("BTC", None, stale=True)
    body = client_for(user).get(POSITIONS).json()
    btc = next(p for p in body if p["underlying"] == "BTC")
    assert btc["mark_value_usdt"] is None and btc["unrealized_pnl_usdt"] is None and btc["contracts"] == "1.00"
    assert next(p for p in body if p["underlying"] == "ETH")["mark_value_usdt"] is not None


def test_closed_positions_and_the_status_filter(listed):
    user = trader()
    call, put = pick_series("BTC", "C"), pick_series("BTC", "P")
    buy(user, call)
    buy(user, put)
    closing = sell(user, put)
    client = client_for(user)
    assert [p["series"] for p in client.get(POSITIONS).json()] == [call.symbol]
    [closed] = client.get(POSITIONS, {"status": "closed"}).json()
    assert closed["series"] == put.symbol and closed["status"] == "closed" and closed["mark_value_usdt"] is None
    assert Decimal(closed["realized_pnl_usdt"]) == closing.realized_pnl_usdt < 0
    assert len(client.get(POSITIONS, {"status": "all"}).json()) == 2
    assert_error(client.get(POSITIONS, {"status": "bogus"}), 400, "validation_error", field="status")


def test_orders_are_listed_newest_first_and_paginated_like_the_ledger(listed, monkeypatch):
    user = trader()
    series = pick_series("BTC", "C")
    placed = [buy(user, series, "0.1") for _ in range(3)] + [sell(user, series, "0.2")]
    client = client_for(user)
    body = client.get(ORDERS).json()
    assert set(body) == {"count", "next", "previous", "results"}  # the ledger's page shape
    assert body["count"] == 4 and body["next"] is None
    assert [o["id"] for o in body["results"]] == [o.pk for o in reversed(placed)]
    newest = body["results"][0]
    assert (newest["side"], newest["kind"], newest["contracts"], newest["settlement_state"]) == (
        "sell",
        "close",
        "0.20",
        "pending",
    )
    assert newest["realized_pnl_usdt"] is not None and body["results"][1]["realized_pnl_usdt"] is None
    # the back office's progress shows through
    OptionOrder.objects.filter(pk=placed[0].pk).update(settlement_state=SettlementState.SETTLED)
    assert client.get(ORDERS).json()["results"][-1]["settlement_state"] == "settled"
    # pages of the configured size, ?page=N
    monkeypatch.setattr(PageNumberPagination, "page_size", 3)
    first = client.get(ORDERS).json()
    assert len(first["results"]) == 3 and first["next"] and first["count"] == 4
    second = client.get(ORDERS, {"page": 2}).json()
    assert [o["id"] for o in second["results"]] == [placed[0].pk] and second["previous"]


def test_another_traders_options_are_invisible(listed):
    owner, intruder = trader(), trader()
    series = pick_series("BTC", "C")
    buy(owner, series, "2")
    sell(owner, series, "1")
    intruder_api = client_for(intruder)
    assert intruder_api.get(POSITIONS).json() == []
    assert intruder_api.get(POSITIONS, {"status": "all"}).json() == []
    assert intruder_api.get(ORDERS).json()["count"] == 0
    assert intruder_api.get(EXERCISES).json()["count"] == 0
    # the intruder cannot sell the owner's position either
    assert_error(
        intruder_api.post(
            ORDERS,
            {"series": series.symbol, "side": "sell", "contracts": "1", "limit_price_usdt": "0.01"},
            format="json",
        ),
        409,
        "insufficient_position",
    )
    owner_api = client_for(owner)
    assert len(owner_api.get(POSITIONS).json()) == 1 and owner_api.get(ORDERS).json()["count"] == 2


def test_reads_need_authentication(api):
    for url in (POSITIONS, ORDERS, EXERCISES):
        response = api.get(url)
        assert response.status_code in (401, 403) and response.json()["error"]["code"] == "not_authenticated"
