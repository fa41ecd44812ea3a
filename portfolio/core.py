"""Lots and PnL from a trader's history, as plain data and functions (no database, no clock).

A history is a list of ``Event``: something of one asset came in (``quantity > 0``, ``usdt``
= what it cost, fees included) or went out (``quantity < 0``, ``usdt`` = what it brought,
fees taken off). ``replay`` orders the events by ``Event.key`` and books them with FIFO or
average cost into a ``Book``: open lots per asset, every disposal with its cost and PnL, the
realized PnL per asset and the money the trader put in (``net_invested``).

USDT is the unit of account: one USDT costs one USDT, so it keeps no lots and spending it on
an asset is not a disposal. Only USDT that leaves for nothing (a withdrawal fee) is a
realized loss.

Exactness: quantities are used as given (the ledger's amounts); every USDT figure is
quantized to USDT's scale, a part of a lot's cost rounded half-even and the rest of the lot
keeping the remainder, so costs are conserved to the last unit and the same history always
gives the same book. For every history (each trade's USDT in equal to its USDT out):

    Σ realized + Σ (value − open cost) = value − net_invested
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from operator import attrgetter

from trading.money import quantum

CASH = "USDT"
FIFO, AVERAGE = "fifo", "average"
METHODS = (FIFO, AVERAGE)
# Money the trader brings in or takes out, valued in USDT when it moved: what
# ``net_invested`` counts (a withdrawal fee is not one: it is a loss).
FLOW_KINDS = frozenset({"deposit", "withdrawal", "transfer_in", "transfer_out"})
ZERO = Decimal(0)
_USDT = quantum(CASH)
# Digits for a product or a cost share before it is quantized: far beyond any amount, so
# the only rounding is the quantization to USDT's scale.
_EXACT = Context(prec=80)


def usdt(value: Decimal) -> Decimal:
    """A USDT figure at USDT's scale, rounded half-even (costs and values, not balances)."""
    return value.quantize(_USDT, rounding=ROUND_HALF_EVEN, context=_EXACT)


def worth(quantity: Decimal, price: Decimal) -> Decimal:
    """``quantity`` at ``price`` in USDT: the exact product, then at USDT's scale."""
    return usdt(_EXACT.multiply(quantity, price))


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    asset: str  # USDT, BTC, ETH, or an option series (BTC-20261225-100000-C)
    quantity: Decimal  # > 0 acquired, < 0 disposed of
    usdt: Decimal  # acquisition: its cost, fees included; disposal: its proceeds, fees taken off
    kind: str  # buy, sell, deposit, withdrawal, fee, option_open, option_close, option_exercise, option_expiry, ...
    source: str  # book, smart, rfq, wallet, option
    reference: str  # what caused it (a ledger transfer or batch, an option order): one per asset

    @property
    def key(self) -> tuple[datetime, str, str]:
        """The replay order: by time, then by reference, so ties are always broken alike."""
        return _key(self)

    @property
    def flow(self) -> Decimal:
        """What this event adds to the money invested (deposits +, withdrawals −)."""
        if self.kind not in FLOW_KINDS:
            return ZERO
        return self.usdt if self.quantity > 0 else -self.usdt


@dataclass(frozen=True)
class Lot:
    acquired_at: datetime
    quantity: Decimal
    cost_usdt: Decimal
    source: str


@dataclass(frozen=True)
class Disposal:
    at: datetime
    asset: str
    quantity: Decimal  # positive: how much went out
    proceeds_usdt: Decimal
    cost_usdt: Decimal
    pnl_usdt: Decimal
    kind: str = "sell"
    reference: str = ""
    # when the lots it used were acquired, oldest first (FIFO: each lot's date; average
    # cost: when the pooled position last opened from zero); none for USDT
    acquired: tuple[datetime, ...] = ()


class OutOfOrder(Exception):
    """An event older than one already booked for its asset: the book must be replayed."""


@dataclass(slots=True)
class Holding:
    """One asset in a book: what is open (quantity and cost, with its lots under FIFO; one
    pooled lot under average cost), and what its disposals realized."""

    asset: str
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    realized: Decimal = ZERO
    # FIFO's lots as plain (acquired_at, quantity, cost, source) tuples: a cached book of
    # thousands of them is read back several times faster than as objects
    lots: deque = field(default_factory=deque)
    opened_at: datetime | None = None  # average cost: when the position last opened from zero
    last_key: tuple | None = None

    @property
    def average_cost(self) -> Decimal | None:
        return self.cost / self.quantity if self.quantity > 0 else None


@dataclass(slots=True)
class Book:
    method: str
    holdings: dict[str, Holding] = field(default_factory=dict)
    disposals: list[Disposal] = field(default_factory=list)
    net_invested: Decimal = ZERO
    events: int = 0

    def holding(self, asset: str) -> Holding:
        found = self.holdings.get(asset)
        if found is None:
            found = self.holdings[asset] = Holding(asset)
        return found

    def open_lots(self, asset: str) -> list[Lot]:
        held = self.holdings.get(asset)
        if held is None or held.quantity <= 0:
            return []
        if asset == CASH:
            return [Lot(held.opened_at, held.quantity, held.cost, "cash")] if held.opened_at else []
        if self.method == FIFO:
            return [Lot(*lot) for lot in held.lots]
        return [Lot(held.opened_at, held.quantity, held.cost, AVERAGE)]

    @property
    def realized(self) -> Decimal:
        return sum((h.realized for h in self.holdings.values()), ZERO)

    def extend(self, events) -> Book:
        """Book ``events`` after what is booked already (they are sorted here). Raises
        ``OutOfOrder`` if one is older than the last booked event of its asset: then only a
        replay from the start gives the same book."""
        for event in sorted(events, key=_key):
            self.apply(event)
        return self

    def apply(self, event: Event) -> None:
        if event.quantity == 0 and event.usdt == 0:
            return
        held = self.holding(event.asset)
        key = _key(event)
        if event.asset != CASH and held.last_key is not None and key <= held.last_key:
            raise OutOfOrder(f"{event.asset} event {key} is not after {held.last_key}")
        held.last_key = key
        self.events += 1
        self.net_invested += event.flow
        if event.asset == CASH:
            self._cash(held, event)
        elif event.quantity > 0:
            self._acquire(held, event)
        else:
            self._dispose(held, event)

    # --- booking ----------------------------------------------------------------------------------

    def _cash(self, held: Holding, event: Event) -> None:
        # a USDT costs a USDT: only what leaves for less than its amount is a loss (a fee)
        if event.quantity > 0 and held.quantity <= 0:
            held.opened_at = event.at
        held.quantity += event.quantity
        held.cost = held.quantity
        if event.quantity < 0:
            amount = -event.quantity
            pnl = usdt(event.usdt) - amount
            if pnl:
                held.realized += pnl
                self.disposals.append(
                    Disposal(event.at, CASH, amount, usdt(event.usdt), amount, pnl, event.kind, event.reference)
                )
        elif event.usdt != event.quantity:  # USDT that came in for more or less than its amount
            pnl = event.quantity - usdt(event.usdt)
            held.realized += pnl
            self.disposals.append(Disposal(event.at, CASH, ZERO, ZERO, ZERO, pnl, event.kind, event.reference))

    def _acquire(self, held: Holding, event: Event) -> None:
        cost = usdt(event.usdt)
        if held.quantity <= 0:
            held.opened_at = event.at
        held.quantity += event.quantity
        held.cost += cost
        if self.method == FIFO:
            held.lots.append((event.at, event.quantity, cost, event.source))

    def _dispose(self, held: Holding, event: Event) -> None:
        amount = -event.quantity
        proceeds = usdt(event.usdt)
        open_quantity = max(held.quantity, ZERO)
        covered = min(amount, open_quantity)
        if self.method == FIFO:
            cost, acquired = self._take_fifo(held, covered)
        else:
            acquired = (held.opened_at,) if covered > 0 and held.opened_at is not None else ()
            cost = held.cost if covered == open_quantity else _share(held.cost, covered, open_quantity)
        # Beyond the open quantity (never, for a history the ledger allowed) there is no
        # cost to take: that part is booked at zero cost.
        held.quantity -= amount
        held.cost -= cost
        if held.quantity <= 0:
            held.lots.clear()
        pnl = proceeds - cost
        held.realized += pnl
        self.disposals.append(
            Disposal(event.at, event.asset, amount, proceeds, cost, pnl, event.kind, event.reference, acquired)
        )

    @staticmethod
    def _take_fifo(held: Holding, amount: Decimal) -> tuple[Decimal, tuple[datetime, ...]]:
        """The cost of the oldest ``amount`` (taken out of the lots) and when those lots were acquired."""
        cost = ZERO
        lots = held.lots
        acquired = []
        while amount > 0 and lots:
            acquired_at, quantity, lot_cost, source = lots[0]
            if not acquired or acquired[-1] != acquired_at:
                acquired.append(acquired_at)
            if quantity <= amount:
                lots.popleft()
                cost += lot_cost
                amount -= quantity
            else:
                part = _share(lot_cost, amount, quantity)
                lots[0] = (acquired_at, quantity - amount, lot_cost - part, source)
                cost += part
                amount = ZERO
        return cost, tuple(acquired)


def _share(cost: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``part`` of ``whole``'s ``cost``, at USDT's scale (half-even)."""
    return usdt(_EXACT.divide(_EXACT.multiply(cost, part), whole))


_key = attrgetter("at", "reference", "asset")


def replay(events, method: str) -> Book:
    """Book ``events`` (in any order: they are sorted by ``Event.key``) with ``method``,
    ``"fifo"`` or ``"average"``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    return Book(method).extend(events)


def unrealized(book: Book, prices: dict[str, Decimal]) -> dict[str, Decimal]:
    """Per open asset priced in ``prices`` (USDT per unit): its value less its open cost."""
    result = {}
    for asset, held in book.holdings.items():
        if held.quantity and asset in prices:
            result[asset] = worth(held.quantity, prices[asset]) - held.cost
    return result


def value_of(book: Book, prices: dict[str, Decimal]) -> Decimal:
    """The book's open quantities at ``prices`` (USDT at one), each quantized."""
    total = ZERO
    for asset, held in book.holdings.items():
        if held.quantity:
            price = Decimal(1) if asset == CASH else prices[asset]
            total += worth(held.quantity, price)
    return total
