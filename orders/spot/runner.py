"""The engine runner: the single writer of one symbol's book (LMAX style).

It holds the symbol's lease (``engine:<SYMBOL>``); on taking it, it rebuilds the book from
the symbol's open orders (``on_lead``). Then each ``work`` round is one transaction, fenced
by the lease epoch:

1. take up to ``ENGINE_BATCH_SIZE`` new orders in arrival (id) order and the cancel requests;
2. feed them to the in-memory book (``orders.spot.engine``) and read its events;
3. write the outcome: order states, trades, the ledger legs of every order that traded
   (post what the batch spent from its hold and re-hold the rest; pay what it received, net
   of fees, from spot clearing; fees to the fees account), holds voided or posted for orders
   that ended, and the engine's sequence and last price.

Only after the commit does it publish trades, book deltas and user events. If the commit
fails, or the lease is lost, the runner steps down; leading again rebuilds the book from the
database, so what the book holds is always what was committed. A crash therefore loses no
order and matches none twice: an order the dead runner took is still ``new`` and is matched
again, identically, by the next leader.

The runner never stops on one order. What it loads is checked as it is converted for the
engine: a new order that cannot be (a value that is not a positive multiple of the tick or
lot, say, written by something other than order entry) is rejected with ``invalid_order``,
and an open order that cannot be rebuilt is cancelled with that reason; the hold is released
and the trader told. A batch that fails for any reason but a lost connection is retried in
halves after the rebuild, down to single orders: an order that fails alone is rejected the
same way. Cancelling an order the engine has not taken yet ends it without matching it.

Amend requests (``SpotAmend``) are fed first in a batch, before new orders, so nothing of
the batch has traded for the amended order before its change. An applied amend replaces
the order's hold by one of the new size (void ``spot:<id>:hold:<n>`` and the request's
reserve, hold ``spot:<id>:hold:<n+1>``), committed before the batch's fills post from it;
a refused one voids its reserve.

Ledger ids are derived from the order and its hold sequence (``spot:<id>:hold:<n>``,
``spot:<id>:<n>:recv``, ``spot:<id>:<n>:fee``): each batch that touches an order advances
its ``hold_seq`` by one.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from accounts.models import User
from ledger.models import AccountKind, LedgerAccount, SystemRole, Transfer, TransferKind
from ledger.services import TransferRequest, system_account, system_bucket, transfers_execute, user_account
from marketdata.models import Instrument, InstrumentKind
from marketdata.selectors import spot_book_key
from marketdata.services import trade_candles_record
from notifications.services import notification_create, notify_many
from risk import core as risk_core
from risk import selectors as risk_selectors
from trading.dependencies import REDIS, dependency, unavailable
from trading.formatting import utc_string
from trading.leases import Singleton, fenced
from trading.metrics import SharedHistogram
from trading.money import quantum
from trading.pgarrays import unnest_arrays
from trading.pgcopy import copy_rows
from trading.realtime import publish_many

from .engine import (
    ACCEPTED,
    AMENDED,
    BOOK,
    BUY,
    CANCELLED,
    EXPIRE_MAKER,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    PPM,
    REFRESHED,
    REJECTED,
    SELL,
    STOP_LIMIT,
    TRADE,
    TRAILING_STOP,
    TRIGGERED,
    Cancel,
    HotPathGC,
    OrderBook,
    RebuildError,
    RestingOrder,
    UnitError,
    Units,
)
from .models import AmendStatus, EngineState, SpotAmend, SpotOrder, SpotStatus, SpotTrade
from .notices import amend_messages, order_messages
from .services.entry import engine_channel

logger = logging.getLogger(__name__)

BOOK_DEPTH = 50
RECENT_TRADES = 100
_LIVE = (SpotStatus.OPEN, SpotStatus.PARTIALLY_FILLED, SpotStatus.TRIGGERED_PENDING)
_CANCEL_STATUS_FILLED = (Cancel.QUOTE_SPENT,)
INVALID = "invalid_order"
# Errors that say nothing about the orders of a batch: the database went away.
_CONNECTION_ERRORS = (OperationalError, InterfaceError)
_BAD_VALUE = (UnitError, RebuildError, ArithmeticError, ValueError, TypeError)


# The runner is a process of its own in the stack: its figures reach /metrics through Redis.
BATCH_SECONDS = SharedHistogram(
    "engine_batch_seconds",
    "Time the engine runner spends on one batch, from reading its orders to the commit.",
    ("symbol",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_ORDERS = SharedHistogram(
    "engine_batch_orders",
    "New orders matched in one engine batch.",
    ("symbol",),
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)


def _step(value: Decimal) -> Decimal:
    """A tick or lot size without the column's trailing zeros, so prices print as 65000.01."""
    return value.normalize() if value.normalize().as_tuple().exponent < 0 else value.quantize(Decimal(1))


def lease_name(symbol: str) -> str:
    return f"engine:{symbol}"


def _release(transfer_id: str, pending_id: str, reference: str) -> TransferRequest:
    """Void the pending hold ``pending_id``: its funds go back to the trader's available."""
    return TransferRequest(
        id=transfer_id, kind=TransferKind.VOID_PENDING, code="spot_release", pending_id=pending_id, reference=reference
    )


class _Order:
    """What the runner keeps of a live order between batches (it is their only writer)."""

    __slots__ = (
        "amend",
        "child",
        "client_order_id",
        "fee",
        "fees",
        "filled",
        "filled_quote",
        "hold_amount",
        "hold_asset",
        "hold_seq",
        "iceberg",
        "id",
        "invalid",
        "quantity",
        "queue_seq",
        "reason",
        "received",
        "side",
        "spent",
        "status",
        "touched",
        "type",
        "user_id",
    )

    def __init__(self, row):
        (
            self.id,
            self.user_id,
            self.side,
            self.type,
            self.hold_asset,
            self.hold_amount,
            self.hold_seq,
            self.quantity,
            self.filled,
            self.filled_quote,
            self.fees,
            self.status,
            self.queue_seq,
            self.client_order_id,
        ) = row
        self.spent = self.received = self.fee = Decimal(0)
        self.touched = False
        self.reason = ""
        self.iceberg = False
        self.invalid = False  # refused by the runner's own checks: its hold may not exist
        self.child = False  # a smart order's part on our book: its parent is told, not it
        self.amend = None  # this batch's applied amend: (amend id, reserve, new hold, priority kept)


_ORDER_FIELDS = (
    "id",
    "user_id",
    "side",
    "type",
    "hold_asset",
    "hold_amount",
    "hold_seq",
    "quantity",
    "filled_quantity",
    "filled_quote",
    "fees_paid",
    "status",
    "queue_seq",
    "client_order_id",
)


class EngineRunner:
    def __init__(self, symbol: str, *, batch: int | None = None, guard_gc: bool = False):
        instrument = Instrument.objects.get(symbol=symbol, kind=InstrumentKind.SPOT)
        self.symbol = symbol
        self.base, self.quote = instrument.base, instrument.quote
        self.units = Units(_step(instrument.tick_size), _step(instrument.lot_size))
        self.tick, self.lot = self.units.tick, self.units.lot
        self.base_q, self.quote_q = quantum(self.base), quantum(self.quote)
        self.maker_fee = Decimal(settings.SPOT_MAKER_FEE)
        self.taker_fee = Decimal(settings.SPOT_TAKER_FEE)
        self.band_ppm = int(Decimal(settings.SPOT_MARKET_BAND) * PPM)
        self.batch = batch or settings.ENGINE_BATCH_SIZE
        self.guard_gc = guard_gc
        self.holder = ""
        self.book: OrderBook | None = None
        self.live: dict[int, _Order] = {}
        self.gc: HotPathGC | None = None  # stack mode: run_engine enters it (see gcguard.py)
        self.matched = 0  # orders taken, for progress lines and benchmarks
        self.published_seq = 0  # of the book state last published (snapshot or delta)
        # The newest trades first, as the snapshot carries them: kept here, so a snapshot
        # never depends on reading the previous one back from Redis.
        self.recent_trades: deque[dict] = deque(maxlen=RECENT_TRADES)
        self.snapshot_due = False  # the last snapshot did not reach Redis: publish it again
        self._accounts = {}
        self.take = self.batch  # new orders per batch: halved after a failed batch, to find a bad order
        self.poison: set[int] = set()  # new orders that failed a batch on their own: rejected when next taken
        self.poison_amends: set[int] = set()  # amends of a failed batch: refused when next taken
        self.unrestorable: dict[int, str] = {}  # open orders the rebuild could not restore: cancelled next batch
        self.amending: dict[int, tuple] = {}  # order id -> this batch's amend request row
        self.amends_done: list[tuple] = []  # this batch's amend verdicts: (row, status, reason, priority kept)
        self.amends_fed: list[int] = []  # this batch's amends given to the book

    def _hold_request(self, order, hold_seq: int, amount, reference: str) -> TransferRequest:
        """The order's hold number ``hold_seq``: ``amount`` of its hold asset, from the trader
        to the order's clearing bucket until fills spend it or a release voids it."""
        return TransferRequest(
            id=f"spot:{order.id}:hold:{hold_seq}",
            kind=TransferKind.PENDING,
            code="spot_hold",
            asset=order.hold_asset,
            amount=amount,
            debit=self._account(order.user_id, order.hold_asset),
            credit=self._account(None, order.hold_asset, SystemRole.SPOT_CLEARING, str(order.id)),
            reference=reference,
        )

    def _account(self, user_id: int | None, asset: str, role: str = "", key: str = ""):
        """Ledger accounts by (user or system role, asset, bucket key), looked up once."""
        cache_key = (user_id, asset, str(role), system_bucket(key) if role else 0)
        account = self._accounts.get(cache_key)
        if account is None:
            if user_id is not None:
                account = user_account(user_id=user_id, asset=asset)
            else:
                account = system_account(role=role, asset=asset, key=key)
            if len(self._accounts) > 100_000:
                self._accounts.clear()
            self._accounts[cache_key] = account
        return account

    # --- leading ---------------------------------------------------------------------------------

    def on_lead(self, epoch: int) -> None:
        # Forget the accounts looked up so far: one created inside a batch that then rolled
        # back (the reason for leading again) no longer exists.
        self._accounts = {}
        state, _ = EngineState.objects.get_or_create(symbol=self.symbol)
        rows = list(
            SpotOrder.objects.filter(symbol=self.symbol, status__in=_LIVE)
            .order_by("queue_seq", "id")
            .values(
                *_ORDER_FIELDS,
                "price",
                "protect_price",
                "stop_price",
                "trail_amount",
                "trail_percent",
                "trail_reference",
                "display_quantity",
                "hidden_quantity",
                "time_in_force",
                "post_only",
                "stp",
                "parent_id",
            )
        )
        self.live = {}
        self._prewarm({row["user_id"] for row in rows})
        self.unrestorable = {}
        resting = {}
        for row in rows:
            order = _Order(tuple(row[f] for f in _ORDER_FIELDS))
            order.iceberg = row["display_quantity"] is not None
            order.child = row["parent_id"] is not None
            self.live[order.id] = order
            try:
                resting[order.id] = self._resting(row)
            except _BAD_VALUE as exc:
                self._unrestorable(order.id, exc)
        last = self.units.price_to_ticks(state.last_price) if state.last_price else None
        while True:
            try:
                self.book = OrderBook.rebuild(
                    list(resting.values()),
                    symbol=self.symbol,
                    seq=state.seq,
                    last_price=last,
                    market_band_ppm=self.band_ppm,
                )
                break
            except RebuildError as exc:
                # "order <id>: why": leave that order out and cancel it; an error that names
                # no order is a book the runner cannot trust, so it does not lead.
                named = re.match(r"order (\d+):", str(exc))
                if named is None or int(named.group(1)) not in resting:
                    raise
                del resting[int(named.group(1))]
                self._unrestorable(int(named.group(1)), exc)
        self.book.drain()
        self.published_seq = self.book.seq
        self.recent_trades = deque(
            (trade_payload(t) for t in SpotTrade.objects.filter(symbol=self.symbol).order_by("-seq")[:RECENT_TRADES]),
            maxlen=RECENT_TRADES,
        )
        self._publish_snapshot()
        if self.guard_gc and self.gc is None:
            self.gc = HotPathGC()
            self.gc.__enter__()  # once per process, with the rebuilt book in the frozen heap
        logger.info("engine %s rebuilt: %d open orders, seq %d", self.symbol, len(resting), state.seq)

    def _unrestorable(self, order_id: int, exc: Exception) -> None:
        logger.error("engine %s: open order %s cannot be restored, cancelling it: %s", self.symbol, order_id, exc)
        self.unrestorable[order_id] = INVALID
        self.live[order_id].invalid = True

    def _prewarm(self, user_ids: set[int], *, system: bool = True) -> None:
        """Load the ledger accounts the batches will touch in two queries, instead of one
        lookup each as they first come up."""
        assets = (self.base, self.quote)
        for account in LedgerAccount.objects.filter(kind=AccountKind.USER, user_id__in=user_ids, asset__in=assets):
            self._accounts[(account.user_id, account.asset, "", 0)] = account
        if not system:
            return
        roles = (SystemRole.SPOT_CLEARING, SystemRole.FEES)
        for account in LedgerAccount.objects.filter(kind=AccountKind.SYSTEM, role__in=roles, asset__in=assets):
            self._accounts[(None, account.asset, account.role, account.bucket)] = account

    def _resting(self, row) -> RestingOrder:
        units = self.units
        qty = units.qty_to_lots(row["quantity"])
        remaining = qty - (units.qty_to_lots(row["filled_quantity"]) if row["filled_quantity"] else 0)
        order_type = row["type"]
        triggered = order_type == STOP_LIMIT and row["status"] != SpotStatus.TRIGGERED_PENDING
        price = row["price"] if order_type in (LIMIT, STOP_LIMIT) else row["protect_price"]
        display = units.qty_to_lots(row["display_quantity"]) if row["display_quantity"] else None
        reserve = 0
        if display:
            hidden = row["hidden_quantity"]
            reserve = units.qty_to_lots(hidden) if hidden else 0
            if not 0 < remaining - reserve <= display:  # never written by a runner: as first shown
                reserve = remaining - min(display, remaining)
        trail_ticks = trail_ppm = reference = None
        if order_type == TRAILING_STOP:
            if row["trail_amount"] is not None:
                trail_ticks = units.price_to_ticks(row["trail_amount"])
            else:
                trail_ppm = Units.percent_to_ppm(row["trail_percent"])
            reference = self._trail_reference(row)
        return RestingOrder(
            row["id"],
            row["user_id"],
            row["side"],
            order_type,
            units.price_to_ticks(price) if price else None,
            qty,
            remaining,
            reserve=reserve,
            display_qty=display,
            tif=row["time_in_force"],
            post_only=row["post_only"],
            stop_price=units.price_to_ticks(row["stop_price"]) if row["stop_price"] else None,
            trail_ticks=trail_ticks,
            trail_ppm=trail_ppm,
            trail_reference=reference,
            triggered=triggered,
            stp=row["stp"],
        )

    def _trail_reference(self, row) -> int:
        """The highest (sell) or lowest (buy) trade price since the stop was accepted,
        counting the last price at its acceptance."""
        later = SpotTrade.objects.filter(symbol=self.symbol, seq__gt=row["queue_seq"] or 0)
        extreme = later.aggregate(v=Max("price") if row["side"] == SELL else Min("price"))["v"]
        prices = [p for p in (extreme, row["trail_reference"]) if p is not None]
        chosen = (max if row["side"] == SELL else min)(prices)
        return self.units.price_to_ticks(chosen)

    # --- one batch -------------------------------------------------------------------------------

    def work(self, epoch: int) -> bool:
        if self.snapshot_due:
            self._publish_snapshot()  # Redis was away: once it is back, traders see the book again
        started = time.perf_counter()
        with transaction.atomic(durable=True):
            fenced(lease_name(self.symbol), epoch, self.holder)
            new = list(
                SpotOrder.objects.filter(symbol=self.symbol, status=SpotStatus.NEW)
                .order_by("id")
                .values_list(
                    *_ORDER_FIELDS,
                    "price",
                    "protect_price",
                    "stop_price",
                    "trail_amount",
                    "trail_percent",
                    "display_quantity",
                    "time_in_force",
                    "post_only",
                    "quote_quantity",
                    "cancel_requested_at",
                    "stp",
                    "parent_id",
                )[: self.take]
            )
            cancels = list(
                SpotOrder.objects.filter(symbol=self.symbol, status__in=_LIVE, cancel_requested_at__isnull=False)
                .order_by("id")
                .values_list("id", flat=True)[: self.batch]
            )
            # amends of orders the engine holds; one of an order still new waits for the next
            # batch, after this one has placed it
            amends, waiting = [], False
            for *row, order_status in (
                SpotAmend.objects.filter(symbol=self.symbol, status=AmendStatus.PENDING)
                .order_by("id")
                .values_list("id", "order_id", "user_id", "price", "quantity", "reserve", "order__status")[: self.batch]
            ):
                if order_status == SpotStatus.NEW:
                    waiting = True
                else:
                    amends.append(tuple(row))
            if not new and not cancels and not amends and not self.unrestorable:
                return False
            try:
                events = self._amend(amends)
                events += self._feed(new, cancels)
                outcome = self._write(events)
            except _CONNECTION_ERRORS:
                raise
            except Exception as exc:
                # The book has moved ahead of what can commit. Step down like on a database
                # error: the next lead rebuilds the book from the database and tries again,
                # with half the orders, until a bad one is alone and is rejected.
                if self.amends_fed:
                    # amends go first in every batch: one that fails would fail them all,
                    # so the amends fed to this one are refused next time (they may be asked again)
                    self.poison_amends.update(self.amends_fed)
                else:
                    self._suspect([row[0] for row in new])
                raise DatabaseError(
                    f"engine {self.symbol}: batch of {len(new)} refused: {type(exc).__name__}: {exc}"
                ) from exc
        BATCH_SECONDS.observe(time.perf_counter() - started, self.symbol)
        BATCH_ORDERS.observe(len(new), self.symbol)
        self.matched += len(new)
        self.unrestorable = {}
        self.poison.difference_update(row[0] for row in new)
        if self.take < self.batch:
            self.take = min(self.batch, self.take * 2)
        self._publish(outcome)
        if self.gc is not None:
            self.gc.checkpoint()  # after the commit: collect what this batch left, young objects only
        return len(new) == self.take or bool(self.poison) or waiting

    def _suspect(self, order_ids: list[int]) -> None:
        if len(order_ids) == 1:
            self.poison.add(order_ids[0])
            logger.error("engine %s: order %s fails on its own; it will be rejected", self.symbol, order_ids[0])
        elif order_ids:
            self.take = max(1, len(order_ids) // 2)

    def _feed(self, new, cancels) -> list:
        book, units = self.book, self.units
        live = self.live
        refused = []  # events for orders the book never sees
        halted = new and self._halted()
        # the accounts of traders this runner has not seen yet: one query, not one each
        accounts, base, quote = self._accounts, self.base, self.quote
        unseen = {
            row[1] for row in new if (row[1], base, "", 0) not in accounts or (row[1], quote, "", 0) not in accounts
        }
        if unseen:
            self._prewarm(unseen, system=False)
        for order_id, reason in self.unrestorable.items():
            order = live[order_id]
            refused.append((CANCELLED, book.seq, order_id, order.user_id, reason, None))
        for row in new:
            order = _Order(row[:14])
            order.touched = True
            order.iceberg = row[19] is not None
            order.child = row[25] is not None
            live[order.id] = order
            if row[23] is not None:
                # cancelled before the engine took it: it ends here, unmatched
                refused.append((CANCELLED, book.seq, order.id, order.user_id, Cancel.USER, None))
                continue
            if halted:
                # taken before the halt's commit and not matched yet: they do not trade now
                refused.append((REJECTED, book.seq, order.id, risk_core.HALTED_REASON, "place"))
                continue
            if order.id in self.poison:
                order.invalid = True
                refused.append((REJECTED, book.seq, order.id, INVALID, "place"))
                continue
            try:
                self._place(book, units, order, row)
            except _BAD_VALUE as exc:
                logger.error("engine %s: rejecting order %s: %s", self.symbol, order.id, exc)
                order.invalid = True
                refused.append((REJECTED, book.seq, order.id, INVALID, "place"))
        for order_id in cancels:
            if order_id in book:
                book.cancel(order_id)
        return refused + book.drain()

    def _amend(self, amends) -> list:
        """Feed the amend requests to the book (before anything else of the batch). The
        runner refuses one itself when the order has ended, when the new hold would need
        more than the order's hold and the request's reserve together (the order traded at
        a better price meanwhile), or when trading is halted and it is not a reduction."""
        self.amending, self.amends_done, self.amends_fed = {}, [], []
        if not amends:
            return []
        book, units, live = self.book, self.units, self.live
        halted = self._halted()
        events = []
        for row in amends:
            _amend_id, order_id, _user_id, price, quantity, reserve = row
            order = live.get(order_id)
            if order is None or order.invalid or order_id not in book:
                self.amends_done.append((row, AmendStatus.REJECTED, "order_not_open", None))
                continue
            if row[0] in self.poison_amends:
                self.poison_amends.discard(row[0])
                self.amends_done.append((row, AmendStatus.REJECTED, INVALID, None))
                continue
            resting = book.order(order_id)
            ticks = units.price_to_ticks(price) if price is not None else None
            lots = units.qty_to_lots(quantity) if quantity is not None else None
            unit_ticks = ticks if ticks is not None else resting.price
            total = quantity if quantity is not None else order.quantity
            if order.side != BUY:
                needed = total - order.filled
            elif unit_ticks:
                needed = (self.tick * unit_ticks * (total - order.filled)).quantize(self.quote_q, ROUND_CEILING)
            else:
                needed = None
            reduces = ticks is None and quantity is not None and quantity < order.quantity
            if needed is not None and needed > order.hold_amount + reserve:
                self.amends_done.append((row, AmendStatus.REJECTED, "insufficient_funds", None))
            elif halted and not reduces:
                self.amends_done.append((row, AmendStatus.REJECTED, risk_core.HALTED_REASON, None))
            else:
                self.amending[order_id] = row
                self.amends_fed.append(row[0])
                book.amend(order_id, qty=lots, price=ticks)
                events += book.drain()
        return events

    def _halted(self) -> bool:
        """The symbol, its base asset or the platform is halted (as this process last read
        it: within RISK_CACHE_SECONDS of the change)."""
        return risk_selectors.state_of(symbols=(self.symbol, self.base)).state == risk_core.HALTED

    @staticmethod
    def _place(book, units, order, row) -> None:
        """Convert the row for the engine (every conversion before the book is touched, so a
        bad value leaves the book as it was) and place it."""
        (price, protect, stop, trail_amount, trail_percent, display, tif, post_only, quote_qty) = row[14:23]
        stp = row[24]
        qty = units.qty_to_lots(order.quantity) if order.quantity is not None else None
        order_type = order.type
        if order_type == LIMIT and tif == "GTC" and not post_only and display is None and stp == EXPIRE_MAKER:
            book.place_limit(order.id, order.user_id, order.side, qty, units.price_to_ticks(price))
        elif order_type == MARKET and protect is not None:
            # a market buy by quantity: an IOC (or FOK) limit at its protection price,
            # so it never spends beyond its hold
            book.place(
                order.id,
                order.user_id,
                BUY,
                LIMIT,
                qty,
                units.price_to_ticks(protect),
                FOK if tif == FOK else IOC,
                stp=stp,
            )
        else:
            limit = price if price is not None else protect
            limit_ticks = units.price_to_ticks(limit) if limit is not None else None
            display_lots = units.qty_to_lots(display) if display is not None else None
            stop_ticks = units.price_to_ticks(stop) if stop is not None else None
            trail_ticks = units.price_to_ticks(trail_amount) if trail_amount is not None else None
            trail_ppm = Units.percent_to_ppm(trail_percent) if trail_percent is not None else None
            quote_units = units.quote_to_int(quote_qty) if quote_qty is not None else None
            book.place(
                order.id,
                order.user_id,
                order.side,
                order_type,
                qty,
                limit_ticks,
                tif,
                post_only=post_only,
                display_qty=display_lots,
                stop_price=stop_ticks,
                trail_ticks=trail_ticks,
                trail_ppm=trail_ppm,
                quote_qty=quote_units,
                stp=stp,
            )

    def _write(self, events) -> dict:
        live = self.live
        tick, lot = self.tick, self.lot
        quote_q, base_q = self.quote_q, self.base_q
        maker_fee, taker_fee = self.maker_fee, self.taker_fee
        now = timezone.now()
        trades, book_changes, ended = [], {}, []
        triggered: set[int] = set()
        last_price = None
        seq = self.book.seq
        for event in events:
            kind = event[0]
            if kind == TRADE:
                _, eseq, pticks, lots, maker_id, taker_id, maker_user, taker_user, aggressor, maker_left, taker_left = (
                    event
                )
                price = tick * pticks
                qty = lot * lots
                notional = (price * qty).quantize(quote_q, ROUND_DOWN)
                maker, taker = live[maker_id], live[taker_id]
                for order, rate in ((maker, maker_fee), (taker, taker_fee)):
                    order.touched = True
                    order.filled += qty
                    order.filled_quote += notional
                    if order.side == BUY:
                        fee = (qty * rate).quantize(base_q, ROUND_DOWN)
                        order.spent += notional
                        order.received += qty - fee
                    else:
                        fee = (notional * rate).quantize(quote_q, ROUND_DOWN)
                        order.spent += qty
                        order.received += notional - fee
                    order.fee += fee
                    order.fees += fee
                    if order is maker:
                        maker_fee_amount = fee
                    else:
                        taker_fee_amount = fee
                if maker_left == 0:
                    maker.status = SpotStatus.FILLED
                    ended.append(maker)
                elif maker.status != SpotStatus.FILLED:
                    maker.status = SpotStatus.PARTIALLY_FILLED
                if taker_left == 0:
                    taker.status = SpotStatus.FILLED
                    ended.append(taker)
                else:
                    taker.status = SpotStatus.PARTIALLY_FILLED
                trades.append(
                    SpotTrade(
                        symbol=self.symbol,
                        seq=eseq,
                        price=price,
                        quantity=qty,
                        quote_amount=notional,
                        taker_side=aggressor,
                        maker_order_id=maker_id,
                        taker_order_id=taker_id,
                        maker_user_id=maker_user,
                        taker_user_id=taker_user,
                        maker_fee=maker_fee_amount,
                        taker_fee=taker_fee_amount,
                        created_at=now,
                    )
                )
                last_price = price
            elif kind == BOOK:
                _, eseq, side, pticks, lots = event
                book_changes[(side, pticks)] = lots
            elif kind == ACCEPTED:
                order = live[event[2]]
                order.queue_seq = event[1]
                order.status = (
                    SpotStatus.TRIGGERED_PENDING
                    if order.type in ("stop_market", "stop_limit", "trailing_stop")
                    else SpotStatus.OPEN
                )
            elif kind == CANCELLED:
                order = live[event[2]]
                order.touched = True
                order.reason = event[4]
                if event[4] in _CANCEL_STATUS_FILLED and order.filled:
                    order.status = SpotStatus.FILLED
                else:
                    order.status = SpotStatus.CANCELLED
                ended.append(order)
            elif kind == AMENDED:
                _, eseq, order_id, _owner, pticks, lots, remaining, _reserve, kept = event
                order = live[order_id]
                row = self.amending.pop(order_id)
                order.touched = True
                order.quantity = lot * lots
                if not kept:
                    order.queue_seq = eseq
                new_hold = lot * remaining
                if order.side == BUY:
                    new_hold = (tick * pticks * new_hold).quantize(quote_q, ROUND_CEILING)
                order.amend = (row[0], row[5], new_hold, kept)
                self.amends_done.append((row, AmendStatus.APPLIED, "", kept))
            elif kind == REJECTED and event[4] == "amend":
                row = self.amending.pop(event[2], None)
                if row is not None:
                    self.amends_done.append((row, AmendStatus.REJECTED, event[3], None))
            elif kind == REJECTED:
                order = live.get(event[2])
                if order is not None and event[4] == "place":
                    order.touched = True
                    order.status = SpotStatus.REJECTED
                    order.reason = event[3]
                    ended.append(order)
            elif kind == TRIGGERED:
                order = live[event[2]]
                order.touched = True
                order.queue_seq = event[1]
                triggered.add(order.id)
                if order.status == SpotStatus.TRIGGERED_PENDING:
                    order.status = SpotStatus.OPEN
            elif kind == REFRESHED:
                order = live[event[2]]
                order.touched = True
                order.queue_seq = event[1]
        touched = [order for order in live.values() if order.touched]
        rehold = self._amend_ledger(touched)
        transfers = self._ledger(touched)
        for order in touched:
            if order.invalid and not order.child:
                notification_create(
                    user=User(pk=order.user_id),
                    kind="order_rejected",
                    title=f"{self.symbol} order {order.id} was not accepted",
                    body="The exchange could not process this order; nothing of it traded and its funds are released.",
                    dedupe_key=f"spot:{order.id}:rejected",
                )
        # orders: one UPDATE per touched order, sent as one pipelined batch
        rows = []
        book = self.book
        for order in touched:
            final = order.status in (SpotStatus.FILLED, SpotStatus.CANCELLED, SpotStatus.REJECTED)
            hidden = None
            if order.iceberg and not final and order.id in book:
                hidden = lot * book.order(order.id).reserve
            rows.append(
                (
                    hidden,
                    order.status,
                    order.filled,
                    order.filled_quote,
                    order.fees,
                    order.hold_amount,
                    order.hold_seq,
                    order.queue_seq,
                    order.reason if order.status == SpotStatus.REJECTED else "",
                    order.reason if order.status == SpotStatus.CANCELLED else "",
                    now,
                    now if final else None,
                    order.id,
                )
            )
        if rows:
            _update_orders(rows)
        if trades:
            _insert_trades(trades)
            trade_candles_record(symbol=self.symbol, prints=[(t.created_at, t.price, t.quantity) for t in trades])
        if rehold:
            # before the batch's fills: they post from the holds these place
            transfers_execute(rehold, known_new=True)
        if transfers:
            transfers_execute(transfers, known_new=True)
        amended = self._amends_record(now)
        EngineState.objects.filter(symbol=self.symbol).update(
            seq=seq, **({"last_price": last_price} if last_price is not None else {}), updated_at=now
        )
        # Fills, cancels, triggers and amends told in this commit: a replayed batch writes the same keys.
        messages = order_messages(self.symbol, self.base, self.quote, touched, triggered)
        if amended:
            sides = {v["order_id"]: live[v["order_id"]].side for v in amended if v["order_id"] in live}
            messages += amend_messages(self.symbol, self.base, self.quote, amended, sides)
        notify_many(messages, now=now)
        outcome = {"trades": trades, "book": book_changes, "orders": touched, "seq": seq, "amends": amended}
        for order in ended:
            live.pop(order.id, None)
        for order in touched:
            order.touched = False
            order.amend = None
            order.spent = order.received = order.fee = Decimal(0)
        return outcome

    def _amend_ledger(self, touched) -> list[TransferRequest]:
        """The hold swaps of the batch's amends: an applied one voids the order's hold and
        the request's reserve and holds the new amount under the next ``hold_seq``; a
        refused one voids its reserve."""
        requests = []
        for row, status, _reason, _kept in self.amends_done:
            if status == AmendStatus.REJECTED and row[5]:
                requests.append(
                    _release(
                        f"spot:{row[1]}:amend:{row[0]}:void", f"spot:{row[1]}:amend:{row[0]}", f"spot_order:{row[1]}"
                    )
                )
        for order in touched:
            if order.amend is None:
                continue
            amend_id, reserve, new_hold, _kept = order.amend
            seq, ref = order.hold_seq, f"spot_order:{order.id}"
            if order.hold_amount:
                requests.append(_release(f"spot:{order.id}:{seq}:amend", f"spot:{order.id}:hold:{seq}", ref))
            if reserve:
                requests.append(
                    _release(f"spot:{order.id}:amend:{amend_id}:void", f"spot:{order.id}:amend:{amend_id}", ref)
                )
            requests.append(self._hold_request(order, seq + 1, new_hold, ref))
            order.hold_seq, order.hold_amount = seq + 1, new_hold
        return requests

    def _amends_record(self, now) -> list[dict]:
        """Write the batch's amend verdicts (and an applied one's new price and quantity on
        its order); returns what the traders are told after the commit."""
        told = []
        for row, status, reason, kept in self.amends_done:
            amend_id, order_id, user_id, price, quantity, _reserve = row
            SpotAmend.objects.filter(pk=amend_id).update(status=status, reason=reason, priority_kept=kept, done_at=now)
            if status == AmendStatus.APPLIED:
                changes = {"updated_at": now}
                if price is not None:
                    changes["price"] = price
                if quantity is not None:
                    changes["quantity"] = quantity
                SpotOrder.objects.filter(pk=order_id).update(**changes)
            told.append(
                {
                    "user_id": user_id,
                    "type": "amend",
                    "id": amend_id,
                    "order_id": order_id,
                    "symbol": self.symbol,
                    "status": str(status),
                    "reason": reason or None,
                    "price": None if price is None else str(price),
                    "quantity": None if quantity is None else str(quantity),
                    "priority_kept": kept,
                }
            )
        self.amends_done = []
        return told

    def _ledger(self, touched) -> list[TransferRequest]:
        """Per order that traded or ended: post the batch's spend from its hold (releasing the
        rest), re-hold what a live order still needs, pay out what it received net of its fee.
        The batch's fees go to the fees account as one transfer per asset (each order's fee is
        on its trades and its ``fees_paid``)."""
        requests, payouts = [], []
        fees = {self.base: Decimal(0), self.quote: Decimal(0)}
        key = self.symbol
        refused = [f"spot:{order.id}:hold:{order.hold_seq}" for order in touched if order.invalid]
        voidable = set(_open_holds(refused)) if refused else set()
        for order in touched:
            final = order.status in (SpotStatus.FILLED, SpotStatus.CANCELLED, SpotStatus.REJECTED)
            if not order.spent and not final:
                continue
            seq = order.hold_seq
            hold_id = f"spot:{order.id}:hold:{seq}"
            ref = f"spot_order:{order.id}"
            if order.spent:
                requests.append(
                    TransferRequest(
                        id=f"spot:{order.id}:{seq}:post",
                        kind=TransferKind.POST_PENDING,
                        code="spot_fill",
                        pending_id=hold_id,
                        amount=order.spent,
                        reference=ref,
                    )
                )
            elif order.hold_amount and (not order.invalid or hold_id in voidable):
                requests.append(_release(f"spot:{order.id}:{seq}:void", hold_id, ref))
            left = order.hold_amount - order.spent
            order.hold_amount = Decimal(0) if final else left
            if not final and order.spent:
                order.hold_seq = seq + 1
                if left > 0:
                    requests.append(self._hold_request(order, seq + 1, left, ref))
            elif final and order.spent:
                order.hold_seq = seq + 1
            asset = self.base if order.side == BUY else self.quote
            fees[asset] += order.fee
            if order.received:
                payouts.append(
                    TransferRequest(
                        id=f"spot:{order.id}:{seq}:recv",
                        code="spot_fill",
                        asset=asset,
                        amount=order.received,
                        debit=self._account(None, asset, SystemRole.SPOT_CLEARING, key),
                        credit=self._account(order.user_id, asset),
                        reference=ref,
                    )
                )
        for asset, amount in fees.items():
            if amount:
                payouts.append(
                    TransferRequest(
                        id=f"spot:{self.symbol}:{self.book.seq}:fee:{asset}",
                        code="spot_fee",
                        asset=asset,
                        amount=amount,
                        debit=self._account(None, asset, SystemRole.SPOT_CLEARING, key),
                        credit=self._account(None, asset, SystemRole.FEES, key),
                        reference=f"spot_batch:{self.symbol}:{self.book.seq}",
                    )
                )
        return requests + payouts

    # --- after commit ----------------------------------------------------------------------------

    def _publish(self, outcome: dict) -> None:
        symbol, units = self.symbol, self.units
        updates = []
        if outcome["book"]:
            bids, asks = [], []
            for (side, pticks), lots in sorted(outcome["book"].items()):
                (bids if side == BUY else asks).append(
                    [str(units.ticks_to_price(pticks)), str(units.lots_to_qty(lots))]
                )
            # "previous": the sequence this delta follows, so a client can tell a lost delta
            # from the gaps that events without a book change leave in the sequence
            updates.append(
                (
                    f"book:{symbol}",
                    {
                        "type": "delta",
                        "sequence": outcome["seq"],
                        "previous": self.published_seq,
                        "bids": bids,
                        "asks": asks,
                    },
                )
            )
            self.published_seq = outcome["seq"]
        if outcome["book"] or outcome["trades"]:
            self._publish_snapshot(outcome["trades"])
        for trade in outcome["trades"]:
            updates.append((f"trades:{symbol}", trade_payload(trade)))
        for order in outcome["orders"]:
            updates.append(
                (
                    f"user:{order.user_id}",
                    {
                        "type": "order",
                        "id": order.id,
                        "symbol": symbol,
                        "status": order.status,
                        "filled_quantity": str(order.filled),
                        "client_order_id": order.client_order_id,
                        "reason": order.reason or None,
                    },
                )
            )
        users = set()
        for trade in outcome["trades"]:
            for side, user_id, order_id, fee in (
                ("maker", trade.maker_user_id, trade.maker_order_id, trade.maker_fee),
                ("taker", trade.taker_user_id, trade.taker_order_id, trade.taker_fee),
            ):
                updates.append(
                    (
                        f"user:{user_id}",
                        {
                            "type": "fill",
                            "order_id": order_id,
                            "symbol": symbol,
                            "price": str(trade.price),
                            "quantity": str(trade.quantity),
                            "liquidity": side,
                            "fee": str(fee),
                            "seq": trade.seq,
                        },
                    )
                )
                users.add(user_id)
        for order in outcome["orders"]:
            if order.status in (SpotStatus.CANCELLED, SpotStatus.REJECTED, SpotStatus.FILLED):
                users.add(order.user_id)
        for amend in outcome.get("amends", ()):
            user_id = amend.pop("user_id")
            updates.append((f"user:{user_id}", amend))
            users.add(user_id)  # its hold changed (or its reserve was released)
        for user_id in users:
            updates.append((f"user:{user_id}", {"type": "balance_changed", "assets": [self.base, self.quote]}))
        publish_many(updates)

    def _publish_snapshot(self, trades=()) -> None:
        """The top of the book with its sequence and the recent trades, where the web
        processes read them (``marketdata.selectors.spot_market``). With Redis away the
        runner goes on matching: the snapshot is due again and goes out once Redis is back
        (it is the whole state, so nothing published meanwhile needs replaying)."""
        self.recent_trades.extendleft(trade_payload(t) for t in trades)
        redis = dependency(REDIS)
        if not redis.may_try():
            self.snapshot_due = True
            return
        snap = self.book.snapshot(BOOK_DEPTH)
        units = self.units
        try:
            cache.set(
                spot_book_key(self.symbol),
                {
                    "sequence": snap.seq,
                    "bids": [[str(units.ticks_to_price(p)), str(units.lots_to_qty(q))] for p, q in snap.bids],
                    "asks": [[str(units.ticks_to_price(p)), str(units.lots_to_qty(q))] for p, q in snap.asks],
                    "last": str(units.ticks_to_price(snap.last_price)) if snap.last_price else None,
                    "trades": list(self.recent_trades),
                },
                timeout=None,
            )
        except Exception as exc:
            if unavailable(exc) != REDIS:
                raise
            redis.failed(exc)
            self.snapshot_due = True
            return
        redis.ok()
        self.snapshot_due = False


def _open_holds(hold_ids: list[str]) -> list[str]:
    """Which of these holds exist and are still open (an order the runner refused may have
    been written without one)."""
    return list(
        Transfer.objects.filter(pk__in=hold_ids, kind=TransferKind.PENDING)
        .exclude(resolutions__isnull=False)
        .values_list("pk", flat=True)
    )


_ORDER_UPDATE = (
    ("hidden_quantity", "numeric"),
    ("status", "text"),
    ("filled_quantity", "numeric"),
    ("filled_quote", "numeric"),
    ("fees_paid", "numeric"),
    ("hold_amount", "numeric"),
    ("hold_seq", "integer"),
    ("queue_seq", "bigint"),
    ("reject_reason", "text"),
    ("cancel_reason", "text"),
    ("updated_at", "timestamptz"),
    ("closed_at", "timestamptz"),
)
_TRADE_COLUMNS = (
    ("symbol", "text"),
    ("seq", "bigint"),
    ("price", "numeric"),
    ("quantity", "numeric"),
    ("quote_amount", "numeric"),
    ("taker_side", "text"),
    ("maker_order_id", "bigint"),
    ("taker_order_id", "bigint"),
    ("maker_user_id", "bigint"),
    ("taker_user_id", "bigint"),
    ("maker_fee", "numeric"),
    ("taker_fee", "numeric"),
    ("created_at", "timestamptz"),
)


def _update_orders(rows: list[tuple]) -> None:
    """The batch's order changes: on PostgreSQL one UPDATE joined to arrays of the values
    (a statement per order would cost a round trip each)."""
    table = SpotOrder._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays, values = unnest_arrays(
                [list(column) for column in zip(*rows)], [kind for _, kind in _ORDER_UPDATE] + ["bigint"]
            )
            names = ", ".join(name for name, _ in _ORDER_UPDATE)
            sets = ", ".join(f"{name} = v.{name}" for name, _ in _ORDER_UPDATE)
            cursor.execute(
                f"UPDATE {table} AS o SET {sets} FROM unnest({arrays}) AS v({names}, id) WHERE o.id = v.id", values
            )
        else:
            fields = [SpotOrder._meta.get_field(name) for name, _ in _ORDER_UPDATE]
            prepared = [
                [field.get_db_prep_save(value, connection) for field, value in zip(fields, row)] + [row[-1]]
                for row in rows
            ]
            sets = ", ".join(f"{name}=%s" for name, _ in _ORDER_UPDATE)
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE id=%s", prepared)


def _insert_trades(trades: list[SpotTrade]) -> None:
    if connection.vendor != "postgresql":
        SpotTrade.objects.bulk_create(trades)
        return
    copy_rows(
        SpotTrade._meta.db_table,
        _TRADE_COLUMNS,
        (
            (
                t.symbol,
                t.seq,
                t.price,
                t.quantity,
                t.quote_amount,
                t.taker_side,
                t.maker_order_id,
                t.taker_order_id,
                t.maker_user_id,
                t.taker_user_id,
                t.maker_fee,
                t.taker_fee,
                t.created_at,
            )
            for t in trades
        ),
    )


def trade_payload(trade: SpotTrade) -> dict:
    return {
        "id": trade.seq,
        "price": str(trade.price),
        "quantity": str(trade.quantity),
        "side": trade.taker_side,
        "time": utc_string(trade.created_at),
    }


def engine_singleton(
    symbol: str, *, ttl: float = 3.0, announce=print, batch: int | None = None, guard_gc: bool = False
) -> Singleton:
    runner = EngineRunner(symbol, batch=batch, guard_gc=guard_gc)
    singleton = Singleton(
        lease_name(symbol),
        work=runner.work,
        ttl=ttl,
        interval=settings.ENGINE_POLL_SECONDS,
        on_lead=runner.on_lead,
        announce=announce,
    )
    runner.holder = singleton.holder
    singleton.runner = runner
    return singleton


__all__ = ["EngineRunner", "engine_channel", "engine_singleton", "trade_payload"]
