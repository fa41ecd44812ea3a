"""Order entry through the API: every type validated field by field, clear 4xx errors in
the API.md format (never a 500, never a partial write), holds, idempotency, risk limits and
cancels."""

from decimal import Decimal

import pytest

from ledger.models import Transfer
from orders.models import SpotOrder, SpotStatus
from tests.orders.conftest import print_index
from tests.risk.helpers import limit_set

from .conftest import available, client_for, funded_trader, held

D = Decimal
pytestmark = pytest.mark.django_db


def post(client, **data):
    data.setdefault("symbol", "BTC-USDT")
    return client.post("/api/v1/orders", data, format="json")


def error(response) -> tuple[int, str, dict]:
    body = response.json()["error"]
    return response.status_code, body["code"], body.get("fields") or {}


@pytest.mark.parametrize(
    "data, status, code, field",
    [
        ({"side": "hold", "type": "limit", "price": "65000", "quantity": "0.1"}, 400, "validation_error", "side"),
        ({"side": "buy", "type": "iceberg", "price": "65000", "quantity": "0.1"}, 400, "validation_error", "type"),
        ({"side": "buy", "type": "limit", "quantity": "0.1"}, 400, "validation_error", "price"),
        ({"side": "buy", "type": "limit", "price": "65000.001", "quantity": "0.1"}, 400, "validation_error", "price"),
        (
            {"side": "buy", "type": "limit", "price": "65000", "quantity": "0.000001"},
            400,
            "validation_error",
            "quantity",
        ),
        ({"side": "buy", "type": "limit", "price": 65000.5, "quantity": "0.1"}, 400, "validation_error", "price"),
        ({"side": "buy", "type": "limit", "price": "-1", "quantity": "0.1"}, 400, "validation_error", "price"),
        ({"side": "buy", "type": "limit", "price": "NaN", "quantity": "0.1"}, 400, "validation_error", "price"),
        ({"side": "buy", "type": "limit", "price": "65000", "quantity": "0.0001"}, 400, "min_notional", "quantity"),
        ({"side": "buy", "type": "limit", "price": "65000", "quantity": "100"}, 400, "max_order_size", "quantity"),
        ({"side": "buy", "type": "limit", "price": "90000", "quantity": "0.1"}, 400, "price_out_of_band", "price"),
        (
            {"side": "buy", "type": "limit", "price": "65000", "quantity": "0.1", "time_in_force": "DAY"},
            400,
            "validation_error",
            "time_in_force",
        ),
        (
            {
                "side": "buy",
                "type": "limit",
                "price": "65000",
                "quantity": "0.1",
                "time_in_force": "IOC",
                "post_only": True,
            },
            400,
            "validation_error",
            "post_only",
        ),
        (
            {"side": "buy", "type": "limit", "price": "65000", "quantity": "0.1", "display_quantity": "0.2"},
            400,
            "validation_error",
            "display_quantity",
        ),
        ({"side": "buy", "type": "market", "quantity": "0.1", "price": "65000"}, 400, "validation_error", "price"),
        ({"side": "buy", "type": "market"}, 400, "validation_error", "quantity"),
        ({"side": "sell", "type": "market", "quote_quantity": "100"}, 400, "validation_error", "quote_quantity"),
        ({"side": "buy", "type": "stop_market", "quantity": "0.1"}, 400, "validation_error", "stop_price"),
        (
            {"side": "buy", "type": "stop_limit", "quantity": "0.1", "stop_price": "66000"},
            400,
            "validation_error",
            "price",
        ),
        ({"side": "sell", "type": "trailing_stop", "quantity": "0.1"}, 400, "validation_error", "trail_amount"),
        (
            {"side": "sell", "type": "trailing_stop", "quantity": "0.1", "trail_amount": "10", "trail_percent": "1"},
            400,
            "validation_error",
            "trail_amount",
        ),
        (
            {"side": "sell", "type": "trailing_stop", "quantity": "0.1", "trail_percent": "150"},
            400,
            "validation_error",
            "trail_percent",
        ),
        (
            {"side": "buy", "type": "limit", "price": "65000", "quantity": "0.1", "client_order_id": "bad id!"},
            400,
            "validation_error",
            "client_order_id",
        ),
        (
            {"side": "buy", "type": "limit", "price": "65000", "quantity": "0.1", "route": "smart"},
            400,
            "validation_error",
            "route",
        ),
    ],
)
def test_bad_orders_get_a_clear_400_and_write_nothing(alice, data, status, code, field):
    transfers = Transfer.objects.count()
    response = post(client_for(alice), **data)
    assert error(response)[:2] == (status, code), response.json()
    assert field in error(response)[2]
    assert SpotOrder.objects.count() == 0 and Transfer.objects.count() == transfers


def test_unknown_symbol_is_404_and_a_non_object_body_is_400(alice):
    assert error(post(client_for(alice), symbol="DOGE-USDT", side="buy", type="limit", price="1", quantity="1"))[
        :2
    ] == (404, "not_found")
    response = client_for(alice).post("/api/v1/orders", ["not", "an", "object"], format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_a_limit_buy_holds_price_times_quantity_and_returns_the_new_order(alice):
    response = post(
        client_for(alice), side="buy", type="limit", price="64000.00", quantity="0.5", client_order_id="a-1"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "new" and body["price"] == "64000" and body["quantity"] == "0.5"
    assert body["held"] == {"asset": "USDT", "amount": "32000"}
    assert held(alice, "USDT") == D("32000") and available(alice, "USDT") == D("68000")


def test_a_replayed_client_order_id_returns_the_original_and_holds_once(alice):
    client = client_for(alice)
    first = post(client, side="sell", type="limit", price="66000.00", quantity="0.2", client_order_id="same")
    again = post(client, side="sell", type="limit", price="66000.00", quantity="0.2", client_order_id="same")
    assert first.status_code == 201 and again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert held(alice, "BTC") == D("0.2")
    other = post(client, side="sell", type="limit", price="66100.00", quantity="0.2", client_order_id="same")
    assert error(other)[:2] == (409, "idempotency_conflict")


def test_an_order_beyond_the_balance_is_refused_whole(markets):
    poor = funded_trader(usdt="100", btc="0")
    response = post(client_for(poor), side="buy", type="limit", price="65000.00", quantity="0.01")
    assert error(response)[:2] == (409, "insufficient_funds")
    assert SpotOrder.objects.count() == 0 and held(poor, "USDT") == 0


def test_market_buys_hold_at_the_protection_price_and_need_a_live_index(alice):
    response = post(client_for(alice), side="buy", type="market", quantity="0.1")
    assert response.status_code == 201
    # index 65000.12 + 5% band, rounded up to the tick: 68250.13 x 0.1
    assert response.json()["held"] == {"asset": "USDT", "amount": "6825.013"}
    print_index("BTC", D("65000"), ago=3600)  # the newest print is now an old one... and then stale:
    print_index("BTC", None, stale=True)
    stale = post(client_for(alice), side="buy", type="market", quantity="0.1")
    assert error(stale)[:2] == (503, "index_stale")


def test_open_order_limit(alice):
    limit_set("max_open_orders", 2)
    client = client_for(alice)
    for _ in range(2):
        assert post(client, side="buy", type="limit", price="60000.00", quantity="0.01").status_code == 201
    assert error(post(client, side="buy", type="limit", price="60000.00", quantity="0.01"))[:2] == (
        409,
        "max_open_orders",
    )


def test_reads_and_cancel_are_the_owners_only(alice, bob):
    order_id = post(client_for(alice), side="buy", type="limit", price="60000.00", quantity="0.01").json()["id"]
    assert client_for(bob).get(f"/api/v1/orders/{order_id}").status_code == 404
    assert client_for(bob).delete(f"/api/v1/orders/{order_id}").status_code == 404
    assert client_for(bob).get("/api/v1/orders").json()["results"] == []
    mine = client_for(alice).get(f"/api/v1/orders/{order_id}").json()
    assert mine["id"] == order_id and mine["fills"] == []
    assert [o["id"] for o in client_for(alice).get("/api/v1/orders?status=open").json()["results"]] == [order_id]
    assert error(client_for(alice).get("/api/v1/orders?status=sideways"))[:2] == (400, "validation_error")
    assert client_for(alice).get("/api/v1/fills").json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert client_for(alice).get("/api/v1/fills?array=1").json() == []


def test_anonymous_is_refused(markets, api):
    assert api.post("/api/v1/orders", {}, format="json").status_code == 401
    assert api.get("/api/v1/fills").status_code == 401


def test_a_cancel_waits_for_the_engine_and_a_final_order_cannot_be_cancelled(alice, btc_engine):
    order = SpotOrder.objects.get(
        pk=post(client_for(alice), side="buy", type="limit", price="60000.00", quantity="0.01").json()["id"]
    )
    btc_engine.run()
    response = client_for(alice).delete(f"/api/v1/orders/{order.pk}")  # no runner thread here: it times out
    assert response.status_code == 200 and response.json()["status"] == "open"
    btc_engine.run()
    assert SpotOrder.objects.get(pk=order.pk).status == SpotStatus.CANCELLED
    assert held(alice, "USDT") == 0
    assert error(client_for(alice).delete(f"/api/v1/orders/{order.pk}"))[:2] == (409, "order_not_open")


@pytest.mark.django_db(transaction=True)
def test_order_entry_reads_what_its_risk_checks_need_in_one_round_trip(markets):
    """Between BEGIN and the order's insert there is one statement text: the trader's row
    locked, the trading state under its lock, the live orders and the holding."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.spot.services import order_request, spot_order_place
    from tests.orders.spot.conftest import funded_trader

    user = funded_trader()
    with CaptureQueriesContext(connection) as sent:
        request = order_request(symbol="BTC-USDT", side="buy", type="limit", quantity="0.01", price="65000.00")
        order, _ = spot_order_place(user=user, request=request)
    statements = [query["sql"] for query in sent.captured_queries]
    begin = statements.index("BEGIN")
    insert = next(i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "orders_spotorder"'))
    (reads,) = statements[begin + 1 : insert]
    assert "FOR NO KEY UPDATE" in reads and "pg_advisory_xact_lock_shared" in reads
    assert "risk_tradingstate" in reads and "orders_spotorder" in reads and "ledger_ledgeraccount" in reads
    assert order.status == "new"
