"""The lots and PnL core: FIFO and average cost on hand-worked histories, and on random
histories against a plain reference written here (lists of lots, nothing shared with the
core), with realized + unrealized = value − net invested for both methods."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio.core import AVERAGE, FIFO, Event, OutOfOrder, replay, unrealized, value_of

D = Decimal
T0 = datetime(2026, 3, 1, tzinfo=UTC)
CENT_MICRO = D("0.000001")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def buy(minute, asset, quantity, cost, ref=None, source="book"):
    ref = ref or f"t{minute}"
    return [
        Event(at(minute), asset, D(quantity), D(cost), "buy", source, ref),
        Event(at(minute), "USDT", -D(cost), D(cost), "buy", source, ref),
    ]


def sell(minute, asset, quantity, proceeds, ref=None):
    ref = ref or f"t{minute}"
    return [
        Event(at(minute), asset, -D(quantity), D(proceeds), "sell", "book", ref),
        Event(at(minute), "USDT", D(proceeds), D(proceeds), "sell", "book", ref),
    ]


def deposit(minute, asset, quantity, value):
    return [Event(at(minute), asset, D(quantity), D(value), "deposit", "wallet", f"d{minute}")]


# --- worked examples -------------------------------------------------------------------------------------


HISTORY = [
    *deposit(0, "USDT", "10000", "10000"),
    *buy(1, "BTC", "0.1", "6000"),  # 60,000 a BTC
    *buy(2, "BTC", "0.1", "7000"),  # 70,000 a BTC
    *sell(3, "BTC", "0.15", "12000"),  # 80,000 a BTC
]


def test_fifo_sells_the_oldest_lots_first():
    book = replay(HISTORY, FIFO)
    btc = book.holdings["BTC"]
    # the first lot whole (6000) and half the second (3500)
    [disposal] = book.disposals
    assert (disposal.quantity, disposal.cost_usdt, disposal.proceeds_usdt, disposal.pnl_usdt) == (
        D("0.15"),
        D("9500"),
        D("12000"),
        D("2500"),
    )
    assert (btc.quantity, btc.cost, btc.realized) == (D("0.05"), D("3500"), D("2500"))
    [lot] = book.open_lots("BTC")
    assert (lot.acquired_at, lot.quantity, lot.cost_usdt, lot.source) == (at(2), D("0.05"), D("3500"), "book")


def test_average_cost_pools_the_lots():
    book = replay(HISTORY, AVERAGE)
    btc = book.holdings["BTC"]
    # 13000 for 0.2: 0.15 of it cost 9750
    [disposal] = book.disposals
    assert (disposal.cost_usdt, disposal.pnl_usdt) == (D("9750"), D("2250"))
    assert (btc.quantity, btc.cost, btc.realized) == (D("0.05"), D("3250"), D("2250"))
    [lot] = book.open_lots("BTC")
    assert (lot.acquired_at, lot.quantity, lot.cost_usdt, lot.source) == (at(1), D("0.05"), D("3250"), "average")


def test_each_disposal_says_when_the_lots_it_used_were_acquired():
    history = [
        *HISTORY,
        *sell(4, "BTC", "0.05", "4000"),  # what is left of the second lot: the position closes
        *buy(5, "BTC", "0.2", "14000"),  # and opens again
        *sell(6, "BTC", "0.1", "7500"),
        Event(at(7), "USDT", D("-1"), D(0), "fee", "wallet", "w7"),
    ]
    fifo = replay(history, FIFO)
    assert [d.acquired for d in fifo.disposals] == [(at(1), at(2)), (at(2),), (at(5),), ()]
    average = replay(history, AVERAGE)
    # one pooled lot: since the position last opened from zero
    assert [d.acquired for d in average.disposals] == [(at(1),), (at(1),), (at(5),), ()]
    assert [d.kind for d in average.disposals] == ["sell", "sell", "sell", "fee"]


def test_a_share_of_a_cost_is_rounded_half_even_and_the_rest_keeps_the_remainder():
    events = [*deposit(0, "ETH", "3", "100"), Event(at(1), "ETH", D("-1"), D("40"), "sell", "book", "s")]
    for method in (FIFO, AVERAGE):
        book = replay(events, method)
        # a third of 100 is 33.333333(3): the sold part takes 33.333333, the lot keeps 66.666667
        assert book.disposals[0].cost_usdt == D("33.333333")
        assert book.holdings["ETH"].cost == D("66.666667")


def test_usdt_is_the_unit_of_account_and_only_a_fee_in_it_is_a_loss():
    events = [
        *deposit(0, "USDT", "1000", "1000"),
        *buy(1, "BTC", "0.01", "700"),
        Event(at(2), "USDT", D("-100"), D("100"), "withdrawal", "wallet", "w"),
        Event(at(2), "USDT", D("-1"), D("0"), "fee", "wallet", "wf"),
    ]
    book = replay(events, FIFO)
    usdt = book.holdings["USDT"]
    assert (usdt.quantity, usdt.cost, usdt.realized) == (D("199"), D("199"), D("-1"))
    assert [(d.asset, d.kind, d.pnl_usdt) for d in book.disposals] == [("USDT", "fee", D("-1"))]
    assert book.net_invested == D("900")


def test_the_order_of_the_input_does_not_matter_and_ties_break_by_reference():
    events = [
        *deposit(0, "BTC", "1", "50000"),
        *sell(5, "BTC", "0.3", "20000", ref="b"),
        *buy(5, "BTC", "0.5", "30000", ref="a"),  # same minute: "a" comes before "b"
        *sell(6, "BTC", "0.9", "63000"),
    ]
    expected = replay(events, FIFO)
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        assert replay(shuffled, FIFO) == expected
    # "a" (the buy) was booked first: the sale at minute 5 still took the deposit's lot
    assert expected.disposals[0].cost_usdt == D("15000")


def test_extending_a_book_gives_the_replayed_book_and_refuses_an_older_event():
    events = [*deposit(0, "USDT", "10000", "10000"), *buy(1, "ETH", "1", "3000"), *sell(2, "ETH", "0.4", "1500")]
    for method in (FIFO, AVERAGE):
        book = replay(events[:3], method).extend(events[3:])
        assert book == replay(events, method)
        with pytest.raises(OutOfOrder):
            book.extend(buy(1.5, "ETH", "1", "3000"))


def test_a_disposal_beyond_the_open_lots_is_booked_at_zero_cost():
    events = [*deposit(0, "ETH", "1", "3000"), Event(at(1), "ETH", D("-1.5"), D("6000"), "sell", "book", "s")]
    for method in (FIFO, AVERAGE):
        [disposal] = replay(events, method).disposals
        assert (disposal.cost_usdt, disposal.pnl_usdt) == (D("3000"), D("3000"))


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError):
        replay([], "lifo")


# --- random histories against the reference -----------------------------------------------------------------


def q6(value: Decimal) -> Decimal:
    return value.quantize(CENT_MICRO, rounding=ROUND_HALF_EVEN)


class Reference:
    """FIFO and average cost the plain way: a list of [quantity, cost] lots per asset
    (average: one), realized PnL per disposal; a part of a lot's cost is rounded half-even
    to USDT's scale and the lot keeps the rest. USDT keeps no lots."""

    def __init__(self, method):
        self.method = method
        self.lots: dict[str, list[list[Decimal]]] = {}
        self.cash = D(0)
        self.cash_realized = D(0)
        self.realized: dict[str, Decimal] = {}
        self.disposals: list[tuple] = []
        self.invested = D(0)

    def run(self, events):
        for event in sorted(events, key=lambda e: (e.at, e.reference, e.asset)):
            if event.kind in ("deposit", "withdrawal"):
                self.invested += event.usdt if event.quantity > 0 else -event.usdt
            if event.asset == "USDT":
                self.cash += event.quantity
                if event.quantity < 0 and event.usdt != -event.quantity:
                    self.cash_realized += event.usdt + event.quantity
                continue
            lots = self.lots.setdefault(event.asset, [])
            if event.quantity > 0:
                if self.method == FIFO or not lots:
                    lots.append([event.quantity, event.usdt])
                else:
                    lots[0][0] += event.quantity
                    lots[0][1] += event.usdt
                continue
            left, cost = -event.quantity, D(0)
            while left > 0:
                lot = lots[0]
                if lot[0] <= left:
                    cost += lot[1]
                    left -= lot[0]
                    lots.pop(0)
                else:
                    part = q6(lot[1] * left / lot[0])
                    cost += part
                    lot[0] -= left
                    lot[1] -= part
                    left = D(0)
            pnl = event.usdt - cost
            self.realized[event.asset] = self.realized.get(event.asset, D(0)) + pnl
            self.disposals.append((event.asset, -event.quantity, event.usdt, cost, pnl))
        return self


ASSETS = {"BTC": (D("0.00001"), 60000), "ETH": (D("0.0001"), 3000), "BTC-20260327-60000-C": (D("0.01"), 2000)}


@st.composite
def histories(draw):
    """Deposits, buys, sells, withdrawals with fees and option trades, each valid against what
    the trader holds at that moment; several share a minute."""
    events = [Event(at(0), "USDT", D("1000000"), D("1000000"), "deposit", "wallet", "d0")]
    held = {asset: D(0) for asset in ASSETS}
    minute = 0
    for n in range(draw(st.integers(min_value=1, max_value=40))):
        minute += draw(st.sampled_from([0, 0, 1, 7]))
        asset = draw(st.sampled_from(sorted(ASSETS)))
        lot, price = ASSETS[asset]
        price = D(draw(st.integers(min_value=price // 2, max_value=price * 2)))
        action = draw(st.sampled_from(["buy", "buy", "sell", "deposit", "withdraw"]))
        quantity = lot * draw(st.integers(min_value=1, max_value=300))
        fee = q6(price * quantity * D("0.001"))
        ref = f"e{n:03d}"
        when = at(minute)
        if action == "deposit" and asset in ("BTC", "ETH"):
            events.append(Event(when, asset, quantity, q6(quantity * price), "deposit", "wallet", ref))
            held[asset] += quantity
        elif action == "buy" or held[asset] == 0 or (action == "deposit"):
            cost = q6(quantity * price) + fee
            events.append(Event(when, asset, quantity, cost, "buy", "book", ref))
            events.append(Event(when, "USDT", -cost, cost, "buy", "book", ref))
            held[asset] += quantity
        else:
            quantity = min(quantity, held[asset])
            held[asset] -= quantity
            proceeds = max(q6(quantity * price) - fee, D(0))
            if action == "sell" or asset.endswith("-C"):
                events.append(Event(when, asset, -quantity, proceeds, "sell", "book", ref))
                events.append(Event(when, "USDT", proceeds, proceeds, "sell", "book", ref))
            else:
                value = q6(quantity * price)
                events.append(Event(when, asset, -quantity, value, "withdrawal", "wallet", ref))
                if held[asset] >= lot:  # the fee, in the asset, from what is left
                    held[asset] -= lot
                    events.append(Event(when, asset, -lot, D(0), "fee", "wallet", ref + "f"))
    if draw(st.booleans()):
        events.append(Event(at(minute + 1), "USDT", D("-10"), D("9"), "withdrawal", "wallet", "wu"))
        events.append(Event(at(minute + 1), "USDT", D("-1"), D("0"), "fee", "wallet", "wuf"))
    prices = {asset: D(draw(st.integers(min_value=1, max_value=200000))) / 7 for asset in ASSETS}
    return events, prices


@settings(max_examples=300, deadline=None)
@given(histories(), st.sampled_from([FIFO, AVERAGE]))
def test_random_histories_match_the_reference_and_reconcile(history, method):
    events, prices = history
    book = replay(events, method)
    ref = Reference(method).run(events)

    assert [
        (d.asset, d.quantity, d.proceeds_usdt, d.cost_usdt, d.pnl_usdt) for d in book.disposals if d.asset != "USDT"
    ] == ref.disposals
    for asset in ASSETS:
        lots = ref.lots.get(asset, [])
        held = book.holdings.get(asset)
        quantity = held.quantity if held else D(0)
        assert quantity == sum((lot[0] for lot in lots), D(0))
        assert (held.cost if held else D(0)) == sum((lot[1] for lot in lots), D(0))
        assert (held.realized if held else D(0)) == ref.realized.get(asset, D(0))
        if method == FIFO:
            assert [(lot.quantity, lot.cost_usdt) for lot in book.open_lots(asset)] == [tuple(lot) for lot in lots]
    assert book.holdings["USDT"].quantity == ref.cash
    assert book.holdings["USDT"].realized == ref.cash_realized
    assert book.net_invested == ref.invested

    # every figure reconciles: what was made (realized and not) is what is held less what was put in
    value = value_of(book, prices)
    assert book.realized + sum(unrealized(book, prices).values(), D(0)) == value - book.net_invested

    # and a book extended in two parts is the book replayed at once
    ordered = sorted(events, key=lambda e: e.key)
    cut = len(ordered) // 2
    while 0 < cut < len(ordered) and ordered[cut].at == ordered[cut - 1].at:
        cut += 1
    assert replay(ordered[:cut], method).extend(ordered[cut:]) == book
