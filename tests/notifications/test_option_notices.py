"""Option trading tells the trader: an order filled, exercise or expiry at the TWAP, and the
back office's settlement of an order settled or stopped in manual review; each once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from notifications.models import Notification
from orders.options import settlement_mirror
from orders.options.services import options_expire, options_order_place
from tests.orders.conftest import listed, pick_series, print_index, trader  # noqa: F401  (listed: a fixture)

pytestmark = pytest.mark.django_db


def buy(user, series, contracts="1"):
    return options_order_place(
        user=user, series=series.symbol, side="buy", contracts=contracts, limit_price_usdt="999999"
    )[0]


def told(user, kind):
    return list(Notification.objects.filter(user=user, kind=kind).order_by("id"))


def test_an_option_order_filled_is_told_once(listed):  # noqa: F811
    call = pick_series("BTC", "C")
    alice = trader()

    order = buy(alice, call, "2")
    # The same client order id again is a replay: no second message.
    again = options_order_place(
        user=alice, series=call.symbol, side="buy", contracts="1", limit_price_usdt="999999", client_order_id="x-1"
    )[0]
    options_order_place(
        user=alice, series=call.symbol, side="buy", contracts="1", limit_price_usdt="999999", client_order_id="x-1"
    )

    filled = told(alice, "option_filled")
    assert [n.data["order_id"] for n in filled] == [order.pk, again.pk]
    assert filled[0].title == f"Bought 2 {call.symbol}"
    assert filled[0].data["total_usdt"] == f"{order.total_usdt:f}"


def test_exercise_and_expiry_are_told(listed):  # noqa: F811
    call = pick_series("BTC", "C")
    put = pick_series("BTC", "P", offset=-1)
    alice = trader()
    buy(alice, call, "1")
    buy(alice, put, "1")
    settlement = (call.strike + Decimal("1000")).normalize()
    print_index("BTC", settlement, ts=call.expiry - timedelta(minutes=31))

    options_expire(now=call.expiry + timedelta(seconds=5))
    options_expire(now=call.expiry + timedelta(seconds=6))  # a repeated run

    (exercised,) = told(alice, "option_exercised")
    assert exercised.title == f"1 {call.symbol} exercised"
    assert exercised.data["payout_usdt"] == "1000.000000"
    (expired,) = told(alice, "option_expired")
    assert expired.title == f"1 {put.symbol} expired worthless"


def test_settlement_done_or_in_manual_review_is_told_once_per_state(listed):  # noqa: F811
    call = pick_series("BTC", "C")
    alice, bob = trader(), trader()
    first, second = buy(alice, call), buy(bob, call)

    settlement_mirror.set_state(refs=[first.outbox_key, second.outbox_key], state="settling")
    assert told(alice, "option_settled") == []  # under way is no news
    settlement_mirror.set_state(refs=[first.outbox_key], state="settled")
    settlement_mirror.set_state(refs=[first.outbox_key], state="settled")
    settlement_mirror.set_state(refs=[second.outbox_key], state="manual_review")

    (done,) = told(alice, "option_settled")
    assert done.title == f"Settlement of your {call.symbol} order settled"
    assert done.data == {"ref": first.outbox_key, "series": call.symbol, "state": "settled"}
    (review,) = told(bob, "option_settled")
    assert review.title == f"Settlement of your {call.symbol} order in manual review"
    assert "back office" in review.body
