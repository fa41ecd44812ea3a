"""Cancel-all: one request cancels every open order of the trader (on one market or on all),
through the engine's cancel path as ``DELETE /orders/{id}`` does: holds released, a part
already matched stays filled, other traders' orders untouched."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from orders.models import SpotOrder, SpotStatus
from orders.spot.runner import engine_singleton

from .conftest import Engine, client_for, funded_trader, held

D = Decimal
pytestmark = pytest.mark.django_db


def place(user, side="buy", price="60000.00", quantity="0.01", symbol="BTC-USDT"):
    response = client_for(user).post(
        "/api/v1/orders",
        {"symbol": symbol, "side": side, "type": "limit", "price": price, "quantity": quantity},
        format="json",
    )
    assert response.status_code == 201, response.content[:300]
    return response.json()["id"]


def statuses(ids):
    return [SpotOrder.objects.get(pk=pk).status for pk in ids]


def test_post_cancel_all_on_one_market_cancels_every_open_order_there_and_releases_the_holds(alice, bob, btc_engine):
    eth_engine = Engine("ETH-USDT")
    alice_eth = funded_trader(eth="5")
    mine = [place(alice, price="60000.00"), place(alice, price="61000.00"), place(alice, side="sell", price="70000.00")]
    theirs = place(bob, price="60500.00")
    eth = place(alice_eth, side="sell", price="3500.00", quantity="1", symbol="ETH-USDT")
    btc_engine.run()
    eth_engine.run()
    assert held(alice, "USDT") > 0 and held(alice, "BTC") > 0

    response = client_for(alice).post("/api/v1/orders/cancel-all", {"symbol": "btc-usdt"}, format="json")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    # no runner thread here: the requests are committed and the orders wait for the engine
    assert (body["symbol"], body["requested"], body["cancelled"]) == ("BTC-USDT", 3, 0)
    assert [o["id"] for o in body["orders"]] == mine
    btc_engine.run()
    assert statuses(mine) == [SpotStatus.CANCELLED] * 3
    assert held(alice, "USDT") == 0 and held(alice, "BTC") == 0
    assert statuses([theirs]) == [SpotStatus.OPEN]
    assert statuses([eth]) == [SpotStatus.OPEN]  # another trader's, on another market

    again = client_for(alice).post("/api/v1/orders/cancel-all", {"symbol": "BTC-USDT"}, format="json").json()
    assert (again["requested"], again["orders"]) == (0, [])


def test_delete_orders_without_a_symbol_cancels_on_every_market_and_keeps_what_filled(markets):
    btc_engine, eth_engine = Engine("BTC-USDT"), Engine("ETH-USDT")
    trader = funded_trader(eth="2")
    counterparty = funded_trader(btc="1")
    partly = place(trader, price="65000.00", quantity="0.02")
    resting = place(trader, side="sell", price="3500.00", quantity="1", symbol="ETH-USDT")
    btc_engine.run()
    eth_engine.run()
    place(counterparty, side="sell", price="65000.00", quantity="0.005")
    btc_engine.run()
    assert statuses([partly]) == [SpotStatus.PARTIALLY_FILLED]

    response = client_for(trader).delete("/api/v1/orders")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["requested"] == 2 and response.json()["symbol"] is None
    btc_engine.run()
    eth_engine.run()
    order = SpotOrder.objects.get(pk=partly)
    assert order.status == SpotStatus.CANCELLED and order.filled_quantity == D("0.005")
    assert statuses([resting]) == [SpotStatus.CANCELLED]
    assert held(trader, "USDT") == 0 and held(trader, "ETH") == 0
    listed = client_for(trader).get("/api/v1/orders?status=open").json()
    assert listed["count"] == 0


@pytest.mark.django_db(transaction=True)
def test_with_the_runner_running_the_answer_shows_the_orders_cancelled(markets):
    trader = funded_trader()
    ids = [place(trader, price=f"6{k}000.00") for k in range(3)]
    singleton = engine_singleton("BTC-USDT", ttl=2.0, announce=lambda line: None)

    def run():
        try:
            singleton.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while SpotOrder.objects.filter(pk__in=ids, status=SpotStatus.NEW).exists():
            assert time.monotonic() < deadline, "the runner did not take the orders"
            time.sleep(0.05)
        response = client_for(trader).delete("/api/v1/orders?symbol=BTC-USDT")
        assert response.status_code == 200
        body = response.json()
        assert (body["requested"], body["cancelled"]) == (3, 3)
        assert [o["status"] for o in body["orders"]] == ["cancelled"] * 3
        assert statuses(ids) == [SpotStatus.CANCELLED] * 3
        assert held(trader, "USDT") == 0
    finally:
        singleton.stop()
        thread.join(10)


@pytest.mark.parametrize(
    "call, status, code",
    [
        (lambda c: c.post("/api/v1/orders/cancel-all", {"symbol": "DOGE-USDT"}, format="json"), 404, "not_found"),
        (lambda c: c.delete("/api/v1/orders?symbol=NOPE"), 404, "not_found"),
        (lambda c: c.post("/api/v1/orders/cancel-all", {"symbol": ""}, format="json"), 400, "validation_error"),
        (lambda c: c.post("/api/v1/orders/cancel-all", [1, 2], format="json"), 400, "validation_error"),
    ],
)
def test_bad_requests_are_clear_4xx_and_cancel_nothing(alice, btc_engine, call, status, code):
    order = place(alice)
    btc_engine.run()
    response = call(client_for(alice))
    assert response.status_code == status, response.content[:300]
    assert response.json()["error"]["code"] == code
    assert SpotOrder.objects.get(pk=order).cancel_requested_at is None


def test_anonymous_is_refused(markets, api):
    assert api.post("/api/v1/orders/cancel-all", {}, format="json").status_code == 401
    assert api.delete("/api/v1/orders").status_code == 401
