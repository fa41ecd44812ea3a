"""Stop-market, stop-limit (triggered by the last trade price, executed in trigger order)
and trailing stops (absolute or percent trail, following the last trade price)."""

import pytest

from orders.spot.engine import (
    ACCEPTED,
    BOOK,
    BUY,
    CANCELLED,
    FOK,
    IOC,
    LIMIT,
    REJECTED,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    TRADE,
    TRAILING_STOP,
    TRIGGERED,
    Cancel,
    Reject,
)

from .support import deltas, events, ladder, new_book, of_kind, rest, trades


def _print(book, price, qty=1, order_id=None, owner=900):
    """A trade at ``price``: a resting sell hit by a buy from another owner."""
    order_id = order_id or 800_000 + book.seq
    rest(book, order_id, SELL, price, qty, owner=owner)
    book.place(order_id + 1, owner + 1, BUY, LIMIT, qty, price)


def test_stop_market_waits_then_triggers_on_the_last_trade_price_and_executes():
    book = new_book()
    ladder(book, asks=[(100, 1), (101, 1), (105, 10)], bids=[(90, 5)])
    book.place(1, 1, BUY, STOP_MARKET, 3, stop_price=101)
    evs = events(book)
    assert [e.kind for e in evs] == [ACCEPTED]
    assert book.order(1).stop_price == 101 and book.order(1).triggered is False
    book.place(2, 2, BUY, LIMIT, 1, 100)  # last = 100: not yet
    assert of_kind(events(book), TRIGGERED) == []
    book.place(3, 3, BUY, LIMIT, 1, 101)  # last = 101: triggers
    evs = events(book)
    triggered = of_kind(evs, TRIGGERED)
    assert [(t.order_id, t.stop_price, t.last_price) for t in triggered] == [(1, 101, 101)]
    assert [e.kind for e in evs].index(TRIGGERED) > [e.kind for e in evs].index(TRADE)
    assert trades(evs)[-1] == (1002, 1, 105, 3)
    assert 1 not in book


def test_sell_stop_triggers_when_the_price_falls_to_it():
    book = new_book()
    ladder(book, bids=[(100, 1), (95, 1), (90, 10)])
    book.place(1, 1, SELL, STOP_MARKET, 2, stop_price=95)
    book.place(2, 2, SELL, LIMIT, 2, 95)  # prints 100 then 95
    evs = events(book)
    assert [t.order_id for t in of_kind(evs, TRIGGERED)] == [1]
    assert trades(evs)[-1] == (1002, 1, 90, 2)


def test_a_stop_that_would_trigger_at_once_is_rejected():
    book = new_book()
    ladder(book, asks=[(100, 1)])
    book.place(1, 1, BUY, LIMIT, 1, 100)
    events(book)
    book.place(2, 2, BUY, STOP_MARKET, 1, stop_price=100)
    book.place(3, 3, SELL, STOP_MARKET, 1, stop_price=100)
    evs = events(book)
    assert [(e.kind, e.reason) for e in evs] == [(REJECTED, Reject.STOP_WOULD_TRIGGER)] * 2


def test_stop_limit_triggers_then_rests_at_its_limit_with_the_priority_of_its_trigger():
    book = new_book()
    ladder(book, asks=[(100, 1), (110, 5)], bids=[(95, 5)])
    rest(book, 5, BUY, 97, 1)  # already resting at 97
    book.place(1, 1, BUY, STOP_LIMIT, 4, 97, stop_price=100)
    book.place(2, 2, BUY, LIMIT, 1, 100)  # prints 100
    evs = events(book)
    assert [t.order_id for t in of_kind(evs, TRIGGERED)] == [1]
    assert deltas(evs)[-1] == (BUY, 97, 5)
    order = book.order(1)
    assert (order.triggered, order.remaining, order.price) == (True, 4, 97)
    book.place(3, 3, SELL, LIMIT, 2, 97)
    assert trades(events(book)) == [(5, 3, 97, 1), (1, 3, 97, 1)]


def test_stop_limit_with_ioc_or_fok_after_trigger():
    book = new_book()
    ladder(book, asks=[(100, 1), (101, 2)])
    book.place(1, 1, BUY, STOP_LIMIT, 5, 101, IOC, stop_price=100)
    book.place(2, 2, BUY, STOP_LIMIT, 5, 101, FOK, stop_price=100)
    book.place(3, 3, BUY, LIMIT, 1, 100)
    evs = events(book)
    assert [t.order_id for t in of_kind(evs, TRIGGERED)] == [1, 2]
    assert trades(evs)[-1] == (1001, 1, 101, 2)
    assert [(c.order_id, c.reason, c.qty) for c in of_kind(evs, CANCELLED)] == [
        (1, Cancel.IOC_REMAINDER, 3),
        (2, Cancel.FOK_UNFILLABLE, 5),
    ]


def test_stops_triggered_together_execute_nearest_trigger_first_then_in_arrival_order():
    book = new_book()
    ladder(book, asks=[(100, 1), (103, 1), (200, 100)])
    book.place(1, 1, BUY, STOP_MARKET, 1, stop_price=102)
    book.place(2, 2, BUY, STOP_MARKET, 1, stop_price=101)
    book.place(3, 3, BUY, STOP_MARKET, 1, stop_price=102)
    book.place(9, 9, BUY, LIMIT, 2, 103)  # prints 100, 103
    evs = events(book)
    assert [t.order_id for t in of_kind(evs, TRIGGERED)] == [2, 1, 3]
    assert [t.last_price for t in of_kind(evs, TRIGGERED)] == [103, 103, 103]


def test_a_triggered_stop_can_trigger_further_stops_which_run_after_it():
    book = new_book()
    ladder(book, asks=[(100, 1), (105, 1), (110, 1)])
    book.place(1, 1, BUY, STOP_MARKET, 1, stop_price=100)  # fills at 105
    book.place(2, 2, BUY, STOP_MARKET, 1, stop_price=105)  # then this one, at 110
    book.place(9, 9, BUY, LIMIT, 1, 100)
    evs = events(book)
    assert [t.order_id for t in of_kind(evs, TRIGGERED)] == [1, 2]
    assert [t.last_price for t in of_kind(evs, TRIGGERED)] == [100, 105]
    assert trades(evs) == [(1000, 9, 100, 1), (1001, 1, 105, 1), (1002, 2, 110, 1)]


def test_cancel_and_amend_a_pending_stop():
    book = new_book()
    ladder(book, asks=[(100, 1), (101, 10)])
    book.place(1, 1, BUY, STOP_LIMIT, 5, 101, stop_price=100)
    book.place(2, 2, BUY, STOP_MARKET, 5, stop_price=100)
    book.amend(1, qty=3)
    book.amend(2, price=101)
    book.cancel(2)
    evs = events(book)
    assert [(e.kind, getattr(e, "reason", None)) for e in evs[2:]] == [
        ("amended", None),
        (REJECTED, Reject.AMEND_NOT_ALLOWED),
        (CANCELLED, Cancel.USER),
    ]
    assert of_kind(evs, CANCELLED)[0].qty == 5
    assert deltas(evs) == []
    book.place(3, 3, BUY, LIMIT, 1, 100)
    evs = events(book)
    assert [t.order_id for t in of_kind(evs, TRIGGERED)] == [1]
    assert trades(evs)[-1] == (1001, 1, 101, 3)


def test_invalid_stops_are_rejected():
    book = new_book()
    book.place(1, 1, BUY, STOP_MARKET, 5)
    book.place(2, 1, BUY, STOP_LIMIT, 5, stop_price=100)
    book.place(3, 1, BUY, STOP_MARKET, 5, stop_price=100, post_only=True)
    book.place(4, 1, BUY, TRAILING_STOP, 5, trail_ticks=5)  # no trade yet: nothing to trail
    book.place(5, 1, BUY, STOP_MARKET, 5, stop_price=100, display_qty=1)
    assert [e.reason for e in events(book)] == [
        Reject.INVALID_STOP_PRICE,
        Reject.INVALID_PRICE,
        Reject.INVALID_POST_ONLY,
        Reject.NO_REFERENCE_PRICE,
        Reject.INVALID_DISPLAY_QUANTITY,
    ]


# ---------------------------------------------------------------- trailing stops


def test_trailing_sell_stop_follows_the_high_and_triggers_trail_ticks_below_it():
    book = new_book()
    ladder(book, bids=[(50, 100)])
    _print(book, 100)
    book.place(1, 1, SELL, TRAILING_STOP, 3, trail_ticks=5)
    events(book)
    assert book.order(1).stop_price == 95 and book.order(1).trail_reference == 100
    _print(book, 104)
    _print(book, 110)
    _print(book, 106)  # 110 - 5 = 105 not reached
    assert book.order(1).stop_price == 105 and book.order(1).trail_reference == 110
    assert of_kind(events(book), TRIGGERED) == []
    _print(book, 105)
    evs = events(book)
    assert [(t.order_id, t.stop_price, t.last_price) for t in of_kind(evs, TRIGGERED)] == [(1, 105, 105)]
    assert trades(evs)[-1] == (1000, 1, 50, 3)  # executes as a market order
    assert 1 not in book


def test_trailing_buy_stop_follows_the_low_by_a_percentage():
    book = new_book()
    ladder(book, asks=[(5000, 100)])
    _print(book, 1000)
    book.place(1, 1, BUY, TRAILING_STOP, 2, trail_ppm=20_000)  # 2%
    assert book.order(1).stop_price == 1020
    _print(book, 900)  # low 900 -> stop 918
    assert book.order(1).stop_price == 918
    _print(book, 917)
    assert of_kind(events(book), TRIGGERED) == []
    _print(book, 918)
    evs = events(book)
    assert [(t.order_id, t.stop_price) for t in of_kind(evs, TRIGGERED)] == [(1, 918)]
    assert trades(evs)[-1][0] == 1000


def test_trailing_stops_with_different_references_and_trails_trigger_in_arrival_order():
    book = new_book()
    ladder(book, bids=[(89, 1000)])  # the triggered stops sell here, above order 3's stop
    _print(book, 100)
    book.place(1, 1, SELL, TRAILING_STOP, 1, trail_ticks=10)  # ref 100 -> 90
    _print(book, 95)
    book.place(2, 2, SELL, TRAILING_STOP, 1, trail_ticks=3)  # ref 95 -> 92
    book.place(3, 3, SELL, TRAILING_STOP, 1, trail_ticks=10)  # ref 95 -> 85
    _print(book, 98)  # 2: ref 98 -> 95; 3: ref 98 -> 88
    assert [book.order(i).stop_price for i in (1, 2, 3)] == [90, 95, 88]
    events(book)
    _print(book, 90)
    evs = events(book)
    assert [t.order_id for t in of_kind(evs, TRIGGERED)] == [1, 2]
    assert [t[2] for t in trades(evs)] == [90, 89, 89]
    assert 3 in book
    specs = {o.order_id: o for o in book.open_orders()}
    assert specs[3].trail_reference == 98 and specs[3].stop_price == 88


def test_cancelled_trailing_stops_never_trigger_and_many_of_them_do_not_pile_up():
    book = new_book()
    ladder(book, bids=[(10, 1000)])
    _print(book, 100)
    for order_id in range(1, 301):
        book.place(order_id, order_id, SELL, TRAILING_STOP, 1, trail_ticks=5)
        if order_id != 150:
            book.cancel(order_id)
    trail = book._trail_sells[(5, 0)]
    assert len(trail.orders) < 100
    events(book)
    _print(book, 95)
    assert [t.order_id for t in of_kind(events(book), TRIGGERED)] == [150]
    assert book._trail_sells == {}


def test_trailing_stop_amend_reduce_keeps_it_and_increase_is_refused():
    book = new_book()
    _print(book, 100)
    book.place(1, 1, SELL, TRAILING_STOP, 5, trail_ticks=5)
    _print(book, 110)
    book.amend(1, qty=3)
    book.amend(1, qty=10)
    evs = events(book)
    assert of_kind(evs, "amended")[0].priority_kept is True
    assert of_kind(evs, REJECTED)[0].reason == Reject.AMEND_NOT_ALLOWED
    order = book.order(1)
    assert (order.qty, order.stop_price) == (3, 105)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(trail_ticks=5, trail_ppm=100),
        dict(trail_ticks=0),
        dict(trail_ppm=1_000_000),
        dict(trail_ticks=-1),
        dict(trail_ticks=5, stop_price=90),
    ],
)
def test_trailing_stop_needs_exactly_one_trail(kwargs):
    book = new_book()
    _print(book, 100)
    events(book)
    book.place(1, 1, SELL, TRAILING_STOP, 5, **kwargs)
    evs = events(book)
    assert [e.kind for e in evs] == [REJECTED]
    assert evs[0].reason in (Reject.INVALID_TRAIL, Reject.INVALID_STOP_PRICE)


def test_stop_events_do_not_touch_the_book_until_triggered():
    book = new_book()
    ladder(book, asks=[(100, 1)])
    book.place(1, 1, BUY, STOP_LIMIT, 5, 99, stop_price=100)
    evs = events(book)
    assert [e.kind for e in evs] == [ACCEPTED]
    assert book.snapshot().bids == []
    book.place(2, 2, BUY, LIMIT, 1, 100)
    evs = events(book)
    assert [e.kind for e in evs][-2:] == [TRIGGERED, BOOK]
    assert book.snapshot().bids == [(99, 5)]


def test_a_stop_market_with_a_protection_price_trades_no_worse_than_it():
    book = new_book()
    book.place(10, 9, SELL, LIMIT, 1, 100)
    book.place(11, 9, SELL, LIMIT, 1, 102)
    book.place(12, 9, SELL, LIMIT, 5, 104)
    book.place(1, 1, BUY, STOP_MARKET, 4, 102, stop_price=100)  # buys at 102 at most
    events(book)
    book.place(2, 2, BUY, LIMIT, 1, 100)  # trades at 100: triggers the stop
    evs = events(book)
    assert [(t.price, t.qty) for t in of_kind(evs, TRADE) if t.taker_order_id == 1] == [(102, 1)]
    assert of_kind(evs, CANCELLED)[-1].order_id == 1 and of_kind(evs, CANCELLED)[-1].qty == 3
    book.place(3, 1, BUY, STOP_MARKET, 1, 0, stop_price=200)
    book.place(4, 1, SELL, TRAILING_STOP, 1, 90, trail_ticks=3)
    book.amend(4, price=95)
    assert [e.reason for e in of_kind(events(book), REJECTED)] == [Reject.INVALID_PRICE, Reject.AMEND_NOT_ALLOWED]
