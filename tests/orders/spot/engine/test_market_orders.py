"""Market orders: protection band (ticks and/or parts per million of the best price at
arrival), no liquidity, FOK, and market buys for a quote amount."""

import pytest

from orders.spot.engine import ACCEPTED, BUY, CANCELLED, FOK, GTC, MARKET, REJECTED, SELL, Cancel, OrderBook, Reject

from .support import events, ladder, new_book, of_kind, trades


def test_market_order_sweeps_levels_and_never_rests():
    book = new_book()
    ladder(book, asks=[(100, 2), (101, 2), (102, 2)])
    book.place(1, 1, BUY, MARKET, 5, tif=GTC)  # GTC means nothing for a market order: it never rests
    evs = events(book)
    assert evs[0].kind == ACCEPTED and evs[0].price is None and evs[0].qty == 5
    assert trades(evs) == [(1000, 1, 100, 2), (1001, 1, 101, 2), (1002, 1, 102, 1)]
    assert of_kind(evs, CANCELLED) == []
    assert 1 not in book and book.best_bid() is None


def test_market_order_stops_at_the_band_in_ticks_and_cancels_the_rest():
    book = new_book(market_band_ticks=2)
    ladder(book, asks=[(100, 2), (101, 2), (102, 2), (103, 50)])
    book.place(1, 1, BUY, MARKET, 10)
    evs = events(book)
    assert [t[2] for t in trades(evs)] == [100, 101, 102]  # best 100 + 2 ticks
    assert [(c.order_id, c.reason, c.qty) for c in of_kind(evs, CANCELLED)] == [(1, Cancel.PROTECTION_BAND, 4)]
    assert book.snapshot().asks == [(103, 50)]


def test_market_sell_band_in_parts_per_million_of_the_best_bid():
    book = new_book(market_band_ppm=20_000)  # 2% of 1000 = 20 ticks
    ladder(book, bids=[(1000, 1), (990, 1), (980, 1), (979, 5)])
    book.place(1, 1, SELL, MARKET, 10)
    evs = events(book)
    assert [t[2] for t in trades(evs)] == [1000, 990, 980]
    assert of_kind(evs, CANCELLED)[0].reason == Cancel.PROTECTION_BAND


def test_tighter_of_ticks_and_ppm_applies():
    book = new_book(market_band_ticks=50, market_band_ppm=10_000)  # 1% of 1000 = 10 ticks < 50
    ladder(book, asks=[(1000, 1), (1010, 1), (1011, 1)])
    book.place(1, 1, BUY, MARKET, 3)
    assert [t[2] for t in trades(events(book))] == [1000, 1010]


def test_default_band_is_five_percent():
    book = OrderBook("X")
    ladder(book, asks=[(1000, 1), (1050, 1), (1051, 1)])
    book.place(1, 1, BUY, MARKET, 3)
    assert [t[2] for t in trades(events(book))] == [1000, 1050]


def test_market_order_into_an_empty_side_is_cancelled_for_no_liquidity():
    book = new_book()
    ladder(book, bids=[(99, 5)])
    book.place(1, 1, BUY, MARKET, 5)
    evs = events(book)
    assert [(e.kind, getattr(e, "reason", None), getattr(e, "qty", None)) for e in evs] == [
        (ACCEPTED, None, 5),
        (CANCELLED, Cancel.NO_LIQUIDITY, 5),
    ]


def test_market_order_that_exhausts_the_side_is_cancelled_for_no_liquidity():
    book = new_book()
    ladder(book, asks=[(100, 2)])
    book.place(1, 1, BUY, MARKET, 5)
    evs = events(book)
    assert [(c.reason, c.qty) for c in of_kind(evs, CANCELLED)] == [(Cancel.NO_LIQUIDITY, 3)]


def test_market_fok_respects_the_band_and_is_all_or_nothing():
    book = new_book(market_band_ticks=1)
    ladder(book, asks=[(100, 2), (101, 2), (102, 10)])
    book.place(1, 1, BUY, MARKET, 5, tif=FOK)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.FOK_UNFILLABLE)]
    book.place(2, 2, BUY, MARKET, 4, tif=FOK)
    evs = events(book)
    assert trades(evs) == [(1000, 2, 100, 2), (1001, 2, 101, 2)]
    assert of_kind(evs, CANCELLED) == []


def test_quote_amount_market_buy_spends_at_most_the_quote_in_whole_lots():
    book = new_book()
    ladder(book, asks=[(100, 3), (110, 3), (120, 10)])
    book.place(1, 1, BUY, MARKET, quote_qty=700)
    evs = events(book)
    assert evs[0].kind == ACCEPTED and evs[0].qty is None
    # 3 x 100 = 300, 3 x 110 = 330 -> 70 left buys no lot at 120
    assert trades(evs) == [(1000, 1, 100, 3), (1001, 1, 110, 3)]
    assert all(e.taker_remaining is None for e in evs if e.kind == "trade")
    assert [(c.reason, c.qty) for c in of_kind(evs, CANCELLED)] == [(Cancel.QUOTE_SPENT, 0)]
    spent = sum(price * qty for _, _, price, qty in trades(evs))
    assert spent == 630 <= 700


def test_quote_amount_market_buy_partially_takes_a_level():
    book = new_book()
    ladder(book, asks=[(100, 10)])
    book.place(1, 1, BUY, MARKET, quote_qty=450)
    evs = events(book)
    assert trades(evs) == [(1000, 1, 100, 4)]
    assert of_kind(evs, CANCELLED)[0].reason == Cancel.QUOTE_SPENT
    assert book.snapshot().asks == [(100, 6)]


def test_quote_amount_market_buy_spent_exactly():
    book = new_book()
    ladder(book, asks=[(100, 10)])
    book.place(1, 1, BUY, MARKET, quote_qty=500)
    evs = events(book)
    assert trades(evs) == [(1000, 1, 100, 5)]
    assert of_kind(evs, CANCELLED)[0].reason == Cancel.QUOTE_SPENT


def test_quote_amount_market_buy_stops_at_the_band_or_the_end_of_the_book():
    book = new_book(market_band_ticks=5)
    ladder(book, asks=[(100, 1), (106, 100)])
    book.place(1, 1, BUY, MARKET, quote_qty=10_000)
    assert of_kind(events(book), CANCELLED)[0].reason == Cancel.PROTECTION_BAND
    book = new_book()
    ladder(book, asks=[(100, 1)])
    book.place(1, 1, BUY, MARKET, quote_qty=10_000)
    assert of_kind(events(book), CANCELLED)[0].reason == Cancel.NO_LIQUIDITY


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(side=SELL, quote_qty=100),
        dict(side=BUY, quote_qty=100, qty=1),
        dict(side=BUY, quote_qty=0),
        dict(side=BUY, quote_qty=100, tif=FOK),
    ],
)
def test_quote_amount_is_for_market_buys_only(kwargs):
    book = new_book()
    ladder(book, asks=[(100, 10)], bids=[(99, 10)])
    args = dict(order_id=1, owner=1, order_type=MARKET, qty=None)
    args.update(kwargs)
    book.place(**args)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.INVALID_QUOTE_QUANTITY)]


def test_market_order_with_a_price_is_rejected():
    book = new_book()
    book.place(1, 1, BUY, MARKET, 5, 100)
    assert [(e.kind, e.reason) for e in events(book)] == [(REJECTED, Reject.INVALID_PRICE)]


def test_band_configuration_is_validated():
    with pytest.raises(ValueError):
        OrderBook("X", market_band_ticks=-1)
    with pytest.raises(ValueError):
        OrderBook("X", market_band_ppm=0.05)
