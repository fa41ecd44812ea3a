"""Amend (reducing the quantity keeps time priority, a price change or an increase loses it)
and icebergs (display refreshed from the reserve, each refresh loses time priority)."""

from orders.spot.engine import AMENDED, BOOK, BUY, CANCELLED, LIMIT, REFRESHED, REJECTED, SELL, TRADE, Cancel, Reject

from .support import deltas, events, ladder, new_book, of_kind, rest, trades


def _priority_probe(book):
    """Sell into the bids at 100 one lot at a time: the makers in the order they trade."""
    makers = []
    for n in range(50):
        book.place(900_000 + n, 999, SELL, LIMIT, 1, 100)
        hit = of_kind(events(book), TRADE)
        if not hit:
            break
        makers.append(hit[0].maker_order_id)
    return makers


def test_reducing_quantity_keeps_time_priority():
    book = new_book()
    ladder(book, bids=[(100, 5), (100, 5), (100, 5)])  # 1000, 1001, 1002
    book.amend(1000, qty=2)
    evs = events(book)
    amended = of_kind(evs, AMENDED)[0]
    assert (amended.qty, amended.remaining, amended.priority_kept, amended.price) == (2, 2, True, 100)
    assert deltas(evs) == [(BUY, 100, 12)]
    assert _priority_probe(book) == [1000, 1000, 1001, 1001, 1001, 1001, 1001, 1002, 1002, 1002, 1002, 1002]


def test_increasing_quantity_loses_time_priority():
    book = new_book()
    ladder(book, bids=[(100, 1), (100, 1)])
    book.amend(1000, qty=2)
    evs = events(book)
    assert of_kind(evs, AMENDED)[0].priority_kept is False
    assert deltas(evs)[-1] == (BUY, 100, 3)
    assert _priority_probe(book) == [1001, 1000, 1000]


def test_price_change_loses_priority_and_moves_the_quantity():
    book = new_book()
    ladder(book, bids=[(100, 1), (99, 1), (99, 1)])  # 1000 @100, 1001, 1002 @99
    book.amend(1000, price=99)
    evs = events(book)
    assert of_kind(evs, AMENDED)[0].priority_kept is False
    assert deltas(evs) == [(BUY, 100, 0), (BUY, 99, 3)]
    book.place(5, 5, SELL, LIMIT, 3, 99)
    assert [t[0] for t in trades(events(book))] == [1001, 1002, 1000]


def test_amend_quantity_is_the_total_including_what_already_filled():
    book = new_book()
    rest(book, 1, BUY, 100, 10)
    book.place(2, 2, SELL, LIMIT, 4, 100)
    events(book)
    book.amend(1, qty=6)  # 4 filled, 2 left open
    amended = of_kind(events(book), AMENDED)[0]
    assert (amended.qty, amended.remaining) == (6, 2)
    assert book.order(1).remaining == 2 and book.order(1).qty == 6
    book.amend(1, qty=4)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.AMEND_BELOW_FILLED)]
    assert book.order(1).remaining == 2


def test_amend_to_a_crossing_price_trades_as_a_new_order_would():
    book = new_book()
    ladder(book, asks=[(101, 3)], bids=[(99, 5)])  # ask 1000, bid 1001
    book.amend(1001, price=102)
    evs = events(book)
    assert [e.kind for e in evs] == [AMENDED, BOOK, TRADE, BOOK, BOOK]
    assert trades(evs) == [(1000, 1001, 101, 3)]
    assert book.snapshot().bids == [(102, 2)] and book.snapshot().asks == []


def test_post_only_amend_that_would_take_is_rejected_and_leaves_the_order():
    book = new_book()
    ladder(book, asks=[(101, 3)])
    rest(book, 1, BUY, 99, 5, post_only=True)
    book.amend(1, price=101)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.POST_ONLY_WOULD_TAKE)]
    assert book.order(1).price == 99 and book.snapshot().bids == [(99, 5)]


def test_amend_rejections():
    book = new_book()
    rest(book, 1, BUY, 99, 5)
    book.amend(1, qty=5, price=99)
    book.amend(1, qty=0)
    book.amend(1, price=-1)
    evs = events(book)
    assert [e.reason for e in evs] == [Reject.AMEND_NO_CHANGE, Reject.INVALID_QUANTITY, Reject.INVALID_PRICE]
    assert all(e.command == "amend" for e in evs)


def test_iceberg_shows_only_its_display_size():
    book = new_book()
    book.place(1, 1, SELL, LIMIT, 25, 100, display_qty=10)
    evs = events(book)
    assert deltas(evs) == [(SELL, 100, 10)]
    order = book.order(1)
    assert (order.remaining, order.reserve, order.visible, order.display_qty) == (25, 15, 10, 10)


def test_iceberg_refresh_loses_time_priority():
    book = new_book()
    rest(book, 1, SELL, 100, 25, display_qty=10)
    rest(book, 2, SELL, 100, 5)
    book.place(3, 3, BUY, LIMIT, 12, 100)
    evs = events(book)
    # 10 from the iceberg's display, then it refreshes behind order 2, which trades next
    assert trades(evs) == [(1, 3, 100, 10), (2, 3, 100, 2)]
    refreshed = of_kind(evs, REFRESHED)
    assert [(r.order_id, r.visible, r.reserve) for r in refreshed] == [(1, 10, 5)]
    assert [e.kind for e in evs].index(REFRESHED) == [e.kind for e in evs].index(TRADE) + 1
    assert deltas(evs) == [(SELL, 100, 13)]  # 3 left of order 2 + the refreshed 10
    book.place(4, 4, BUY, LIMIT, 4, 100)
    assert trades(events(book)) == [(2, 4, 100, 3), (1, 4, 100, 1)]


def test_an_aggressive_taker_consumes_refresh_after_refresh_and_the_last_slice_is_the_remainder():
    book = new_book()
    rest(book, 1, SELL, 100, 23, display_qty=10)
    book.place(2, 2, BUY, LIMIT, 30, 100)
    evs = events(book)
    assert trades(evs) == [(1, 2, 100, 10), (1, 2, 100, 10), (1, 2, 100, 3)]
    assert [(r.visible, r.reserve) for r in of_kind(evs, REFRESHED)] == [(10, 3), (3, 0)]
    assert [t.maker_remaining for t in of_kind(evs, TRADE)] == [13, 3, 0]
    assert book.snapshot().bids == [(100, 7)] and book.snapshot().asks == []


def test_iceberg_as_a_taker_trades_its_whole_quantity_then_rests_showing_the_display():
    book = new_book()
    ladder(book, asks=[(100, 4)])
    book.place(1, 1, BUY, LIMIT, 30, 100, display_qty=5)
    evs = events(book)
    assert trades(evs) == [(1000, 1, 100, 4)]
    assert deltas(evs) == [(SELL, 100, 0), (BUY, 100, 5)]
    order = book.order(1)
    assert (order.remaining, order.visible, order.reserve) == (26, 5, 21)


def test_reducing_an_iceberg_takes_from_the_reserve_first_and_keeps_priority():
    book = new_book()
    rest(book, 1, SELL, 100, 25, display_qty=10)
    book.amend(1, qty=12)
    evs = events(book)
    amended = of_kind(evs, AMENDED)[0]
    assert (amended.remaining, amended.reserve, amended.priority_kept) == (12, 2, True)
    assert deltas(evs) == []  # the visible 10 did not change
    book.amend(1, qty=6)
    evs = events(book)
    assert of_kind(evs, AMENDED)[0].reserve == 0
    assert deltas(evs) == [(SELL, 100, 6)]


def test_cancelling_an_iceberg_cancels_its_reserve_too():
    book = new_book()
    rest(book, 1, SELL, 100, 25, display_qty=10)
    book.cancel(1)
    evs = events(book)
    assert [(c.qty, c.reason) for c in of_kind(evs, CANCELLED)] == [(25, Cancel.USER)]
    assert deltas(evs) == [(SELL, 100, 0)]
