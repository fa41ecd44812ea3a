"""The runner never stops on one order: rows it cannot convert for the engine, or that make
a batch fail, are refused (their holds released, the trader told) and matching goes on."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from ledger.models import Transfer
from notifications.models import Notification
from orders.models import SpotOrder, SpotStatus, SpotTrade
from orders.spot.runner import engine_singleton
from orders.spot.services import order_request, spot_order_cancel, spot_order_place

from .conftest import available, held

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


def place(user, **data) -> SpotOrder:
    data.setdefault("symbol", "BTC-USDT")
    order, _ = spot_order_place(user=user, request=order_request(**data))
    return order


def refresh(order) -> SpotOrder:
    return SpotOrder.objects.get(pk=order.pk)


def still_matches(engine, alice, bob) -> None:
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.01")
    place(bob, side="buy", type="limit", price="65000.00", quantity="0.01")
    trades = SpotTrade.objects.count()
    engine.run()
    assert SpotTrade.objects.count() > trades


@pytest.mark.parametrize(
    "field, value",
    [
        ("display_quantity", D("0")),  # what "1e-999999999" used to become
        ("quantity", D("0.000001")),  # finer than the lot size
        ("price", D("65000.001")),  # finer than the tick size
        ("price", D("0")),
    ],
)
def test_a_new_order_the_engine_cannot_take_is_rejected_and_its_hold_released(alice, bob, btc_engine, field, value):
    order = place(bob, side="buy", type="limit", price="65000.00", quantity="0.1", display_quantity="0.05")
    SpotOrder.objects.filter(pk=order.pk).update(**{field: value})
    btc_engine.run()
    order = refresh(order)
    assert (order.status, order.reject_reason) == (SpotStatus.REJECTED, "invalid_order")
    assert held(bob, "USDT") == 0 and available(bob, "USDT") == D("100000")
    assert Notification.objects.filter(user=bob, kind="order_rejected").count() == 1
    still_matches(btc_engine, alice, bob)


def test_a_trailing_stop_with_a_zero_trail_is_rejected(alice, bob, btc_engine):
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.01")
    place(bob, side="buy", type="limit", price="65000.00", quantity="0.005")
    btc_engine.run()  # a last price to trail
    stop = place(bob, side="buy", type="trailing_stop", quantity="0.01", trail_amount="10.00")
    SpotOrder.objects.filter(pk=stop.pk).update(trail_amount=D("0"))
    btc_engine.run()
    assert refresh(stop).reject_reason == "invalid_order"
    assert held(bob, "USDT") == 0
    still_matches(btc_engine, alice, bob)


def test_an_order_written_without_a_hold_is_rejected_and_nothing_is_released(alice, bob, btc_engine):
    order = SpotOrder.objects.create(
        user=bob,
        symbol="BTC-USDT",
        side="buy",
        type="limit",
        time_in_force="GTC",
        quantity=D("0"),
        price=D("65000"),
        hold_asset="USDT",
        hold_amount=D("100"),
        request_hash="planted",
    )
    btc_engine.run()
    assert refresh(order).status == SpotStatus.REJECTED
    assert not Transfer.objects.filter(reference=f"spot_order:{order.pk}").exists()
    assert available(bob, "USDT") == D("100000")
    still_matches(btc_engine, alice, bob)


def test_an_open_order_that_cannot_be_rebuilt_is_cancelled_and_the_rest_rebuild(alice, bob, btc_engine):
    good = place(alice, side="sell", type="limit", price="65010.00", quantity="0.02")
    bad = place(alice, side="sell", type="limit", price="65020.00", quantity="0.03")
    btc_engine.run()
    assert refresh(bad).status == SpotStatus.OPEN
    SpotOrder.objects.filter(pk=bad.pk).update(price=D("65020.005"))
    btc_engine.restart()
    btc_engine.run()
    bad = refresh(bad)
    assert (bad.status, bad.cancel_reason) == (SpotStatus.CANCELLED, "invalid_order")
    assert held(alice, "BTC") == D("0.02")  # only the good order's hold is left
    assert refresh(good).status == SpotStatus.OPEN and good.pk in btc_engine.runner.book
    still_matches(btc_engine, alice, bob)


def test_cancelling_an_order_the_engine_has_not_taken_ends_it_unmatched(alice, bob, btc_engine):
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.1")
    btc_engine.run()
    buy = place(bob, side="buy", type="limit", price="65000.00", quantity="0.1")
    spot_order_cancel(user=bob, order_id=buy.pk, wait=0)
    btc_engine.run()
    buy = refresh(buy)
    assert (buy.status, buy.cancel_reason, buy.filled_quantity) == (SpotStatus.CANCELLED, "user", 0)
    assert not SpotTrade.objects.exists() and held(bob, "USDT") == 0


def test_an_order_that_fails_its_batch_is_found_and_rejected_while_the_rest_trade(alice, bob, markets):
    """A buy whose hold row names a hold that does not exist fails the whole batch at the
    ledger. The runner (the real leased loop) steps down, retries in halves, rejects that
    order alone, and every other order of the batch trades."""
    sells = [place(alice, side="sell", type="limit", price="65000.00", quantity="0.01") for _ in range(6)]
    buys = [place(bob, side="buy", type="limit", price="65000.00", quantity="0.01") for _ in range(6)]
    poison = buys[3]
    SpotOrder.objects.filter(pk=poison.pk).update(hold_seq=7)  # spot:<id>:hold:7 was never written
    singleton = engine_singleton("BTC-USDT", ttl=2.0, announce=lambda line: None)

    def run():
        try:
            singleton.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not SpotOrder.objects.filter(status=SpotStatus.NEW).exists():
                break
            time.sleep(0.1)
        assert thread.is_alive()
    finally:
        singleton.stop()
        thread.join(15)
    assert refresh(poison).reject_reason == "invalid_order"
    assert all(refresh(order).status == SpotStatus.FILLED for order in buys if order.pk != poison.pk)
    assert SpotTrade.objects.count() == 5 and refresh(sells[-1]).status == SpotStatus.OPEN
