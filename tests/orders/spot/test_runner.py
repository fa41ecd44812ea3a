"""The engine runner against PostgreSQL: orders in, trades, order states, ledger legs and
holds out, in one transaction per batch; a rebuilt runner continues where the last stopped."""

from decimal import Decimal

import pytest

from orders.models import EngineState, SpotOrder, SpotStatus, SpotTrade
from orders.spot.services import order_request, spot_order_cancel, spot_order_place

from .conftest import available, held

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


def place(user, **data):
    data.setdefault("symbol", "BTC-USDT")
    order, _ = spot_order_place(user=user, request=order_request(**data))
    return order


def refresh(order) -> SpotOrder:
    return SpotOrder.objects.get(pk=order.pk)


def test_a_limit_order_rests_and_a_crossing_one_trades_with_fees_and_holds(alice, bob, btc_engine):
    sell = place(alice, side="sell", type="limit", price="65000.00", quantity="0.5")
    assert held(alice, "BTC") == D("0.5")
    btc_engine.run()
    assert refresh(sell).status == SpotStatus.OPEN
    buy = place(bob, side="buy", type="limit", price="65100.00", quantity="0.2")
    assert held(bob, "USDT") == D("13020.000000")  # price x quantity, held until the engine decides
    btc_engine.run()

    trade = SpotTrade.objects.get()
    assert (trade.price, trade.quantity, trade.quote_amount) == (D("65000.00"), D("0.2"), D("13000"))
    assert trade.maker_order_id == sell.pk and trade.taker_order_id == buy.pk and trade.taker_side == "buy"
    sell, buy = refresh(sell), refresh(buy)
    assert buy.status == SpotStatus.FILLED and buy.filled_quantity == D("0.2") and buy.hold_amount == 0
    assert sell.status == SpotStatus.PARTIALLY_FILLED and sell.filled_quantity == D("0.2")
    # the buyer paid the trade price (not the limit), got BTC minus the taker fee (0.2%)
    assert held(bob, "USDT") == 0
    assert available(bob, "USDT") == D("100000") - D("13000")
    assert available(bob, "BTC") == D("10") + D("0.2") - D("0.0004")
    # the seller: 0.3 BTC still held for the rest, USDT minus the maker fee (0.1%)
    assert held(alice, "BTC") == D("0.3")
    assert available(alice, "BTC") == D("9.5")
    assert available(alice, "USDT") == D("100000") + D("13000") - D("13")
    assert EngineState.objects.get(symbol="BTC-USDT").last_price == D("65000.00")


def test_cancel_releases_the_rest_of_the_hold(alice, bob, btc_engine):
    sell = place(alice, side="sell", type="limit", price="65000.00", quantity="0.5")
    place(bob, side="buy", type="limit", price="65000.00", quantity="0.1")
    btc_engine.run()
    spot_order_cancel(user=alice, order_id=sell.pk, wait=0)
    btc_engine.run()
    sell = refresh(sell)
    assert sell.status == SpotStatus.CANCELLED and sell.cancel_reason == "user" and sell.filled_quantity == D("0.1")
    assert held(alice, "BTC") == 0 and available(alice, "BTC") == D("9.9")


def test_market_orders_ioc_fok_and_post_only(alice, bob, btc_engine):
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.1")
    place(alice, side="sell", type="limit", price="65010.00", quantity="0.1")
    btc_engine.run()
    post = place(bob, side="buy", type="limit", price="65000.00", quantity="0.1", post_only=True)
    fok = place(bob, side="buy", type="limit", price="65010.00", quantity="0.3", time_in_force="FOK")
    market = place(bob, side="buy", type="market", quantity="0.15")
    btc_engine.run()
    post, fok, market = refresh(post), refresh(fok), refresh(market)
    assert post.status == SpotStatus.REJECTED and post.reject_reason == "post_only_would_take"
    assert fok.status == SpotStatus.REJECTED and fok.reject_reason == "fok_unfillable"
    assert market.status == SpotStatus.FILLED and market.filled_quantity == D("0.15")
    assert market.filled_quote == D("6500") + D("3250.5")
    assert held(bob, "USDT") == 0 and available(bob, "USDT") == D("100000") - D("9750.5")
    by_quote = place(bob, side="buy", type="market", quote_quantity="1000")
    btc_engine.run()
    by_quote = refresh(by_quote)
    assert by_quote.status == SpotStatus.FILLED and by_quote.filled_quote <= D("1000")
    assert by_quote.filled_quantity == D("0.01538")  # 1000 / 65010 in whole lots


def test_a_stop_triggers_on_a_trade_and_a_restart_rebuilds_the_book(alice, bob, btc_engine):
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.1")
    place(alice, side="sell", type="limit", price="65500.00", quantity="0.5")
    stop = place(bob, side="buy", type="stop_market", stop_price="65200.00", quantity="0.05")
    btc_engine.run()
    assert refresh(stop).status == SpotStatus.TRIGGERED_PENDING
    btc_engine.restart()  # the book and the pending stop come back from the database
    place(bob, side="buy", type="limit", price="65000.00", quantity="0.1")  # trades at 65000: below the stop
    btc_engine.run()
    assert refresh(stop).status == SpotStatus.TRIGGERED_PENDING
    place(alice, side="sell", type="limit", price="65300.00", quantity="0.01")
    place(bob, side="buy", type="limit", price="65300.00", quantity="0.01")  # trades at 65300: triggers the stop
    btc_engine.run()
    stop = refresh(stop)
    assert stop.status == SpotStatus.FILLED and stop.filled_quote == D("3275")  # 0.05 at 65500
    assert held(bob, "USDT") == 0
    assert btc_engine.runner.book.best_ask() == btc_engine.runner.units.price_to_ticks(D("65500.00"))


def test_iceberg_shows_its_display_and_the_rebuilt_book_matches(alice, bob, btc_engine):
    place(alice, side="sell", type="limit", price="65000.00", quantity="1", display_quantity="0.1")
    btc_engine.run()
    snapshot = btc_engine.runner.book.snapshot()
    assert snapshot.asks == [(6500000, 10000)]
    place(bob, side="buy", type="limit", price="65000.00", quantity="0.25")
    btc_engine.run()
    before = btc_engine.runner.book.snapshot()
    btc_engine.restart()
    after = btc_engine.runner.book.snapshot()
    assert before.asks == after.asks and before.seq == after.seq


def test_a_rejected_order_releases_its_hold(alice, btc_engine):
    order = place(alice, side="buy", type="stop_market", stop_price="64000.00", quantity="0.01")
    btc_engine.run()  # no trade yet, so a buy stop below is allowed
    place(alice, side="sell", type="limit", price="63000.00", quantity="0.01")
    btc_engine.run()
    assert refresh(order).status == SpotStatus.TRIGGERED_PENDING
    trailing = place(alice, side="sell", type="trailing_stop", trail_amount="100.00", quantity="0.01")
    btc_engine.run()  # no trade has happened: nothing to trail
    trailing = refresh(trailing)
    assert trailing.status == SpotStatus.REJECTED and trailing.reject_reason == "no_reference_price"
    assert held(alice, "BTC") == D("0.01")  # the resting sell's hold only
