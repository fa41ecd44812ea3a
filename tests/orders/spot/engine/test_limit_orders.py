"""Limit orders: resting, price-time priority, partial fills, events, sequence numbers,
validation, cancels (lazy, but exact in aggregates)."""

import pytest

from orders.spot.engine import (
    ACCEPTED,
    BOOK,
    BUY,
    CANCELLED,
    GTC,
    LIMIT,
    REJECTED,
    SELL,
    TRADE,
    Cancel,
    Reject,
)

from .support import deltas, events, ladder, new_book, of_kind, rest, trades


def test_resting_order_emits_accepted_then_book_delta():
    book = new_book()
    book.place(1, 7, BUY, LIMIT, 10, 100)
    evs = events(book)
    assert [e.kind for e in evs] == [ACCEPTED, BOOK]
    accepted, delta = evs
    assert (accepted.order_id, accepted.owner, accepted.side, accepted.order_type, accepted.price, accepted.qty) == (
        1,
        7,
        BUY,
        LIMIT,
        100,
        10,
    )
    assert (delta.side, delta.price, delta.qty) == (BUY, 100, 10)
    assert book.best_bid() == 100 and book.best_ask() is None
    assert 1 in book and len(book) == 1


def test_sequence_numbers_are_consecutive_across_commands_and_continue_from_the_start_value():
    book = new_book(seq=41)
    book.place(1, 1, BUY, LIMIT, 10, 100)
    book.place(2, 2, SELL, LIMIT, 4, 100)
    book.cancel(99)
    seqs = [e.seq for e in events(book)]
    assert seqs == list(range(42, 42 + len(seqs)))
    assert book.seq == seqs[-1]


def test_best_price_level_trades_first_then_time_priority_within_a_level():
    book = new_book()
    ladder(book, asks=[(101, 5), (100, 5), (100, 5), (102, 5)])  # ids 1000..1003
    book.place(1, 1, BUY, LIMIT, 12, 101)
    evs = events(book)
    # 100 before 101; at 100 the older order (1001) before the newer (1002)
    assert trades(evs) == [(1001, 1, 100, 5), (1002, 1, 100, 5), (1000, 1, 101, 2)]
    assert deltas(evs) == [(SELL, 100, 0), (SELL, 101, 3)]
    assert book.best_ask() == 101
    assert book.snapshot().asks == [(101, 3), (102, 5)]


def test_trade_event_fields_and_remaining_quantities():
    book = new_book()
    rest(book, 1, SELL, 100, 10, owner=70)
    book.place(2, 80, BUY, LIMIT, 4, 105)
    trade = of_kind(events(book), TRADE)[0]
    assert trade.price == 100  # the maker's price, not the taker's limit
    assert (trade.qty, trade.maker_order_id, trade.taker_order_id) == (4, 1, 2)
    assert (trade.maker_owner, trade.taker_owner, trade.aggressor_side) == (70, 80, BUY)
    assert (trade.maker_remaining, trade.taker_remaining) == (6, 0)
    assert book.last_price == 100


def test_partially_filled_taker_rests_its_remainder_at_its_limit():
    book = new_book()
    ladder(book, asks=[(100, 3)])
    book.place(1, 1, BUY, LIMIT, 10, 101)
    evs = events(book)
    assert trades(evs) == [(1000, 1, 100, 3)]
    assert deltas(evs) == [(SELL, 100, 0), (BUY, 101, 7)]
    assert book.order(1).remaining == 7 and book.order(1).qty == 10
    assert book.best_bid() == 101 and book.best_ask() is None


def test_non_crossing_order_does_not_trade():
    book = new_book()
    ladder(book, asks=[(101, 3)], bids=[(99, 3)])
    book.place(1, 1, BUY, LIMIT, 5, 100)
    book.place(2, 2, SELL, LIMIT, 5, 101)
    evs = events(book)
    assert of_kind(evs, TRADE) == []
    assert book.snapshot().bids == [(100, 5), (99, 3)]
    assert book.snapshot().asks == [(101, 8)]


def test_cancel_removes_the_whole_remainder_and_updates_the_level_exactly():
    book = new_book()
    ladder(book, bids=[(100, 5), (100, 7), (99, 2)])  # 1000, 1001 at 100; 1002 at 99
    book.cancel(1000)
    evs = events(book)
    assert [e.kind for e in evs] == [CANCELLED, BOOK]
    assert (evs[0].order_id, evs[0].reason, evs[0].qty) == (1000, Cancel.USER, 5)
    assert (evs[1].side, evs[1].price, evs[1].qty) == (BUY, 100, 7)
    # the lazily cancelled entry is skipped by matching
    book.place(1, 1, SELL, LIMIT, 8, 99)
    assert trades(events(book)) == [(1001, 1, 100, 7), (1002, 1, 99, 1)]


def test_cancel_of_the_last_order_removes_the_level_and_custom_reasons_pass_through():
    book = new_book()
    ladder(book, asks=[(100, 5), (101, 5)])
    book.cancel(1000, reason="expired")
    evs = events(book)
    assert evs[0].reason == "expired"
    assert deltas(evs) == [(SELL, 100, 0)]
    assert book.best_ask() == 101
    assert book.snapshot().asks == [(101, 5)]


def test_cancel_and_amend_of_unknown_or_finished_orders_are_rejected_without_effect():
    book = new_book()
    ladder(book, asks=[(100, 5)])
    book.place(1, 1, BUY, LIMIT, 5, 100)  # fills 1000
    events(book)
    book.cancel(1000)
    book.cancel(12345)
    book.amend(1000, qty=3)
    evs = events(book)
    assert [(e.kind, e.order_id, e.reason, e.command) for e in evs] == [
        (REJECTED, 1000, Reject.UNKNOWN_ORDER, "cancel"),
        (REJECTED, 12345, Reject.UNKNOWN_ORDER, "cancel"),
        (REJECTED, 1000, Reject.UNKNOWN_ORDER, "amend"),
    ]
    assert book.snapshot().asks == [] and book.snapshot().bids == []


def test_many_cancels_behind_a_resting_head_keep_the_level_small_and_exact():
    book = new_book()
    rest(book, 1, BUY, 100, 1)
    for order_id in range(2, 2002):
        rest(book, order_id, BUY, 100, 2)
        book.cancel(order_id)
    events(book)
    level = book._bids.levels[100]
    assert len(level.orders) < 100  # compacted, not 2001 entries
    assert book.snapshot().bids == [(100, 1)]
    book.place(9999, 9, SELL, LIMIT, 5, 99)
    evs = events(book)
    assert trades(evs) == [(1, 9999, 100, 1)]
    assert book.snapshot().asks == [(99, 4)] and book.snapshot().bids == []


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(side="hold"), Reject.INVALID_SIDE),
        (dict(order_type="iceberg"), Reject.INVALID_ORDER_TYPE),
        (dict(tif="DAY"), Reject.INVALID_TIME_IN_FORCE),
        (dict(qty=0), Reject.INVALID_QUANTITY),
        (dict(qty=-3), Reject.INVALID_QUANTITY),
        (dict(qty=1.5), Reject.INVALID_QUANTITY),
        (dict(qty=None), Reject.INVALID_QUANTITY),
        (dict(price=0), Reject.INVALID_PRICE),
        (dict(price=None), Reject.INVALID_PRICE),
        (dict(price=100.0), Reject.INVALID_PRICE),
        (dict(stop_price=90), Reject.INVALID_STOP_PRICE),
        (dict(trail_ticks=5), Reject.INVALID_TRAIL),
        (dict(quote_qty=1000), Reject.INVALID_QUOTE_QUANTITY),
        (dict(display_qty=0), Reject.INVALID_DISPLAY_QUANTITY),
        (dict(display_qty=11), Reject.INVALID_DISPLAY_QUANTITY),
        (dict(display_qty=5, tif="IOC"), Reject.INVALID_DISPLAY_QUANTITY),
        (dict(post_only=True, tif="IOC"), Reject.INVALID_POST_ONLY),
    ],
)
def test_invalid_limit_orders_are_rejected_with_a_stable_reason_and_no_effect(kwargs, reason):
    book = new_book()
    args = dict(order_id=5, owner=1, side=BUY, order_type=LIMIT, qty=10, price=100, tif=GTC)
    args.update(kwargs)
    book.place(**args)
    evs = events(book)
    assert [(e.kind, e.order_id, e.reason, e.command) for e in evs] == [(REJECTED, 5, reason, "place")]
    assert len(book) == 0 and book.snapshot().bids == []


def test_duplicate_live_order_id_is_rejected_but_a_finished_id_may_be_reused():
    book = new_book()
    rest(book, 1, BUY, 100, 5)
    book.place(1, 1, SELL, LIMIT, 5, 200)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.DUPLICATE_ORDER_ID)]
    assert book.order(1).price == 100
    book.cancel(1)
    book.place(1, 1, SELL, LIMIT, 5, 200)
    assert [e.kind for e in events(book)] == [CANCELLED, BOOK, ACCEPTED, BOOK]


def test_drain_hands_over_each_event_once():
    book = new_book()
    book.place(1, 1, BUY, LIMIT, 10, 100)
    first = book.drain()
    assert len(first) == 2
    assert book.drain() == []
    book.cancel(1)
    assert [e[0] for e in book.drain()] == [CANCELLED, BOOK]


@pytest.mark.parametrize(
    "args",
    [
        (1, 1, BUY, 10, 100),
        (1, 1, SELL, 10, 100),
        (1, 1, "hold", 10, 100),
        (1, 1, BUY, 0, 100),
        (1, 1, BUY, 10, 0),
        (1, 1, BUY, 10, 100.0),
        (2, 1, BUY, 5, 101),
    ],
)
def test_place_limit_is_place_of_a_plain_gtc_limit_order(args):
    """The hot-path entry point emits exactly what the general one does, rejections included."""
    fast, general = new_book(), new_book()
    for book in (fast, general):
        rest(book, 2, SELL, 101, 3)
    order_id, owner, side, qty, price = args
    fast.place_limit(order_id, owner, side, qty, price)
    general.place(order_id, owner, side, LIMIT, qty, price)
    assert fast.drain() == general.drain()
    assert fast.open_orders() == general.open_orders()
