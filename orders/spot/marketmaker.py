"""The market maker: keeps the spot books alive with a ladder of quotes around the index.

One singleton (lease ``marketmaker``) trades as a system user (``MARKET_MAKER_EMAIL``, funded
by ``orders.demo``) through the ordinary order entry, ``spot_order_place``: its quotes hold
funds, match and settle like anyone's, and it has no path into the engine of its own. Only
the open-order cap does not apply to it (order entry exempts that email).

Per symbol, each round (``MARKET_MAKER_INTERVAL_SECONDS``):

* the index is stale: pull every quote (a price the platform cannot check is not quoted)
  and wait for a fresh one;
* no quotes, the index moved ``MARKET_MAKER_REQUOTE_BPS`` from where the quotes were built,
  or one of them traded: start a new *generation* -- a ladder of ``MARKET_MAKER_LEVELS`` GTC
  limit orders a side around the index -- and cancel the rest;
* every order of the market maker that is not in the current ladder is cancelled
  (``spot_order_cancel(wait=0)``: the runner carries it out), and a new quote that would
  cross one of those still in the book waits for the next round, so its own quotes never
  meet (self-trade prevention would cancel them, and the tape would show it).

Client order ids are ``mm:<symbol>:<side>:<level>:<generation>``, and a ladder is a pure
function of (symbol, generation, anchor): placing a quote twice -- a retried round, or a
deposed leader that wakes up mid-round -- replays the first order instead of doubling it
(order entry's ``client_order_id`` idempotency). A new leader continues from the newest
generation in the database: it adopts that ladder as it stands if it is whole, untouched
and still near the index, and otherwise starts the next generation, cancelling what is left
of the old one. Either way a restart never leaves two ladders in the book.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction

from accounts.models import User
from ledger.services import IdempotencyConflict
from marketdata.models import Instrument, InstrumentKind
from marketdata.selectors import index_is_fresh, index_latest
from trading.errors import Conflict, DomainError, NotFound
from trading.leases import LeaseLost, Singleton, lease_fence, lease_renew

from .engine import BUY, SELL
from .models import LIVE_STATUSES, SpotOrder
from .services import order_request, spot_order_cancel, spot_order_place

logger = logging.getLogger(__name__)

LEASE = "marketmaker"
BPS = Decimal("0.0001")
PREFIX = "mm"
# How many of its latest orders a new leader reads to find the newest generation: a deposed
# leader may have placed an older generation after the newest one started.
GENERATION_LOOKBACK = 200


class MarketMakerMissing(Exception):
    """The market maker's user does not exist yet (``manage.py seed_demo`` creates it)."""


def market_maker_user() -> User | None:
    return User.objects.filter(email=settings.MARKET_MAKER_EMAIL).first()


# --- the ladder (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    side: str
    level: int
    price: Decimal
    quantity: Decimal


def client_order_id(symbol: str, side: str, level: int, generation: int) -> str:
    return f"{PREFIX}:{symbol}:{side}:{level}:{generation}"


def generation_of(client_order_id_: str) -> int | None:
    parts = client_order_id_.split(":")
    if len(parts) != 5 or parts[0] != PREFIX or not parts[4].isdigit():
        return None
    return int(parts[4])


@dataclass(frozen=True)
class LadderConfig:
    spread_bps: Decimal
    levels: int
    step_bps: Decimal
    quantity: Decimal  # the base size of the best level

    def __post_init__(self):
        if self.spread_bps <= 0 or self.levels < 1 or self.step_bps < 0 or self.quantity <= 0:
            raise ValueError(f"bad market maker settings: {self}")


def ladder_config(symbol: str) -> LadderConfig:
    quantities = settings.MARKET_MAKER_LEVEL_QUANTITY
    if symbol not in quantities:
        raise ValueError(f"MARKET_MAKER_LEVEL_QUANTITY has no size for {symbol}")
    return LadderConfig(
        spread_bps=Decimal(str(settings.MARKET_MAKER_SPREAD_BPS)),
        levels=int(settings.MARKET_MAKER_LEVELS),
        step_bps=Decimal(str(settings.MARKET_MAKER_LEVEL_STEP_BPS)),
        quantity=Decimal(str(quantities[symbol])),
    )


def _wobble(symbol: str, side: str, level: int, generation: int) -> Decimal:
    """A factor in [0.8, 1.2) fixed by the quote's identity, so replaying a generation
    builds exactly the same orders (same request, same idempotency fingerprint)."""
    digest = hashlib.sha256(f"{symbol}:{side}:{level}:{generation}".encode()).digest()
    return Decimal("0.8") + Decimal(int.from_bytes(digest[:4], "big") % 4000) / Decimal(10000)


def quote_ladder(
    *,
    symbol: str,
    anchor: Decimal,
    generation: int,
    tick: Decimal,
    lot: Decimal,
    min_notional: Decimal,
    config: LadderConfig,
) -> list[Quote]:
    """Bids rounded down and asks rounded up to the tick, each level strictly outside the
    one before; sizes grow with depth and vary a little, never below the minimum notional."""
    quotes = []
    half = config.spread_bps / 2
    best_bid = best_ask = None
    for level in range(config.levels):
        offset = (half + config.step_bps * level) * BPS
        bid = (anchor * (1 - offset) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
        ask = (anchor * (1 + offset) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
        if best_bid is not None:
            bid, ask = min(bid, best_bid - tick), max(ask, best_ask + tick)
        elif ask <= bid:  # a spread narrower than one tick
            ask = bid + tick
        best_bid, best_ask = bid, ask
        for side, price in ((BUY, bid), (SELL, ask)):
            if price <= 0:
                continue
            size = config.quantity * (1 + Decimal("0.25") * level) * _wobble(symbol, side, level, generation)
            size = (size / lot).to_integral_value(rounding=ROUND_FLOOR) * lot
            smallest = (min_notional / price / lot).to_integral_value(rounding=ROUND_CEILING) * lot
            quotes.append(Quote(side, level, price, max(size, smallest)))
    return quotes


def moved_bps(index: Decimal, anchor: Decimal) -> Decimal:
    return abs(index - anchor) / anchor / BPS


# --- the singleton's work -----------------------------------------------------------------------


@dataclass
class _Symbol:
    """What the market maker keeps of one symbol between rounds."""

    instrument: Instrument
    config: LadderConfig
    generation: int
    anchor: Decimal | None = None  # the index the current ladder was built around
    quotes: dict[str, Quote] = field(default_factory=dict)  # client_order_id -> quote
    placed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # refused by order entry: not retried this generation
    resumed: bool = False  # the first round after leading has looked for a ladder to adopt
    paused: bool = False


class MarketMaker:
    def __init__(self, *, symbols: Iterable[str] | None = None, announce: Callable[[str], object] | None = None):
        self.symbols = list(symbols if symbols is not None else settings.MARKET_MAKER_SYMBOLS)
        self.announce = announce if announce is not None else (lambda line: print(line, flush=True))
        self.requote_bps = Decimal(str(settings.MARKET_MAKER_REQUOTE_BPS))
        self.holder = ""
        self.ttl = 3.0
        self.user: User | None = None
        self.books: dict[str, _Symbol] = {}
        self._epoch: int | None = None  # set while a round runs under the lease
        self._renewed_at = 0.0

    def _say(self, line: str, level: int = logging.INFO) -> None:
        logger.log(level, line)
        self.announce(line)

    def on_lead(self, epoch: int | None = None) -> None:
        """Load the user and, per symbol, the newest generation it quoted."""
        self.user = market_maker_user()
        if self.user is None:
            raise MarketMakerMissing(f"No market maker user {settings.MARKET_MAKER_EMAIL}; run `manage.py seed_demo`.")
        instruments = {
            i.symbol: i
            for i in Instrument.objects.filter(symbol__in=self.symbols, kind=InstrumentKind.SPOT, active=True)
        }
        self.books = {}
        for symbol in self.symbols:
            if symbol not in instruments:
                self._say(f"SKIP {symbol}: not a listed spot market", logging.WARNING)
                continue
            self.books[symbol] = _Symbol(instruments[symbol], ladder_config(symbol), self._latest_generation(symbol))

    def _latest_generation(self, symbol: str) -> int:
        ids = (
            SpotOrder.objects.filter(user=self.user, symbol=symbol, client_order_id__startswith=f"{PREFIX}:{symbol}:")
            .order_by("-id")
            .values_list("client_order_id", flat=True)[:GENERATION_LOOKBACK]
        )
        return max((g for g in map(generation_of, ids) if g is not None), default=0)

    def work(self, epoch: int) -> bool:
        # Order entry is not fenced by this lease; checking it first keeps a deposed leader
        # that wakes up from quoting (and replayed ids make any overlap harmless).
        with transaction.atomic(durable=True):
            lease_fence(name=LEASE, epoch=epoch, holder=self.holder)
        self._epoch, self._renewed_at = epoch, time.monotonic()
        try:
            self.quote_round()
        finally:
            self._epoch = None
        return False

    def _keep_lease(self) -> None:
        """A full re-quote is dozens of order entries, which can outlast the TTL on a busy
        database: renew as the round goes (the singleton renews only between rounds)."""
        if self._epoch is None or time.monotonic() - self._renewed_at < self.ttl / 4:
            return
        if not lease_renew(name=LEASE, holder=self.holder, epoch=self._epoch, ttl=self.ttl):
            raise LeaseLost(f"lease {LEASE!r} lost mid-round")
        self._renewed_at = time.monotonic()

    def quote_round(self) -> dict[str, str]:
        """One pass over every symbol; returns what happened to each (for tests and logs)."""
        if self.user is None:
            self.on_lead()
        return {symbol: self._quote(book) for symbol, book in self.books.items()}

    # --- one symbol --------------------------------------------------------------------------

    def _quote(self, book: _Symbol) -> str:
        instrument = book.instrument
        symbol = instrument.symbol
        live = list(
            SpotOrder.objects.filter(user=self.user, symbol=symbol, status__in=LIVE_STATUSES).values(
                "id", "client_order_id", "side", "price", "quantity", "filled_quantity", "cancel_requested_at"
            )
        )
        by_id = {row["client_order_id"]: row for row in live if row["client_order_id"]}
        latest = index_latest(underlying=instrument.base)
        if not index_is_fresh(latest):
            pulled = self._cancel(row for row in live if row["cancel_requested_at"] is None)
            if not book.paused:
                self._say(
                    f"PAUSED {symbol}: the {instrument.base} index is stale; {pulled} quotes pulled", logging.WARNING
                )
            book.paused, book.anchor, book.quotes, book.placed, book.failed = True, None, {}, set(), set()
            book.resumed = True
            return "stale"
        index = latest.price

        reason = None
        if not book.resumed:
            book.resumed = True
            if self._adopt(book, by_id, index):
                self._say(
                    f"ADOPTED {symbol} gen={book.generation}: its {len(book.quotes)} quotes stand around {book.anchor}"
                )
        if book.anchor is None:
            reason = "resume" if book.paused else "start"
        elif moved_bps(index, book.anchor) >= self.requote_bps:
            reason = f"index moved {moved_bps(index, book.anchor):.1f}bps"
        else:
            for coid in book.placed:
                row = by_id.get(coid)
                if row is None or row["filled_quantity"] or row["cancel_requested_at"] is not None:
                    reason = "a quote traded"
                    break
        book.paused = False
        if reason:
            book.generation += 1
            book.anchor = index
            ladder = quote_ladder(
                symbol=symbol,
                anchor=index,
                generation=book.generation,
                tick=instrument.tick_size,
                lot=instrument.lot_size,
                min_notional=instrument.min_notional,
                config=book.config,
            )
            book.quotes = {client_order_id(symbol, q.side, q.level, book.generation): q for q in ladder}
            book.placed, book.failed = set(), set()

        strays = [row for row in live if row["client_order_id"] not in book.quotes]
        self._cancel(row for row in strays if row["cancel_requested_at"] is None)
        # Until the runner has taken an old quote out, a new one on the other side must not reach it.
        old_asks = [row["price"] for row in strays if row["side"] == SELL and row["price"] is not None]
        old_bids = [row["price"] for row in strays if row["side"] == BUY and row["price"] is not None]
        lowest_ask, highest_bid = min(old_asks, default=None), max(old_bids, default=None)
        placed = deferred = 0
        refused = []
        for coid, quote in book.quotes.items():
            if coid in book.placed or coid in book.failed:
                continue
            if coid in by_id:
                book.placed.add(coid)
                continue
            if (quote.side == BUY and lowest_ask is not None and quote.price >= lowest_ask) or (
                quote.side == SELL and highest_bid is not None and quote.price <= highest_bid
            ):
                deferred += 1
                continue
            self._keep_lease()
            try:
                spot_order_place(
                    user=self.user,
                    request=order_request(
                        **{
                            "symbol": symbol,
                            "side": quote.side,
                            "type": "limit",
                            "time_in_force": "GTC",
                            "price": str(quote.price),
                            "quantity": str(quote.quantity),
                            "client_order_id": coid,
                        }
                    ),
                )
            except IdempotencyConflict:
                # The id was placed with other terms (by a deposed leader): this generation is
                # spoiled, the next round starts another.
                book.anchor = None
                break
            except DomainError as exc:  # not enough funds, out of the price band...
                book.failed.add(coid)
                refused.append(f"{quote.side} L{quote.level}: {exc.code}")
                continue
            book.placed.add(coid)
            placed += 1
        if reason:
            bids = sorted((q.price for q in book.quotes.values() if q.side == BUY), reverse=True)
            asks = sorted(q.price for q in book.quotes.values() if q.side == SELL)
            line = (
                f"QUOTED {symbol} gen={book.generation} index={index} bid={bids[0] if bids else '-'} "
                f"ask={asks[0] if asks else '-'} levels={len(bids)}+{len(asks)} ({reason})"
            )
            if deferred:
                line += f"; {deferred} wait for old quotes to leave the book"
            self._say(line)
        if refused:
            self._say(f"REFUSED {symbol} gen={book.generation}: " + ", ".join(refused), logging.WARNING)
        if reason:
            return "quoted"
        return "placed" if placed else "held"

    def _adopt(self, book: _Symbol, by_id: dict, index: Decimal) -> bool:
        """Take over the newest generation's ladder as it stands, if it is whole, untraded
        and still near the index (a restart then changes nothing in the book)."""
        symbol, generation = book.instrument.symbol, book.generation
        if generation == 0:
            return False
        quotes = {}
        for side in (BUY, SELL):
            for level in range(book.config.levels):
                coid = client_order_id(symbol, side, level, generation)
                row = by_id.get(coid)
                if row is None or row["filled_quantity"] or row["cancel_requested_at"] is not None:
                    return False
                quotes[coid] = Quote(side, level, row["price"], row["quantity"])
        best_bid = quotes[client_order_id(symbol, BUY, 0, generation)].price
        best_ask = quotes[client_order_id(symbol, SELL, 0, generation)].price
        anchor = (best_bid + best_ask) / 2
        if moved_bps(index, anchor) >= self.requote_bps:
            return False
        book.anchor, book.quotes, book.placed, book.failed = anchor, quotes, set(quotes), set()
        return True

    def _cancel(self, rows: Iterable[dict]) -> int:
        cancelled = 0
        for row in rows:
            self._keep_lease()
            try:
                spot_order_cancel(user=self.user, order_id=row["id"], wait=0)
            except (Conflict, NotFound):  # it closed (traded out) meanwhile
                continue
            cancelled += 1
        return cancelled


def marketmaker_singleton(
    *, ttl: float = 3.0, announce: Callable[[str], object] | None = None, symbols: Iterable[str] | None = None
) -> Singleton:
    maker = MarketMaker(symbols=symbols, announce=announce)
    singleton = Singleton(
        LEASE,
        work=maker.work,
        ttl=ttl,
        interval=settings.MARKET_MAKER_INTERVAL_SECONDS,
        on_lead=maker.on_lead,
        announce=announce,
    )
    maker.holder, maker.ttl = singleton.holder, ttl
    singleton.maker = maker
    return singleton


__all__ = [
    "LEASE",
    "MarketMaker",
    "MarketMakerMissing",
    "Quote",
    "client_order_id",
    "market_maker_user",
    "marketmaker_singleton",
    "quote_ladder",
]
