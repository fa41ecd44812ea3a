"""Smart order routing against PostgreSQL, the in-process engine runner and simulated venues:
the split by price net of fees, the children and their holds, venue fills in the ledger, a
venue timeout resolved by lookup (never a second placement), and the parent's final state."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import Transfer
from orders.models import SpotOrder, SpotStatus, VenueOrder, VenueOrderStatus
from orders.spot.services import order_request, spot_order_place
from orders.spot.services.routing import ROUTING, smart_order_refresh, venue_order_execute, venue_orders_resolve
from venues.config import venue_get

from .conftest import Engine, available, client_for, funded_trader, held
from .routing_helpers import EngineThread, venues

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def routing(settings, eager_tasks):
    """The children's work runs as soon as the order commits (the worker's part)."""
    settings.SPOT_VENUES = venues()
    settings.SMART_ORDER_WAIT_SECONDS = 0
    return settings


def place(user, **data):
    data.setdefault("symbol", "BTC-USDT")
    order, _ = spot_order_place(user=user, request=order_request(**data))
    return order


def asks(name):
    return venue_get(name).order_book("BTC-USDT", 5).asks


def test_a_smart_buy_splits_by_price_net_of_fees_and_settles_every_child(alice, bob, btc_engine, routing):
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.3")
    place(alice, side="sell", type="limit", price="65300.00", quantity="1")
    btc_engine.run()
    simx = asks("simx")
    # Net of fees, simx's first level (fee 0.1%) beats our 65000.00 (taker fee 0.2%), which
    # beats simx's second level; simy (60 bps spread) is never reached.
    assert simx[0][0] / D("0.999") < D("65000.00") / D("0.998") < simx[1][0] / D("0.999")
    usdt_before, btc_before = available(bob, "USDT"), available(bob, "BTC")

    parent = place(bob, side="buy", type="limit", time_in_force="IOC", price="65200.00", quantity="1", route="smart")

    assert parent.route == "smart" and parent.status == ROUTING and parent.hold_amount == 0
    book_child = SpotOrder.objects.get(parent=parent)
    assert (book_child.type, book_child.time_in_force, book_child.quantity, book_child.price) == (
        "limit",
        "IOC",
        D("0.3"),
        D("65000.00"),
    )
    venue_child = VenueOrder.objects.get(parent=parent)
    assert venue_child.venue == "simx" and venue_child.quantity == D("0.7") and venue_child.limit_price == simx[1][0]
    assert venue_child.client_order_id == f"sor-{parent.pk}-simx" and venue_child.status == VenueOrderStatus.FILLED
    venue_cost = (D("0.4") * simx[0][0] + D("0.3") * simx[1][0]).quantize(D("0.000001"))
    assert venue_child.filled_quantity == D("0.7") and venue_child.filled_quote == venue_cost
    assert venue_child.fee == D("0.0007")
    # the parent's hold moved to its children: the book child still holds its part
    assert held(bob, "USDT") == D("65000.00") * D("0.3")
    hold = Transfer.objects.get(pk=f"spot:{parent.pk}:hold:0")
    assert hold.amount == D("65200") and Transfer.objects.filter(pk=f"spot:{parent.pk}:0:void").exists()

    btc_engine.run()
    parent = smart_order_refresh(parent_id=parent.pk)
    assert parent.status == SpotStatus.FILLED and parent.filled_quantity == D("1")
    assert parent.filled_quote == D("19500") + venue_cost
    assert parent.fees_paid == D("0.0006") + D("0.0007")
    assert held(bob, "USDT") == 0
    assert available(bob, "USDT") == usdt_before - D("19500") - venue_cost
    assert available(bob, "BTC") == btc_before + D("1") - D("0.0013")
    assert venue_get("simx").placements(venue_child.client_order_id) == 1


def test_a_smart_market_sell_through_the_api_answers_at_once_and_its_children_finish_it(alice, bob, markets, routing):
    """The request returns the parent as entered; the children work off the request (here the
    test runs the worker's task as the order commits) and close it."""
    routing.SMART_ORDER_WAIT_SECONDS = 5
    engine = Engine("BTC-USDT")
    # above simx's best bid, but not net of our 0.2% fee against its 0.1%: simx's first level
    # (0.4) goes first, then ours, which beats simx's second level
    place(alice, side="buy", type="limit", price="65010.00", quantity="0.5")
    engine.run()
    btc_before = available(bob, "BTC")

    with EngineThread(engine):
        response = client_for(bob).post(
            "/api/v1/orders",
            {
                "symbol": "BTC-USDT",
                "side": "sell",
                "type": "market",
                "quantity": "0.8",
                "route": "smart",
                "client_order_id": "smart-1",
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "routing" and body["route"] == "smart"

    detail = client_for(bob).get(f"/api/v1/orders/{body['id']}").json()
    assert detail["status"] == "filled" and detail["filled_quantity"] == "0.8"
    children = {child["venue"]: child for child in detail["children"]}
    assert children["book"]["filled_quantity"] == "0.4" and children["book"]["status"] == "filled"
    assert children["simx"]["quantity"] == "0.4" and children["simx"]["status"] == "filled"
    assert "simy" not in children
    assert available(bob, "BTC") == btc_before - D("0.8") and held(bob, "BTC") == 0
    # a replayed client_order_id answers the original parent, with no second routing
    replay = client_for(bob).post(
        "/api/v1/orders",
        {
            "symbol": "BTC-USDT",
            "side": "sell",
            "type": "market",
            "quantity": "0.8",
            "route": "smart",
            "client_order_id": "smart-1",
        },
        format="json",
    )
    assert replay.status_code == 200 and replay.json()["id"] == body["id"]
    assert VenueOrder.objects.count() == 1


def test_a_trader_who_cannot_fund_the_whole_order_gets_insufficient_funds_and_nothing_is_written(markets, routing):
    poor = funded_trader(usdt="1000", btc="0")
    response = client_for(poor).post(
        "/api/v1/orders",
        {
            "symbol": "BTC-USDT",
            "side": "buy",
            "type": "limit",
            "time_in_force": "IOC",
            "price": "65200.00",
            "quantity": "0.5",
            "route": "smart",
        },
        format="json",
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "insufficient_funds"
    assert not SpotOrder.objects.filter(user=poor).exists() and not VenueOrder.objects.exists()
    assert available(poor, "USDT") == D("1000") and held(poor, "USDT") == 0


def test_an_ambiguous_venue_timeout_is_resolved_by_lookup_and_never_placed_twice(bob, btc_engine, routing):
    routing.SPOT_VENUES = venues(simx={"ambiguous": 1.0})
    parent = place(bob, side="buy", type="market", quantity="0.3", route="smart")
    child = VenueOrder.objects.get(parent=parent)
    # the reply was lost; the lookup by client order id found the fill
    assert child.status == VenueOrderStatus.FILLED and child.attempts == 1 and child.filled_quantity == D("0.3")
    assert venue_get("simx").placements(child.client_order_id) == 1
    # running it again only looks it up
    venue_order_execute(venue_order_id=child.pk)
    assert venue_get("simx").placements(child.client_order_id) == 1
    parent = smart_order_refresh(parent_id=parent.pk)
    assert parent.status == SpotStatus.FILLED and held(bob, "USDT") == 0


def test_a_lost_venue_request_stays_unknown_until_the_lookup_proves_it_never_executed(bob, btc_engine, routing):
    routing.SPOT_VENUES = venues(simx={"timeout": 1.0})
    usdt_before = available(bob, "USDT")
    parent = place(bob, side="buy", type="market", quantity="0.3", route="smart")
    child = VenueOrder.objects.get(parent=parent)
    assert child.status == VenueOrderStatus.UNKNOWN and child.attempts == 1
    assert held(bob, "USDT") == child.hold_amount > 0  # kept while the outcome is unknown
    assert smart_order_refresh(parent_id=parent.pk).status == ROUTING

    venue_order_execute(venue_order_id=child.pk)  # a retry looks up; it does not send again
    assert VenueOrder.objects.get(pk=child.pk).attempts == 1
    assert venue_orders_resolve() == 0  # still inside the venue's receive window

    later = timezone.now() + timedelta(seconds=venue_get("simx").unknown_outcome_grace_s + 1)
    assert venue_orders_resolve(now=later) == 1
    child.refresh_from_db()
    assert child.status == VenueOrderStatus.CANCELLED and child.error.startswith("not_placed")
    assert venue_get("simx").placements(child.client_order_id) == 0
    assert held(bob, "USDT") == 0 and available(bob, "USDT") == usdt_before
    parent = SpotOrder.objects.get(pk=parent.pk)
    assert parent.status == SpotStatus.CANCELLED and parent.filled_quantity == 0


def test_nothing_within_the_limit_cancels_the_parent_and_releases_its_hold(bob, btc_engine, routing):
    parent = place(bob, side="buy", type="limit", time_in_force="IOC", price="64000.00", quantity="0.1", route="smart")
    assert parent.status == SpotStatus.CANCELLED and parent.cancel_reason == "no_liquidity"
    assert held(bob, "USDT") == 0 and not VenueOrder.objects.exists()


def test_smart_routing_refuses_a_quote_quantity(bob, routing):
    response = client_for(bob).post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "type": "market", "quote_quantity": "1000", "route": "smart"},
        format="json",
    )
    assert response.status_code == 400 and "quote_quantity" in response.json()["error"]["fields"]


def test_the_aggregated_book_merges_our_book_and_every_venue(alice, btc_engine, routing):
    simx = asks("simx")
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.3")
    place(alice, side="sell", type="limit", price=str(simx[0][0]), quantity="0.25")  # the same price as simx's best
    btc_engine.run()
    response = client_for(alice).get("/api/v1/markets/BTC-USDT/aggregated-book?depth=4")
    assert response.status_code == 200
    book = response.json()
    assert book["asks"][0] == ["65000", "0.3", {"book": "0.3"}]
    price, total, by_source = book["asks"][1]
    assert D(price) == simx[0][0] and by_source == {"book": "0.25", "simx": "0.4"} and D(total) == D("0.65")
    prices = [D(level[0]) for level in book["asks"]]
    assert prices == sorted(prices) and len(prices) == 4
    bids = [D(level[0]) for level in book["bids"]]
    assert bids == sorted(bids, reverse=True) and {"simx", "simy"} <= set().union(*(level[2] for level in book["bids"]))
    assert {s["name"] for s in book["sources"]} == {"book", "simx", "simy"} and book["unavailable"] == []
    assert client_for(alice).get("/api/v1/markets/BTC-USDT/aggregated-book?depth=0").status_code == 400
    assert client_for(alice).get("/api/v1/markets/NOPE-USDT/aggregated-book").status_code == 404


def test_a_venue_refusal_releases_that_childs_hold_and_the_parent_keeps_what_filled(alice, bob, btc_engine, routing):
    routing.SPOT_VENUES = venues(simx={"reject": 1.0})
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.3")
    btc_engine.run()
    parent = place(bob, side="buy", type="limit", time_in_force="IOC", price="65200.00", quantity="1", route="smart")
    child = VenueOrder.objects.get(parent=parent)
    assert child.status == VenueOrderStatus.REJECTED and child.error.startswith("venue_rejected")
    btc_engine.run()
    parent = smart_order_refresh(parent_id=parent.pk)
    assert parent.status == SpotStatus.CANCELLED and parent.cancel_reason == "ioc"
    assert parent.filled_quantity == D("0.3") and held(bob, "USDT") == 0


def test_reading_a_smart_order_writes_nothing_and_the_sweep_closes_it(alice, bob, btc_engine, settings):
    """Without a worker the children wait; GET shows the order as it is (reads never write);
    the sweep sends nothing twice, and closes the parent once its children are final."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.spot.services.routing import smart_order_route

    settings.SPOT_VENUES = venues()
    settings.SMART_ORDER_WAIT_SECONDS = 0
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.3")
    btc_engine.run()
    parent = place(bob, side="buy", type="limit", time_in_force="IOC", price="65200.00", quantity="1", route="smart")
    assert VenueOrder.objects.get(parent=parent).status == VenueOrderStatus.PENDING  # queued, no worker here

    smart_order_route(parent_id=parent.pk)  # what the worker does
    btc_engine.run()  # the book child trades; its parent is not the runner's to close
    with CaptureQueriesContext(connection) as queries:
        detail = client_for(bob).get(f"/api/v1/orders/{parent.pk}").json()
    assert detail["status"] == "routing"
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]

    venue_orders_resolve()
    parent = SpotOrder.objects.get(pk=parent.pk)
    assert parent.status == SpotStatus.FILLED and parent.filled_quantity == D("1")
    assert venue_get("simx").placements(f"sor-{parent.pk}-simx") == 1
