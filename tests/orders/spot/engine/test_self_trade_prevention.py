"""Self-trade prevention modes (``stp`` on ``place``): expire_maker (the default), expire_taker
and expire_both, on every path a taker matches: limit, market by quantity and by quote
amount, triggered stops, amends that re-price, and the FOK pre-check."""

import pytest

from orders.spot.engine import (
    ACCEPTED,
    BOOK,
    BUY,
    CANCELLED,
    EXPIRE_BOTH,
    EXPIRE_MAKER,
    EXPIRE_TAKER,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    REJECTED,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    TRADE,
    TRIGGERED,
    Cancel,
    OrderBook,
    Reject,
)

from .support import deltas, events, new_book, of_kind, rest, trades


def _cancels(evs):
    return [(e.order_id, e.owner, e.reason, e.qty) for e in of_kind(evs, CANCELLED)]


def _book_with_own_order_behind_another():
    """Asks: 100 x 3 (owner 8), then 100 x 5 (owner 7, the taker's own), then 101 x 4 (owner 9)."""
    book = new_book()
    rest(book, 1, SELL, 100, 3, owner=8)
    rest(book, 2, SELL, 100, 5, owner=7)
    rest(book, 3, SELL, 101, 4, owner=9)
    return book


def test_the_default_is_expire_maker_and_takes_the_fast_path():
    default, explicit, fast = new_book(), new_book(), new_book()
    for book in (default, explicit, fast):
        rest(book, 1, SELL, 100, 3, owner=8)
        rest(book, 2, SELL, 100, 5, owner=7)
    default.place(10, 7, BUY, LIMIT, 6, 100)
    explicit.place(10, 7, BUY, LIMIT, 6, 100, stp=EXPIRE_MAKER)
    fast.place_limit(10, 7, BUY, 6, 100)
    assert default.drain() == explicit.drain() == fast.drain()
    assert default.order(10).stp == EXPIRE_MAKER


def test_expire_maker_cancels_the_resting_order_and_the_taker_rests_its_remainder():
    book = _book_with_own_order_behind_another()
    book.place(10, 7, BUY, LIMIT, 6, 100, stp=EXPIRE_MAKER)
    evs = events(book)
    assert trades(evs) == [(1, 10, 100, 3)]
    assert _cancels(evs) == [(2, 7, Cancel.SELF_TRADE, 5)]
    assert book.order(10).remaining == 3 and book.snapshot().bids == [(100, 3)]


def test_expire_taker_cancels_the_takers_remainder_and_keeps_the_resting_order():
    book = _book_with_own_order_behind_another()
    book.place(10, 7, BUY, LIMIT, 9, 101, stp=EXPIRE_TAKER)
    evs = events(book)
    assert [e.kind for e in evs] == [ACCEPTED, TRADE, BOOK, CANCELLED]
    assert trades(evs) == [(1, 10, 100, 3)]  # its fill before meeting its own order stands
    assert _cancels(evs) == [(10, 7, Cancel.SELF_TRADE, 6)]
    assert deltas(evs) == [(SELL, 100, 5)]
    assert 2 in book and 10 not in book
    assert book.order(2).remaining == 5
    assert book.snapshot().asks == [(100, 5), (101, 4)] and book.snapshot().bids == []
    assert book.last_price == 100


def test_expire_taker_at_its_own_best_order_trades_nothing_and_leaves_the_book_as_it_was():
    book = new_book()
    rest(book, 1, SELL, 100, 5, owner=7)
    rest(book, 2, SELL, 100, 5, owner=8)
    before = book.snapshot()
    book.place(10, 7, BUY, LIMIT, 4, 100, stp=EXPIRE_TAKER)
    evs = events(book)
    assert [e.kind for e in evs] == [ACCEPTED, CANCELLED]  # no book delta: nothing changed
    assert _cancels(evs) == [(10, 7, Cancel.SELF_TRADE, 4)]
    after = book.snapshot()
    assert (after.bids, after.asks, after.last_price) == (before.bids, before.asks, before.last_price)


def test_expire_both_cancels_the_resting_order_and_the_taker():
    book = _book_with_own_order_behind_another()
    book.place(10, 7, BUY, LIMIT, 9, 101, stp=EXPIRE_BOTH)
    evs = events(book)
    assert [e.kind for e in evs] == [ACCEPTED, TRADE, CANCELLED, BOOK, CANCELLED]
    assert trades(evs) == [(1, 10, 100, 3)]
    assert _cancels(evs) == [(2, 7, Cancel.SELF_TRADE, 5), (10, 7, Cancel.SELF_TRADE, 6)]
    assert deltas(evs) == [(SELL, 100, 0)]
    assert 2 not in book and 10 not in book
    assert book.snapshot().asks == [(101, 4)] and book.snapshot().bids == []


def test_expire_both_cancels_a_whole_iceberg_and_the_taker():
    book = new_book()
    rest(book, 1, SELL, 100, 30, owner=7, display_qty=5)
    book.place(2, 7, BUY, LIMIT, 4, 100, stp=EXPIRE_BOTH)
    evs = events(book)
    assert _cancels(evs) == [(1, 7, Cancel.SELF_TRADE, 30), (2, 7, Cancel.SELF_TRADE, 4)]
    assert book.snapshot().bids == [] and book.snapshot().asks == []


def test_an_ioc_expired_by_self_trade_prevention_says_self_trade_not_ioc_remainder():
    book = _book_with_own_order_behind_another()
    book.place(10, 7, BUY, LIMIT, 9, 101, IOC, stp=EXPIRE_TAKER)
    assert _cancels(events(book)) == [(10, 7, Cancel.SELF_TRADE, 6)]


@pytest.mark.parametrize("stp", [EXPIRE_TAKER, EXPIRE_BOTH])
def test_market_order_by_quantity(stp):
    book = _book_with_own_order_behind_another()
    book.place(10, 7, BUY, MARKET, 9, stp=stp)
    evs = events(book)
    assert trades(evs) == [(1, 10, 100, 3)]
    expected = [(10, 7, Cancel.SELF_TRADE, 6)]
    if stp == EXPIRE_BOTH:
        expected.insert(0, (2, 7, Cancel.SELF_TRADE, 5))
    assert _cancels(evs) == expected
    assert (2 in book) == (stp == EXPIRE_TAKER)


@pytest.mark.parametrize("stp", [EXPIRE_TAKER, EXPIRE_BOTH])
def test_market_buy_by_quote_amount(stp):
    book = _book_with_own_order_behind_another()
    book.place(10, 7, BUY, MARKET, quote_qty=2000, stp=stp)
    evs = events(book)
    assert trades(evs) == [(1, 10, 100, 3)]
    # a quote-amount order's cancel carries no quantity (its remainder is an amount)
    assert _cancels(evs)[-1] == (10, 7, Cancel.SELF_TRADE, 0)
    assert len(of_kind(evs, CANCELLED)) == (2 if stp == EXPIRE_BOTH else 1)


@pytest.mark.parametrize("order_type", [STOP_LIMIT, STOP_MARKET])
def test_a_triggered_stop_applies_its_own_mode(order_type):
    book = new_book()
    rest(book, 1, SELL, 100, 1, owner=8)
    rest(book, 2, SELL, 101, 5, owner=7)  # the stop owner's own ask
    price = 101 if order_type == STOP_LIMIT else None
    book.place(10, 7, BUY, order_type, 3, price, stop_price=100, stp=EXPIRE_TAKER)
    book.place(11, 9, BUY, LIMIT, 1, 100)  # prints 100: the stop triggers and meets order 2
    evs = events(book)
    assert [e.order_id for e in of_kind(evs, TRIGGERED)] == [10]
    assert _cancels(evs) == [(10, 7, Cancel.SELF_TRADE, 3)]
    assert book.order(2).remaining == 5


def test_an_amend_that_crosses_takes_with_the_orders_mode():
    book = new_book()
    rest(book, 1, SELL, 101, 5, owner=7)
    rest(book, 2, BUY, 99, 4, owner=7, stp=EXPIRE_TAKER)
    book.amend(2, price=101)
    evs = events(book)
    assert _cancels(evs) == [(2, 7, Cancel.SELF_TRADE, 4)]
    assert 1 in book and 2 not in book
    assert book.snapshot().bids == []


@pytest.mark.parametrize("stp", [EXPIRE_TAKER, EXPIRE_BOTH])
def test_fok_is_decided_with_self_trade_prevention_first(stp):
    # Own order ahead of the liquidity it needs: the sweep would stop there, so the FOK is
    # unfillable and rejected; nothing is cancelled, not even under expire_both.
    book = _book_with_own_order_behind_another()
    before = book.snapshot()
    book.place(10, 7, BUY, LIMIT, 4, 101, FOK, stp=stp)
    evs = events(book)
    assert [(e.kind, e.reason) for e in evs] == [(REJECTED, Reject.FOK_UNFILLABLE)]
    after = book.snapshot()
    assert (after.bids, after.asks) == (before.bids, before.asks)
    # what trades before the own order is enough: it fills, never meeting its own order
    book.place(11, 7, BUY, LIMIT, 3, 101, FOK, stp=stp)
    evs = events(book)
    assert trades(evs) == [(1, 11, 100, 3)] and _cancels(evs) == []
    assert 2 in book


def test_fok_under_expire_maker_still_skips_the_owners_orders():
    book = _book_with_own_order_behind_another()
    book.place(10, 7, BUY, LIMIT, 7, 101, FOK, stp=EXPIRE_MAKER)
    evs = events(book)
    assert trades(evs) == [(1, 10, 100, 3), (3, 10, 101, 4)]
    assert _cancels(evs) == [(2, 7, Cancel.SELF_TRADE, 5)]


def test_fok_counts_no_iceberg_refill_queued_behind_the_owners_order():
    # The iceberg shows 2 and refills at the back, behind the own order: only 2 trade first.
    book = new_book()
    rest(book, 1, SELL, 100, 12, owner=50, display_qty=2)
    rest(book, 2, SELL, 100, 5, owner=7)
    book.place(3, 7, BUY, LIMIT, 3, 100, FOK, stp=EXPIRE_TAKER)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.FOK_UNFILLABLE)]
    book.place(4, 7, BUY, LIMIT, 2, 100, FOK, stp=EXPIRE_TAKER)
    assert trades(events(book)) == [(1, 4, 100, 2)]
    # at a level without its own order, the reserves count as before
    rest(book, 5, SELL, 101, 10, owner=51, display_qty=1)
    book.cancel(2)
    book.drain()
    book.place(6, 7, BUY, LIMIT, 15, 101, FOK, stp=EXPIRE_TAKER)
    evs = events(book)
    assert sum(t[3] for t in trades(evs)) == 15 and _cancels(evs) == []


def test_a_triggered_fok_stop_that_would_meet_its_own_order_is_cancelled_unfillable():
    book = new_book()
    rest(book, 1, SELL, 100, 1, owner=8)
    rest(book, 2, SELL, 101, 5, owner=7)
    rest(book, 3, SELL, 102, 5, owner=9)
    book.place(10, 7, BUY, STOP_LIMIT, 3, 102, FOK, stop_price=100, stp=EXPIRE_BOTH)
    book.place(11, 9, BUY, LIMIT, 1, 100)
    evs = events(book)
    assert _cancels(evs) == [(10, 7, Cancel.FOK_UNFILLABLE, 3)]
    assert 2 in book


def test_an_unknown_mode_is_rejected():
    book = new_book()
    book.place(1, 7, BUY, LIMIT, 1, 100, stp="cancel_newest")
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.INVALID_STP)]
    assert 1 not in book


def test_open_orders_and_rebuild_keep_the_mode():
    book = new_book()
    rest(book, 1, BUY, 99, 4, owner=7, stp=EXPIRE_TAKER)
    book.place(2, 7, SELL, STOP_MARKET, 2, stop_price=90, stp=EXPIRE_BOTH)
    book.drain()
    specs = book.open_orders()
    assert [(spec.order_id, spec.stp) for spec in specs] == [(1, EXPIRE_TAKER), (2, EXPIRE_BOTH)]
    rebuilt = OrderBook.rebuild(specs, symbol="TEST", seq=book.seq, market_band_ppm=None)
    assert rebuilt.open_orders() == specs
    rest(rebuilt, 3, SELL, 101, 4, owner=7)
    rebuilt.amend(1, price=101)
    assert _cancels(events(rebuilt)) == [(1, 7, Cancel.SELF_TRADE, 4)]
