"""Snapshots, open orders and rebuilding a book from them; event serialisation; the GC
guard; Decimal <-> int units."""

import gc
import json
from decimal import Decimal

import pytest

from orders.spot.engine import (
    ACCEPTED,
    BUY,
    FIELDS,
    LIMIT,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    TRADE,
    TRAILING_STOP,
    HotPathGC,
    OrderBook,
    RebuildError,
    RestingOrder,
    UnitError,
    Units,
    decode,
    encode,
    to_dict,
)

from .support import ladder, new_book, rest


def _busy_book():
    book = new_book()
    ladder(book, asks=[(101, 5), (101, 3), (103, 7)], bids=[(99, 4), (98, 6), (98, 1)])
    rest(book, 1, SELL, 102, 25, owner=5, display_qty=10)
    book.place(2, 6, BUY, LIMIT, 12, 102)  # takes 101 x 8 and 4 of the iceberg
    book.place(3, 7, BUY, STOP_LIMIT, 2, 104, stop_price=103)
    book.place(4, 8, SELL, STOP_MARKET, 3, stop_price=95)
    book.place(5, 9, SELL, TRAILING_STOP, 1, trail_ticks=4)
    book.place(6, 10, BUY, TRAILING_STOP, 1, trail_ppm=30_000)
    book.drain()
    return book


def test_snapshot_levels_best_first_with_depth_and_sequence():
    book = _busy_book()
    snap = book.snapshot()
    assert snap.bids == [(99, 4), (98, 7)]
    assert snap.asks == [(102, 6), (103, 7)]  # the iceberg shows 6 (10 - 4) of its 21 open
    assert snap.seq == book.seq and snap.last_price == 102
    top = book.snapshot(depth=1)
    assert top.bids == [(99, 4)] and top.asks == [(102, 6)]
    assert json.loads(json.dumps(snap.to_dict()))["asks"] == [[102, 6], [103, 7]]


def test_open_orders_describe_every_resting_order_and_pending_stop():
    book = _busy_book()
    specs = {o.order_id: o for o in book.open_orders()}
    assert set(specs) == {1, 1002, 1003, 1004, 1005, 3, 4, 5, 6}
    iceberg = specs[1]
    assert (iceberg.remaining, iceberg.reserve, iceberg.visible, iceberg.display_qty) == (21, 15, 6, 10)
    assert specs[3].stop_price == 103 and specs[3].triggered is False
    assert specs[5].trail_reference == 102 and specs[5].stop_price == 98
    assert specs[6].trail_reference == 102 and specs[6].stop_price == 102 + 3  # 3% of 102 rounds down to 3
    assert book.order(5) == specs[5]


def test_rebuild_from_open_orders_continues_exactly_like_the_original():
    original = _busy_book()
    rebuilt = OrderBook.rebuild(
        original.open_orders(), symbol="TEST", seq=original.seq, last_price=original.last_price, market_band_ppm=None
    )
    assert rebuilt.snapshot() == original.snapshot()
    assert rebuilt.open_orders() == original.open_orders()
    assert rebuilt.drain() == []
    for book in (original, rebuilt):
        book.place(20, 20, BUY, LIMIT, 40, 103)  # sweeps the iceberg (refreshes), triggers the buy stop
        book.cancel(1003)
        book.amend(1004, qty=1)
        book.place(21, 21, SELL, LIMIT, 30, 90)  # triggers the sell stops
    expected = original.drain()
    assert {"trade", "refreshed", "triggered", "cancelled", "amended"} <= {e[0] for e in expected}
    assert [encode(e) for e in rebuilt.drain()] == [encode(e) for e in expected]
    assert rebuilt.open_orders() == original.open_orders()


def test_rebuild_keeps_time_priority_as_given():
    specs = [RestingOrder(i, i, BUY, LIMIT, 100, 5) for i in (7, 3, 5)]
    book = OrderBook.rebuild(specs, seq=10)
    book.place(1, 1, SELL, LIMIT, 15, 100)
    assert [e[4] for e in book.drain() if e[0] == TRADE] == [7, 3, 5]


def test_rebuild_restores_a_triggered_stop_limit_as_resting_and_keeps_sequence_numbers_going():
    spec = RestingOrder(1, 1, BUY, STOP_LIMIT, 100, 5, stop_price=101, triggered=True)
    book = OrderBook.rebuild([spec], seq=500, last_price=101)
    assert book.snapshot().bids == [(100, 5)]
    book.cancel(1)
    assert [e[1] for e in book.drain()] == [501, 502]


@pytest.mark.parametrize(
    "specs, message",
    [
        ([RestingOrder(1, 1, BUY, LIMIT, 100, 5), RestingOrder(1, 2, SELL, LIMIT, 101, 5)], "duplicate"),
        ([RestingOrder(1, 1, BUY, LIMIT, 101, 5), RestingOrder(2, 2, SELL, LIMIT, 101, 5)], "crossed"),
        ([RestingOrder(1, 1, BUY, LIMIT, 100, 5, 6)], "remaining"),
        ([RestingOrder(1, 1, BUY, LIMIT, 100, 5, 0)], "remaining"),
        ([RestingOrder(1, 1, BUY, LIMIT, 100, 20, reserve=5, display_qty=10)], "iceberg"),
        ([RestingOrder(1, 1, BUY, LIMIT, 100, 20, reserve=5)], "reserve"),
        ([RestingOrder(1, 1, BUY, "market", None, 5)], "cannot be open"),
        ([RestingOrder(1, 1, BUY, STOP_MARKET, None, 5)], "stop_price"),
        ([RestingOrder(1, 1, BUY, TRAILING_STOP, None, 5, trail_ticks=3)], "trail_reference"),
        (
            [
                RestingOrder(1, 1, SELL, TRAILING_STOP, None, 5, trail_ticks=3, trail_reference=100),
                RestingOrder(2, 1, SELL, TRAILING_STOP, None, 5, trail_ticks=3, trail_reference=101),
            ],
            "trailing reference",
        ),
        ([RestingOrder(1, 1, BUY, LIMIT, 100, 5, tif="IOC")], "GTC"),
    ],
)
def test_rebuild_refuses_inconsistent_input(specs, message):
    with pytest.raises(RebuildError, match=message):
        OrderBook.rebuild(specs)


def test_events_encode_deterministically_and_decode_back():
    book = _busy_book()
    book.place(20, 20, BUY, LIMIT, 40, 103)
    evs = book.drain()
    assert {e[0] for e in evs} >= {ACCEPTED, TRADE, "refreshed", "triggered", "book"}
    for event in evs:
        data = encode(event)
        assert isinstance(data, bytes) and b" " not in data
        assert decode(data) == event
        assert decode(to_dict(event)) == event
        assert list(to_dict(event)) == ["type", *FIELDS[event[0]]]
        assert all(type(v) in (int, str, bool, type(None)) for v in event)


def test_hot_path_gc_freezes_disables_and_restores():
    assert gc.isenabled()
    with HotPathGC(young_limit=100) as guard:
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
        junk = [[i] for i in range(1000)]  # tracked allocations since the freeze
        assert guard.checkpoint() is True
        assert gc.get_count()[0] < 100
        assert guard.checkpoint() is False
        assert guard.full_collect() > 0
        del junk
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert guard.checkpoints == 1 and guard.max_pause_ns > 0 and guard.enter_pause_ns > 0


def test_book_structures_hold_no_reference_cycles():
    book = _busy_book()
    book.place(20, 20, BUY, LIMIT, 40, 103)
    book.drain()
    gc.collect()
    gc.disable()
    try:
        del book
        # everything the book held was freed by reference counting alone
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_units_convert_exactly_and_refuse_off_grid_values():
    units = Units(Decimal("0.01"), Decimal("0.00001"))
    assert units.price_to_ticks("65000.12") == 6500012
    assert units.ticks_to_price(6500012) == Decimal("65000.12")
    assert str(units.ticks_to_price(6500000)) == "65000.00"
    assert units.qty_to_lots(Decimal("0.015")) == 1500
    assert units.lots_to_qty(1500) == Decimal("0.01500")
    assert units.quote_to_int("1000.12345678") == 10001234567  # rounded down to 1e-7 (tick x lot)
    assert units.int_to_quote(10001234567) == Decimal("1000.1234567")
    assert units.quote_value(6500012, 1500) == Decimal("975.0018")
    assert Units.percent_to_ppm("0.125") == 1250 and Units.percent_to_ppm(Decimal("2")) == 20_000
    for bad in ("65000.123", "0", "-1", "abc", 1.5, "NaN", "Infinity"):
        with pytest.raises(UnitError):
            units.price_to_ticks(bad)
    with pytest.raises(UnitError):
        units.quote_to_int("0.00000001")
    for bad in ("0", "100", "0.00001"):
        with pytest.raises(UnitError):
            Units.percent_to_ppm(bad)
