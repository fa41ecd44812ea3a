"""Spot order entry: validate, check pre-trade risk, hold the funds and insert the order, in
one transaction; then wake the symbol's engine runner (``orders.spot.runner``), which owns the
order from there. Cancels are requests the runner carries out.

Locks, in this order: the trader's user row (one trader's orders are decided one at a time,
so the open-order limit and ``client_order_id`` replays are exact), then the ledger
accounts of the hold (``transfers_execute`` locks them by primary key).

The hold covers the worst the order can cost: a sell holds its base quantity; a limit or
stop-limit buy its price x quantity; a buy without a limit price (market by quantity,
stop-market, trailing stop) holds quantity x a protection price, which the engine then
never trades beyond (``protect_price``), and a market buy by amount holds that amount.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_lock_read
from ledger.models import SystemRole, TransferKind
from ledger.selectors import hold_accounts_read, total_read
from ledger.services import (
    IdempotencyConflict,
    TransferRequest,
    system_account,
    system_bucket,
    transfers_execute,
    user_account,
)
from marketdata.models import Instrument, InstrumentKind
from marketdata.selectors import index_is_fresh, index_latest
from risk import core as risk_core
from risk import services as risk
from trading import workers
from trading.db import Read, read_together
from trading.errors import Conflict, DomainError, NotFound, ValidationFailed
from trading.idempotency import parse_client_order_id, request_hash
from trading.money import parse_decimal, quantize, quantum

from ..engine import (
    BUY,
    EXPIRE_MAKER,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    STP_MODES,
    TRAILING_STOP,
)
from ..models import LIVE_STATUSES, EngineState, SpotOrder, SpotStatus
from ..selectors import client_order_read, live_orders_read

ORDER_TYPES = (MARKET, LIMIT, STOP_MARKET, STOP_LIMIT, TRAILING_STOP)
PERCENT = Decimal("0.0001")


class IndexUnavailable(DomainError):
    status = 503
    code = "index_stale"


def engine_channel(symbol: str) -> str:
    """The LISTEN/NOTIFY channel (and in-process waker name) of a symbol's runner."""
    return "engine_" + symbol.replace("-", "_").lower()


def engine_wake(symbol: str) -> None:
    """Wake the symbol's runner: in this process (embedded mode) at once; a stack-mode
    runner hears the NOTIFY sent inside the writer's transaction when it commits."""
    workers.wake(engine_channel(symbol))


def _notify_read(symbol: str) -> Read:
    """The runner's NOTIFY as one of a transaction's reads: PostgreSQL delivers it when the
    transaction commits, wherever in it it was sent (and never if it rolls back)."""
    return Read.one(f"NOTIFY {engine_channel(symbol)}", lambda rows: None)


def engine_wake_on_commit(symbol: str) -> None:
    """Inside the writer's transaction: the symbol's runner hears of its work when it commits
    (the NOTIFY for a stack-mode runner, the in-process wake-up in embedded mode)."""
    if connection.vendor == "postgresql":
        read_together(_notify_read(symbol))
    transaction.on_commit(lambda: engine_wake(symbol))


# --- input ------------------------------------------------------------------------------------------


@dataclass
class OrderRequest:
    instrument: Instrument
    side: str
    type: str
    time_in_force: str
    post_only: bool
    quantity: Decimal | None
    quote_quantity: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    trail_amount: Decimal | None
    trail_percent: Decimal | None
    display_quantity: Decimal | None
    client_order_id: str
    route: str
    stp: str = EXPIRE_MAKER

    def fingerprint(self) -> str:
        # The default stp adds nothing, so the orders entered before it existed keep their
        # fingerprint and a replay of one is still recognised.
        stp = () if self.stp == EXPIRE_MAKER else (self.stp,)
        return request_hash(
            *(
                str(v)
                for v in (
                    self.instrument.symbol,
                    self.side,
                    self.type,
                    self.time_in_force,
                    self.post_only,
                    self.quantity,
                    self.quote_quantity,
                    self.price,
                    self.stop_price,
                    self.trail_amount,
                    self.trail_percent,
                    self.display_quantity,
                    self.route,
                    *stp,
                )
            )
        )


def _bad(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, fields={field: [message]})


def _choice(data: dict, field: str, choices: tuple, default=None) -> str:
    value = data.get(field, default)
    if value is None:
        raise _bad(field, f"{field} is required.")
    if value not in choices:
        raise _bad(field, f"{field} must be one of {', '.join(choices)}.")
    return value


def _optional(data: dict, field: str, *, step: Decimal, what: str) -> Decimal | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    return parse_decimal(value, field=field, step=step, what=what)


def _forbid(data: dict, order_type: str, *fields: str) -> None:
    for field in fields:
        if data.get(field) not in (None, "", False):
            raise _bad(field, f"A {order_type} order takes no {field}.")


# Spot pairs change a few times a year; every order needs its pair's tick, lot and minimum.
_INSTRUMENT_CACHE_SECONDS = 5.0
_instruments: dict[str, tuple[float, Instrument]] = {}


def spot_instrument(symbol) -> Instrument:
    """The active spot market ``symbol`` (any case), or 404."""
    symbol = symbol.strip().upper() if isinstance(symbol, str) else ""
    if not symbol:
        raise _bad("symbol", "symbol is required.")
    cached = _instruments.get(symbol)
    if cached is not None and time.monotonic() - cached[0] < _INSTRUMENT_CACHE_SECONDS:
        return cached[1]
    try:
        instrument = Instrument.objects.get(symbol=symbol, kind=InstrumentKind.SPOT, active=True)
    except Instrument.DoesNotExist:
        raise NotFound(f"No spot market {symbol}.") from None
    _instruments[symbol] = (time.monotonic(), instrument)
    return instrument


_FIELDS = (
    "symbol",
    "side",
    "type",
    "time_in_force",
    "post_only",
    "quantity",
    "quote_quantity",
    "price",
    "stop_price",
    "trail_amount",
    "trail_percent",
    "display_quantity",
    "client_order_id",
    "route",
    "stp",
)


def order_request(**fields) -> OrderRequest:
    """An order as API.md describes it (the fields of ``POST /api/v1/orders``; numbers as
    decimal strings), checked against its market and its type: any mistake is a 400 naming
    the field. Every entry path builds its orders here: the API, smart routing's children,
    the market maker."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise TypeError(f"order_request() got unexpected fields {sorted(unknown)}")
    data = fields
    instrument = spot_instrument(data.get("symbol"))
    side = _choice(data, "side", (BUY, SELL))
    order_type = _choice(data, "type", ORDER_TYPES)
    default_tif = IOC if order_type == MARKET else GTC
    tif = _choice(data, "time_in_force", (GTC, IOC, FOK), default_tif)
    post_only = data.get("post_only", False)
    if not isinstance(post_only, bool):
        raise _bad("post_only", "post_only must be true or false.")
    route = _choice(data, "route", ("book", "smart"), "book")
    stp = _choice(data, "stp", STP_MODES, EXPIRE_MAKER)
    tick, lot = instrument.tick_size, instrument.lot_size
    quantity = _optional(data, "quantity", step=lot, what="lot size")
    quote_quantity = _optional(data, "quote_quantity", step=quantum("USDT"), what="USDT precision")
    price = _optional(data, "price", step=tick, what="tick size")
    stop_price = _optional(data, "stop_price", step=tick, what="tick size")
    trail_amount = _optional(data, "trail_amount", step=tick, what="tick size")
    trail_percent = _optional(data, "trail_percent", step=PERCENT, what="precision")
    display = _optional(data, "display_quantity", step=lot, what="lot size")

    if order_type == MARKET:
        _forbid(
            data, order_type, "price", "stop_price", "trail_amount", "trail_percent", "display_quantity", "post_only"
        )
        if (quantity is None) == (quote_quantity is None):
            raise _bad("quantity", "A market order takes quantity, or (buys only) quote_quantity.")
        if quote_quantity is not None and (side != BUY or tif == FOK):
            raise _bad("quote_quantity", "quote_quantity is for market buys that are not FOK.")
    else:
        if quantity is None:
            raise _bad("quantity", "quantity is required.")
        if quote_quantity is not None:
            raise _bad("quote_quantity", "quote_quantity is for market buys only.")
    if order_type in (LIMIT, STOP_LIMIT) and price is None:
        raise _bad("price", f"A {order_type} order needs a price.")
    if order_type in (STOP_MARKET, TRAILING_STOP):
        _forbid(data, order_type, "price")
    if order_type in (STOP_MARKET, STOP_LIMIT):
        if stop_price is None:
            raise _bad("stop_price", f"A {order_type} order needs a stop_price.")
    else:
        _forbid(data, order_type, "stop_price")
    if order_type == TRAILING_STOP:
        if (trail_amount is None) == (trail_percent is None):
            raise _bad("trail_amount", "A trailing stop takes trail_amount or trail_percent (one of them).")
        if trail_percent is not None and trail_percent >= 100:
            raise _bad("trail_percent", "trail_percent must be below 100.")
    else:
        _forbid(data, order_type, "trail_amount", "trail_percent")
    if order_type in (STOP_MARKET, STOP_LIMIT, TRAILING_STOP):
        _forbid(data, order_type, "display_quantity", "post_only")
    if post_only and (order_type != LIMIT or tif != GTC):
        raise _bad("post_only", "post_only is for GTC limit orders.")
    if display is not None:
        if order_type != LIMIT or tif != GTC or post_only:
            raise _bad("display_quantity", "Icebergs (display_quantity) are GTC limit orders.")
        if display > quantity:
            raise _bad("display_quantity", "display_quantity cannot exceed quantity.")
    if route == "smart" and (order_type not in (MARKET, LIMIT) or (order_type == LIMIT and tif != IOC)):
        raise _bad("route", "Smart routing is for market and IOC limit orders.")
    if route == "smart" and stp != EXPIRE_MAKER:
        # its child on our book is entered with the default; venues have their own rules
        raise _bad("stp", "A smart order takes the default stp (expire_maker).")
    return OrderRequest(
        instrument=instrument,
        side=side,
        type=order_type,
        time_in_force=tif,
        post_only=post_only,
        quantity=quantity,
        quote_quantity=quote_quantity,
        price=price,
        stop_price=stop_price,
        trail_amount=trail_amount,
        trail_percent=trail_percent,
        display_quantity=display,
        client_order_id=parse_client_order_id(data.get("client_order_id")),
        route=route,
        stp=stp,
    )


# --- risk and hold ------------------------------------------------------------------------------------


def _index(instrument: Instrument) -> Decimal | None:
    latest = index_latest(underlying=instrument.base)
    return latest.price if index_is_fresh(latest) else None


def _ceil_tick(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def _last_price(symbol: str) -> Decimal | None:
    return EngineState.objects.filter(symbol=symbol).values_list("last_price", flat=True).first()


def _protect_and_hold(request: OrderRequest, index: Decimal | None) -> tuple[Decimal | None, Decimal, Decimal]:
    """(protection price, hold amount, notional for the size checks)."""
    instrument = request.instrument
    tick = instrument.tick_size
    band = Decimal(settings.SPOT_MARKET_BAND)
    qty = request.quantity
    if request.type in (LIMIT, STOP_LIMIT):
        notional = request.price * qty
        reference = None
    elif request.type == MARKET and request.quote_quantity is not None:
        return None, request.quote_quantity, request.quote_quantity
    else:
        if request.type == STOP_MARKET:
            reference = request.stop_price
        elif request.type == TRAILING_STOP:
            last = _last_price(instrument.symbol) or index
            if last is None:
                raise IndexUnavailable("No trade or index price to trail yet; try again shortly.")
            reference = (
                last + request.trail_amount
                if request.trail_amount is not None
                else last * (1 + request.trail_percent / 100)
            )
        else:  # market by quantity
            if index is None:
                raise IndexUnavailable(
                    f"The {instrument.base} index is stale; market orders are paused until it recovers."
                )
            reference = index
        notional = reference * qty
    if request.side == SELL:
        return None, qty, notional
    if request.type in (LIMIT, STOP_LIMIT):
        return None, quantize("USDT", notional, rounding=ROUND_CEILING), notional
    protect = _ceil_tick(reference * (1 + band), tick)
    return protect, quantize("USDT", protect * qty, rounding=ROUND_CEILING), notional


def risk_facts(request: OrderRequest, notional: Decimal = Decimal(0)) -> risk_core.SpotOrder:
    """The order as the risk checks read it."""
    return risk_core.SpotOrder(
        side=request.side,
        type=request.type,
        quantity=request.quantity,
        notional=notional,
        price=request.price,
        stop_price=request.stop_price,
        tick=request.instrument.tick_size,
    )


# --- writes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    """What order entry decided for an order before writing it: its fingerprint (for
    replays), the protection price of a buy without a limit, and the hold."""

    fingerprint: str
    protect: Decimal | None
    hold: Decimal


def order_price(*, user: User, request: OrderRequest) -> tuple[SpotOrder | None, Priced]:
    """The checks before any write: a replayed ``client_order_id`` (returned as the first
    item), the hold, and the pre-trade risk checks on the order itself (rate, price band,
    value, quantity)."""
    fingerprint = request.fingerprint()
    if request.client_order_id:
        existing = SpotOrder.objects.filter(user=user, client_order_id=request.client_order_id).first()
        if existing is not None:
            return _replay(existing, fingerprint), Priced(fingerprint, None, Decimal(0))
    index = _index(request.instrument)
    protect, hold, notional = _protect_and_hold(request, index)
    risk.spot_order_precheck(user=user, instrument=request.instrument, order=risk_facts(request, notional), index=index)
    return None, Priced(fingerprint, protect, hold)


def book_order_place(*, user: User, request: OrderRequest, priced: Priced) -> tuple[SpotOrder, bool]:
    """Enter a priced order for the book and wake its engine runner."""
    try:
        with transaction.atomic(durable=True):
            order, replayed = order_enter(
                user=user,
                request=request,
                fingerprint=priced.fingerprint,
                protect=priced.protect,
                hold=priced.hold,
                notify=True,
            )
            if not replayed:
                transaction.on_commit(lambda: engine_wake(request.instrument.symbol))
    except IntegrityError:
        return replay_after_race(user, request, priced.fingerprint)
    return order, replayed


def replay_after_race(user: User, request: OrderRequest, fingerprint: str) -> tuple[SpotOrder, bool]:
    """Two requests with one client_order_id raced to the insert: the loser replays the winner."""
    existing = SpotOrder.objects.filter(user=user, client_order_id=request.client_order_id).first()
    if request.client_order_id and existing is not None:
        return _replay(existing, fingerprint), True
    raise


def _replay(existing: SpotOrder, fingerprint: str) -> SpotOrder:
    if existing.request_hash != fingerprint:
        raise IdempotencyConflict(
            "This client_order_id was used for a different order.", fields={"client_order_id": ["Already used."]}
        )
    return existing


def order_enter(
    *,
    user: User,
    request: OrderRequest,
    fingerprint: str,
    protect,
    hold: Decimal,
    status: str = SpotStatus.NEW,
    notify: bool = False,
) -> tuple[SpotOrder, bool]:
    """The one way an order enters the book's tables: lock the trader's row, replay a known
    ``client_order_id``, pass the risk checks that need the lock (trading state, open
    orders, position), insert the order and hold what it may cost. Runs in the caller's
    transaction, which must end on any error raised here (order entry's own, or smart
    routing's, which then splits the hold among the children; both durable). ``notify``:
    the symbol's runner is notified when it commits. Returns ``(order, replayed)``."""
    instrument = request.instrument
    hold_asset = "USDT" if request.side == BUY else instrument.base
    # The trader's row is locked first (their entries are decided one at a time: the
    # open-order count and the holding read after it are exact), then what the risk checks
    # and the hold need, and the runner's NOTIFY, all in one round trip.
    reads = [
        user_lock_read(user_id=user.pk),
        risk.spot_state_read(user_id=user.pk, instrument=instrument),
        live_orders_read(user_id=user.pk, symbol=instrument.symbol),
        total_read(user_id=user.pk, asset=instrument.base),
        hold_accounts_read(user_id=user.pk, asset=hold_asset, role=SystemRole.SPOT_CLEARING),
        client_order_read(user_id=user.pk, client_order_id=request.client_order_id)
        if request.client_order_id
        else Read((), lambda rows: None),
    ]
    if notify and connection.vendor == "postgresql":
        reads.append(_notify_read(instrument.symbol))
    _, state, (count, buying), base_held, accounts, known, *_ = read_together(*reads)
    if known is not None:
        return _replay(SpotOrder.objects.get(pk=known), fingerprint), True
    risk.spot_order_admit(
        user=user,
        instrument=instrument,
        order=risk_facts(request),
        state=state,
        usage=risk_core.SpotUsage(open_orders=count, base_held=base_held, open_buys=buying),
        operation=f"spot_order:{request.client_order_id}" if request.client_order_id else "",
    )
    order = SpotOrder.objects.create(
        user_id=user.pk,
        symbol=instrument.symbol,
        side=request.side,
        type=request.type,
        time_in_force=request.time_in_force,
        post_only=request.post_only,
        quantity=request.quantity,
        quote_quantity=request.quote_quantity,
        price=request.price,
        protect_price=protect,
        stop_price=request.stop_price,
        trail_amount=request.trail_amount,
        trail_percent=request.trail_percent,
        trail_reference=_last_price(instrument.symbol) if request.type == TRAILING_STOP else None,
        display_quantity=request.display_quantity,
        route=request.route,
        stp=request.stp,
        status=status,
        hold_asset=hold_asset,
        hold_amount=hold,
        client_order_id=request.client_order_id,
        request_hash=fingerprint,
    )
    # The accounts came with the reads (one created here the first time it is needed); the
    # hold's id contains the new order's id, so no transfer has it yet (no replay lookup), and
    # any error ends the caller's transaction (no savepoint).
    key = str(order.pk)
    transfers_execute(
        [
            TransferRequest(
                id=order.hold_id(),
                kind=TransferKind.PENDING,
                code="spot_hold",
                asset=hold_asset,
                amount=hold,
                debit=accounts.user or user_account(user_id=user.pk, asset=hold_asset),
                credit=accounts.buckets.get(system_bucket(key))
                or system_account(role=SystemRole.SPOT_CLEARING, asset=hold_asset, key=key),
                reference=f"spot_order:{order.pk}",
            )
        ],
        known_new=True,
        savepoint=False,
    )
    return order, False


def spot_order_cancel(*, user: User, order_id: int, wait: float | None = None) -> SpotOrder:
    """Ask the runner to cancel the order's remainder (it releases the hold), and wait up to
    ``wait`` seconds for it to happen. A final order is returned as it is."""
    with transaction.atomic(durable=True):
        order = SpotOrder.objects.select_for_update(no_key=True).filter(pk=order_id, user=user).first()
        if order is None:
            raise NotFound("No such order.")
        if order.status not in LIVE_STATUSES:
            raise Conflict(f"The order is already {order.status}.", code="order_not_open")
        if order.cancel_requested_at is None:
            order.cancel_requested_at = timezone.now()
            order.save(update_fields=["cancel_requested_at", "updated_at"])
        engine_wake_on_commit(order.symbol)
    return spot_order_wait(order_id=order.pk, until_final=True, wait=wait)


def spot_order_wait(*, order_id: int, until_final: bool = False, wait: float | None = None) -> SpotOrder:
    """The order once the engine has taken it (or, ``until_final``, closed it), or as it is
    after ``wait`` seconds."""
    deadline = time.monotonic() + (settings.SPOT_ORDER_WAIT_SECONDS if wait is None else wait)
    delay = 0.005
    while True:
        order = SpotOrder.objects.get(pk=order_id)
        done = order.status not in LIVE_STATUSES if until_final else order.status != SpotStatus.NEW
        if done or time.monotonic() >= deadline:
            return order
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def spot_orders_cancel_mine(*, user: User, symbol: str | None = None, wait: float | None = None) -> list[SpotOrder]:
    """Cancel every open order of the trader (on ``symbol``, or on every market): each is a
    cancel request the symbol's runner carries out, as for one order. Waits up to ``wait``
    seconds for them to end and returns them as they are then (oldest first)."""
    symbols = [spot_instrument(symbol).symbol] if symbol is not None else None
    with transaction.atomic(durable=True):
        # the trader's row, as order entry locks it: no order of theirs is entered meanwhile
        list(User.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk", flat=True))
        live = SpotOrder.objects.filter(user=user, status__in=LIVE_STATUSES)
        if symbols is not None:
            live = live.filter(symbol__in=symbols)
        ids = sorted(live.values_list("pk", flat=True))
        spot_orders_cancel_all(symbols=symbols, user_id=user.pk)
    deadline = time.monotonic() + (settings.SPOT_ORDER_WAIT_SECONDS if wait is None else wait)
    delay = 0.005
    while True:
        orders = list(SpotOrder.objects.filter(pk__in=ids).order_by("pk"))
        if all(order.status not in LIVE_STATUSES for order in orders) or time.monotonic() >= deadline:
            return orders
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def spot_orders_cancel_all(*, symbols=None, user_id: int | None = None) -> int:
    """Ask the runners to cancel every live order on ``symbols`` (all when None), of one user
    or everyone's (a kill switch's cancel-all). Runs in the caller's transaction; the
    runners are woken when it commits. Returns how many orders were asked."""
    live = SpotOrder.objects.filter(status__in=LIVE_STATUSES, cancel_requested_at__isnull=True)
    if symbols is not None:
        live = live.filter(symbol__in=list(symbols))
    if user_id is not None:
        live = live.filter(user_id=user_id)
    affected = sorted(set(live.values_list("symbol", flat=True)))
    now = timezone.now()
    count = live.update(cancel_requested_at=now, updated_at=now)
    for symbol in affected:
        engine_wake_on_commit(symbol)
    return count
