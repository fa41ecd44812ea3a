"""IOC, FOK (all-or-nothing, decided before any fill), post-only, and self-trade prevention."""

from orders.spot.engine import ACCEPTED, BOOK, BUY, CANCELLED, FOK, IOC, LIMIT, REJECTED, SELL, TRADE, Cancel, Reject

from .support import deltas, events, ladder, new_book, of_kind, rest, trades


def test_ioc_trades_what_it_can_and_cancels_the_rest_without_resting():
    book = new_book()
    ladder(book, asks=[(100, 3), (101, 4), (103, 9)])
    book.place(1, 1, BUY, LIMIT, 10, 101, IOC)
    evs = events(book)
    assert trades(evs) == [(1000, 1, 100, 3), (1001, 1, 101, 4)]
    cancelled = of_kind(evs, CANCELLED)
    assert [(c.order_id, c.reason, c.qty) for c in cancelled] == [(1, Cancel.IOC_REMAINDER, 3)]
    assert evs[-1].kind == CANCELLED
    assert book.best_bid() is None and 1 not in book


def test_ioc_that_does_not_cross_is_accepted_then_cancelled_whole():
    book = new_book()
    ladder(book, asks=[(105, 3)])
    book.place(1, 1, BUY, LIMIT, 10, 100, IOC)
    evs = events(book)
    assert [(e.kind, getattr(e, "qty", None)) for e in evs] == [(ACCEPTED, 10), (CANCELLED, 10)]


def test_fok_fills_completely_across_levels_when_the_book_can():
    book = new_book()
    ladder(book, asks=[(100, 3), (101, 4), (102, 9)])
    book.place(1, 1, BUY, LIMIT, 10, 102, FOK)
    evs = events(book)
    assert trades(evs) == [(1000, 1, 100, 3), (1001, 1, 101, 4), (1002, 1, 102, 3)]
    assert of_kind(evs, CANCELLED) == []
    assert evs[-2].taker_remaining == 0


def test_fok_that_cannot_fill_entirely_is_rejected_before_any_fill():
    book = new_book()
    ladder(book, asks=[(100, 3), (101, 4), (103, 9)])
    before = book.snapshot()
    book.place(1, 1, BUY, LIMIT, 10, 101, FOK)  # only 7 within 101
    evs = events(book)
    assert [(e.kind, e.reason) for e in evs] == [(REJECTED, Reject.FOK_UNFILLABLE)]
    after = book.snapshot()
    assert (after.bids, after.asks, after.last_price) == (before.bids, before.asks, before.last_price)


def test_fok_counts_iceberg_reserves_but_not_the_owners_own_orders():
    book = new_book()
    rest(book, 1, SELL, 100, 12, owner=50, display_qty=2)  # shows 2, 10 hidden
    rest(book, 2, SELL, 100, 5, owner=7)  # the taker's own: self-trade prevention would cancel it
    book.place(3, 7, BUY, LIMIT, 15, 100, FOK)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.FOK_UNFILLABLE)]
    book.place(4, 7, BUY, LIMIT, 12, 100, FOK)
    evs = events(book)
    assert sum(t[3] for t in trades(evs)) == 12
    assert [(e.order_id, e.reason) for e in of_kind(evs, CANCELLED)] == [(2, Cancel.SELF_TRADE)]


def test_fok_not_crossing_at_all_is_rejected():
    book = new_book()
    book.place(1, 1, SELL, LIMIT, 1, 100, FOK)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.FOK_UNFILLABLE)]


def test_post_only_rests_when_it_does_not_cross_and_is_rejected_when_it_would_take():
    book = new_book()
    ladder(book, asks=[(101, 5)], bids=[(99, 5)])
    book.place(1, 1, BUY, LIMIT, 5, 100, post_only=True)
    assert [e.kind for e in events(book)] == [ACCEPTED, BOOK]
    book.place(2, 2, BUY, LIMIT, 5, 101, post_only=True)
    book.place(3, 3, SELL, LIMIT, 5, 100, post_only=True)
    evs = events(book)
    assert [(e.kind, e.order_id, e.reason) for e in evs] == [
        (REJECTED, 2, Reject.POST_ONLY_WOULD_TAKE),
        (REJECTED, 3, Reject.POST_ONLY_WOULD_TAKE),
    ]
    assert book.snapshot().asks == [(101, 5)] and book.snapshot().bids == [(100, 5), (99, 5)]


def test_self_trade_prevention_cancels_the_resting_order_and_the_taker_carries_on():
    book = new_book()
    rest(book, 1, SELL, 100, 5, owner=7)
    rest(book, 2, SELL, 100, 5, owner=8)
    rest(book, 3, SELL, 101, 5, owner=7)
    rest(book, 4, SELL, 101, 5, owner=9)
    book.place(10, 7, BUY, LIMIT, 8, 101)
    evs = events(book)
    kinds = [
        (e.kind, getattr(e, "order_id", None) or getattr(e, "maker_order_id", None))
        for e in evs
        if e.kind in (TRADE, CANCELLED)
    ]
    assert kinds == [(CANCELLED, 1), (TRADE, 2), (CANCELLED, 3), (TRADE, 4)]
    assert [(c.reason, c.qty, c.owner) for c in of_kind(evs, CANCELLED)] == [
        (Cancel.SELF_TRADE, 5, 7),
        (Cancel.SELF_TRADE, 5, 7),
    ]
    assert trades(evs) == [(2, 10, 100, 5), (4, 10, 101, 3)]
    assert all(t.maker_owner != t.taker_owner for t in of_kind(evs, TRADE))
    assert deltas(evs) == [(SELL, 100, 0), (SELL, 101, 2)]
    assert 1 not in book and 3 not in book


def test_self_trade_prevention_cancels_a_whole_iceberg_including_its_reserve():
    book = new_book()
    rest(book, 1, SELL, 100, 30, owner=7, display_qty=5)
    book.place(2, 7, BUY, LIMIT, 4, 100)
    evs = events(book)
    assert [(c.order_id, c.reason, c.qty) for c in of_kind(evs, CANCELLED)] == [(1, Cancel.SELF_TRADE, 30)]
    assert trades(evs) == []
    assert book.snapshot().bids == [(100, 4)] and book.snapshot().asks == []
