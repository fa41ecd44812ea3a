"""Self-trade prevention modes per order (``stp``): through the API and the engine runner, one
trader's crossing order meeting their own resting order under each mode: statuses, fills,
reasons and the holds released in the ledger; a rebuilt runner keeps each order's mode."""

from decimal import Decimal

import pytest

from orders.models import SpotOrder, SpotStatus, SpotTrade
from orders.spot.services import order_request
from trading.errors import ValidationFailed

from .conftest import available, client_for, funded_trader, held

D = Decimal
pytestmark = pytest.mark.django_db


def post(client, **data):
    data.setdefault("symbol", "BTC-USDT")
    response = client.post("/api/v1/orders", data, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def refresh(body) -> SpotOrder:
    return SpotOrder.objects.get(pk=body["id"])


@pytest.fixture
def crossed(alice, bob, btc_engine):
    """Bob asks 0.1 at 64990, alice 0.2 at 65000; then alice bids 0.3 at 65000 with the mode
    given: she buys bob's 0.1 first, then meets her own ask."""

    def cross(**stp):
        alice_client = client_for(alice)
        post(client_for(bob), side="sell", type="limit", price="64990.00", quantity="0.1")
        ask = post(alice_client, side="sell", type="limit", price="65000.00", quantity="0.2")
        btc_engine.run()
        bid = post(alice_client, side="buy", type="limit", price="65000.00", quantity="0.3", **stp)
        assert held(alice, "USDT") == D("19500")
        btc_engine.run()
        trade = SpotTrade.objects.get()
        assert (trade.taker_order_id, trade.price, trade.quantity) == (bid["id"], D("64990.00"), D("0.1"))
        return refresh(ask), refresh(bid)

    return cross


def test_the_default_is_expire_maker_the_resting_order_is_cancelled(alice, crossed):
    ask, bid = crossed()
    assert bid.stp == ask.stp == "expire_maker"
    assert ask.status == SpotStatus.CANCELLED and ask.cancel_reason == "self_trade" and ask.filled_quantity == 0
    assert bid.status == SpotStatus.PARTIALLY_FILLED and bid.filled_quantity == D("0.1")
    # the bid's rest holds what is left of its hold; the ask's BTC is free again
    assert held(alice, "USDT") == D("19500") - D("6499") and available(alice, "USDT") == D("100000") - D("19500")
    assert held(alice, "BTC") == 0 and available(alice, "BTC") == D("10") + D("0.1") - D("0.0002")


def test_explicit_expire_maker_is_the_same(alice, crossed):
    ask, bid = crossed(stp="expire_maker")
    assert (ask.status, ask.cancel_reason, bid.status, bid.stp) == (
        SpotStatus.CANCELLED,
        "self_trade",
        SpotStatus.PARTIALLY_FILLED,
        "expire_maker",
    )


def test_expire_taker_cancels_the_incoming_orders_rest_and_keeps_the_resting_one(alice, crossed, btc_engine):
    ask, bid = crossed(stp="expire_taker")
    assert bid.stp == "expire_taker"
    assert bid.status == SpotStatus.CANCELLED and bid.cancel_reason == "self_trade"
    assert bid.filled_quantity == D("0.1") and bid.hold_amount == 0  # its fill stands
    assert ask.status == SpotStatus.OPEN and ask.cancel_reason == "" and ask.hold_amount == D("0.2")
    assert held(alice, "USDT") == 0 and available(alice, "USDT") == D("100000") - D("6499")
    assert held(alice, "BTC") == D("0.2") and available(alice, "BTC") == D("9.8") + D("0.0998")
    assert ask.pk in btc_engine.runner.book and bid.pk not in btc_engine.runner.book


def test_expire_both_cancels_both(alice, crossed, btc_engine):
    ask, bid = crossed(stp="expire_both")
    assert bid.status == SpotStatus.CANCELLED and bid.cancel_reason == "self_trade"
    assert bid.filled_quantity == D("0.1")
    assert ask.status == SpotStatus.CANCELLED and ask.cancel_reason == "self_trade" and ask.filled_quantity == 0
    assert held(alice, "USDT") == 0 and available(alice, "USDT") == D("100000") - D("6499")
    assert held(alice, "BTC") == 0 and available(alice, "BTC") == D("10.0998")
    assert len(btc_engine.runner.book) == 0


def test_a_market_order_expired_at_once_trades_nothing_and_releases_its_hold(alice, btc_engine):
    client = client_for(alice)
    ask = post(client, side="sell", type="limit", price="65000.00", quantity="0.2")
    btc_engine.run()
    market = post(client, side="buy", type="market", quantity="0.1", stp="expire_taker")
    assert held(alice, "USDT") > 0
    btc_engine.run()
    market = refresh(market)
    assert market.status == SpotStatus.CANCELLED and market.cancel_reason == "self_trade"
    assert market.filled_quantity == 0 and not SpotTrade.objects.exists()
    assert held(alice, "USDT") == 0 and available(alice, "USDT") == D("100000")
    assert refresh(ask).status == SpotStatus.OPEN and held(alice, "BTC") == D("0.2")


def test_responses_carry_stp(alice, btc_engine):
    client = client_for(alice)
    body = post(client, side="buy", type="limit", price="64000.00", quantity="0.1")
    assert body["stp"] == "expire_maker"
    body = post(client, side="buy", type="limit", price="64000.00", quantity="0.1", stp="expire_both")
    assert body["stp"] == "expire_both"
    assert client.get(f"/api/v1/orders/{body['id']}").json()["stp"] == "expire_both"
    assert {order["stp"] for order in client.get("/api/v1/orders").json()["results"]} == {
        "expire_maker",
        "expire_both",
    }


@pytest.mark.parametrize("value", ["cancel_newest", "", "EXPIRE_TAKER", 1])
def test_an_unknown_mode_is_a_400_naming_stp(alice, value):
    response = client_for(alice).post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "64000", "quantity": "0.1", "stp": value},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["fields"]) == ["stp"]
    assert not SpotOrder.objects.exists() and held(alice, "USDT") == 0


def test_order_request_names_stp(markets):
    with pytest.raises(ValidationFailed) as caught:
        order_request(symbol="BTC-USDT", side="buy", type="limit", price="64000", quantity="0.1", stp="newest")
    assert list(caught.value.fields) == ["stp"] and "expire_maker, expire_taker, expire_both" in str(caught.value)
    assert order_request(symbol="BTC-USDT", side="buy", type="limit", price="64000", quantity="0.1").stp == (
        "expire_maker"
    )


def test_a_smart_order_takes_only_the_default(alice):
    response = client_for(alice).post(
        "/api/v1/orders",
        {
            "symbol": "BTC-USDT",
            "side": "buy",
            "type": "market",
            "quantity": "0.1",
            "route": "smart",
            "stp": "expire_both",
        },
        format="json",
    )
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["stp"]


def test_the_mode_is_part_of_the_client_order_id_fingerprint(alice):
    client = client_for(alice)
    data = {"side": "buy", "type": "limit", "price": "64000.00", "quantity": "0.1", "client_order_id": "stp-1"}
    post(client, **data)
    replay = client.post("/api/v1/orders", {"symbol": "BTC-USDT", **data, "stp": "expire_maker"}, format="json")
    assert replay.status_code == 200  # the default, said or not, is the same order
    other = client.post("/api/v1/orders", {"symbol": "BTC-USDT", **data, "stp": "expire_taker"}, format="json")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"


def test_a_rebuilt_runner_keeps_each_orders_mode(alice, bob, btc_engine):
    client = client_for(alice)
    ask = post(client, side="sell", type="limit", price="65100.00", quantity="0.1")
    stop = post(
        client,
        side="buy",
        type="stop_limit",
        stop_price="65000.00",
        price="65100.00",
        quantity="0.1",
        stp="expire_taker",
    )
    btc_engine.run()
    btc_engine.restart()
    assert btc_engine.runner.book.order(stop["id"]).stp == "expire_taker"
    # a trade between two others at 65000 triggers alice's stop, which meets her own ask
    post(client_for(bob), side="sell", type="limit", price="65000.00", quantity="0.01")
    post(client_for(funded_trader()), side="buy", type="limit", price="65000.00", quantity="0.01")
    btc_engine.run()
    stop = refresh(stop)
    assert stop.status == SpotStatus.CANCELLED and stop.cancel_reason == "self_trade" and stop.filled_quantity == 0
    assert refresh(ask).status == SpotStatus.OPEN
    assert held(alice, "USDT") == 0 and available(alice, "USDT") == D("100000")
    assert held(alice, "BTC") == D("0.1")
