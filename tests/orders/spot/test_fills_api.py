"""GET /api/v1/fills: paginated like /orders and /ledger, and the bare array older clients
read with ``array=1``."""

from decimal import Decimal as D

import pytest

from .conftest import client_for

pytestmark = pytest.mark.django_db


def trade(maker, taker, btc_engine, price: str, symbol="BTC-USDT"):
    for user, side in ((maker, "sell"), (taker, "buy")):
        response = client_for(user).post(
            "/api/v1/orders",
            {"symbol": symbol, "side": side, "type": "limit", "price": price, "quantity": "0.01"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        btc_engine.run()


def test_fills_are_paginated_newest_first_and_the_array_stays_available(alice, bob, btc_engine):
    for price in ("65000.00", "65010.00", "65020.00"):
        trade(alice, bob, btc_engine, price)
    client = client_for(bob)

    first = client.get("/api/v1/fills?limit=2").json()
    assert first["count"] == 3 and first["previous"] is None and "page=2" in first["next"]
    assert [D(f["price"]) for f in first["results"]] == [D("65020"), D("65010")]
    assert all(f["side"] == "buy" and f["liquidity"] == "taker" for f in first["results"])
    second = client.get(first["next"]).json()
    assert [D(f["price"]) for f in second["results"]] == [D("65000")] and second["next"] is None

    # the maker sees the same trades from its side
    maker = client_for(alice).get("/api/v1/fills").json()
    assert maker["count"] == 3 and {f["side"] for f in maker["results"]} == {"sell"}
    assert {f["liquidity"] for f in maker["results"]} == {"maker"}

    array = client.get("/api/v1/fills?array=1&limit=2").json()
    assert array == first["results"]
    assert client.get("/api/v1/fills?symbol=ETH-USDT").json()["count"] == 0
    assert sum(D(f["quantity"]) for f in client.get("/api/v1/fills").json()["results"]) == D("0.03")


def test_a_page_past_the_end_is_a_clear_404(alice, bob, btc_engine):
    trade(alice, bob, btc_engine, "65000.00")
    response = client_for(bob).get("/api/v1/fills?page=9")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
