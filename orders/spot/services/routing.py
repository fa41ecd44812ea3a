"""Smart order routing: one marketable order split across our book and the outside venues by
the best price net of each one's taker fee, within the order's limit (or, without one, its
protection price).

The records: a parent ``SpotOrder`` (``route="smart"``) and its children — at most one
``SpotOrder`` on our book (``parent=``, an IOC limit at the worst level planned there, which
the engine runner executes like any order) and one ``VenueOrder`` per venue used (an IOC
limit sent to the venue under a client order id derived from the parent and the venue).

The hold: entry first holds the parent's full amount (``spot:<parent>:hold:0``, computed by
order entry exactly as for a normal order, so a trader who cannot fund the whole order gets
``insufficient_funds`` and nothing is written), then, in the same transaction, splits it:
the parent's hold is voided (``spot:<parent>:0:void``) and each child gets its own hold
(``spot:<child>:hold:0`` to spot clearing, as the runner expects; ``venue:<coid>:hold`` to
the venue funding account). From then on each child's hold is resolved by whoever executes
it — the runner for the book child, ``venue_order_execute`` for a venue child — and the
parent holds nothing. The funds are never free in between, and nothing is held twice.

The parent's status is ``routing`` while children work: a value the engine runner never
reads (it takes ``new`` orders and rebuilds from live ones, and must not match the parent
itself). ``smart_order_refresh`` closes it from its children once they are all final:
``filled`` when they filled the whole quantity, otherwise ``cancelled`` (an IOC remainder)
with what did fill.

Venue children: recorded ``pending`` with their hold before anything is sent; marked
``sent`` (attempt counted, committed) right before the call; the answer settles in one
transaction. After a timeout the order is looked up by its client order id; it is never sent
a second time. Not found yet -> ``unknown`` (hold kept) until a later lookup finds it, or
finds nothing after the venue's receive window, which proves it never executed
(``venue_orders_resolve``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from ledger.models import SystemRole, TransferKind
from ledger.services import TransferRequest, system_account, transfers_execute, user_account
from marketdata.selectors import index_is_fresh, index_latest
from notifications.services import notify_many
from trading.celery import enqueue_on_commit
from trading.errors import ValidationFailed
from trading.money import quantize, quantum
from trading.realtime import publish_many
from venues.base import REJECTED, Execution, VenueError, VenueTimeout
from venues.config import UnknownVenue, venue_get

from ..engine import BUY, IOC, LIMIT
from ..models import LIVE_STATUSES, VENUE_FINAL_STATUSES, SpotOrder, SpotStatus, VenueOrder, VenueOrderStatus
from ..notices import smart_order_message
from ..routing_selectors import OUR_BOOK, Source, route_sources
from .entry import (
    IndexUnavailable,
    OrderRequest,
    Priced,
    engine_wake_on_commit,
    order_enter,
    replay_after_race,
    spot_order_wait,
)

logger = logging.getLogger(__name__)

ROUTING = SpotStatus.ROUTING
PENDING_GRACE = timedelta(seconds=30)


@dataclass
class Allocation:
    source: str
    fee: Decimal
    quantity: Decimal = Decimal(0)
    worst_price: Decimal | None = None
    notional: Decimal = Decimal(0)


def route_plan(
    *, sources: list[Source], side: str, quantity: Decimal, limit: Decimal, lot: Decimal
) -> list[Allocation]:
    """Take levels in order of price net of fee — a buyer pays ``price / (1 - fee)`` per unit
    received, a seller gets ``price x (1 - fee)`` — within ``limit``, until ``quantity``.
    Ties go to our book, then to venues by name. Quantities are whole lots."""
    buy = side == BUY
    levels = []
    for rank, source in enumerate(sources):
        for price, available in source.asks if buy else source.bids:
            if price > limit if buy else price < limit:
                continue
            net = price / (1 - source.fee) if buy else -(price * (1 - source.fee))
            levels.append((net, rank, price if buy else -price, price, available, source))
    levels.sort(key=lambda level: level[:3])
    allocations: dict[str, Allocation] = {}
    left = quantity
    for _, _, _, price, available, source in levels:
        if left <= 0:
            break
        take = min(left, (available / lot).to_integral_value(ROUND_FLOOR) * lot)
        if take <= 0:
            continue
        allocation = allocations.setdefault(source.name, Allocation(source.name, source.fee))
        allocation.quantity += take
        allocation.notional += price * take
        if allocation.worst_price is None or (
            price > allocation.worst_price if buy else price < allocation.worst_price
        ):
            allocation.worst_price = price
        left -= take
    order = {source.name: rank for rank, source in enumerate(sources)}
    return sorted(allocations.values(), key=lambda a: order[a.source])


def _floor_tick(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(ROUND_FLOOR) * tick


def _limit_of(request: OrderRequest, protect: Decimal | None) -> Decimal:
    """The worst price any child may trade at: the limit, a buy's protection price, or for a
    market sell the index less the market band (what the engine allows a market sell)."""
    if request.type == LIMIT:
        return request.price
    if protect is not None:
        return protect
    latest = index_latest(underlying=request.instrument.base)
    if not index_is_fresh(latest):
        raise IndexUnavailable(
            f"The {request.instrument.base} index is stale; market orders are paused until it recovers."
        )
    return _floor_tick(latest.price * (1 - Decimal(settings.SPOT_MARKET_BAND)), request.instrument.tick_size)


def _child_hold(side: str, allocation: Allocation) -> Decimal:
    if side == BUY:
        return quantize("USDT", allocation.worst_price * allocation.quantity, rounding=ROUND_CEILING)
    return allocation.quantity


# --- entry ----------------------------------------------------------------------------------------


def smart_order_place(*, user: User, request: OrderRequest, priced: Priced) -> tuple[SpotOrder, bool]:
    """Plan, then record the parent (entered like any order, with its full hold) and its
    children with their holds, in one transaction. The children go to work after the commit,
    off the request (``smart_order_route``): the parent is returned ``routing`` and the
    trader follows it on ``/ws/user/`` or with GET. Returns ``(parent, replayed)``."""
    if request.quantity is None:
        raise ValidationFailed(
            "Smart routing takes a quantity, not quote_quantity.",
            code="validation_error",
            fields={"quote_quantity": ["Use quantity with route smart."]},
        )
    instrument, fingerprint, protect = request.instrument, priced.fingerprint, priced.protect
    limit = _limit_of(request, protect)
    sources, _ = route_sources(symbol=instrument.symbol, depth=settings.SMART_ROUTE_DEPTH)
    plan = route_plan(
        sources=sources, side=request.side, quantity=request.quantity, limit=limit, lot=instrument.lot_size
    )
    try:
        with transaction.atomic(durable=True):
            parent, replayed = order_enter(
                user=user, request=request, fingerprint=fingerprint, protect=protect, hold=priced.hold, status=ROUTING
            )
            if replayed:
                return parent, True
            _split(parent=parent, plan=plan)
    except IntegrityError:
        return replay_after_race(user, request, fingerprint)
    return parent, False


def _split(*, parent: SpotOrder, plan: list[Allocation]) -> None:
    """Void the parent's hold and hold each child's share instead: the book child's towards
    spot clearing (as the runner expects), each venue child's towards the venue funding
    account. Runs in order entry's transaction; queues the children's work for its commit."""
    symbol, side, hold_asset = parent.symbol, parent.side, parent.hold_asset
    trader = user_account(user_id=parent.user_id, asset=hold_asset)
    ref = f"spot_order:{parent.pk}"
    split = [
        TransferRequest(
            id=f"spot:{parent.pk}:0:void",
            kind=TransferKind.VOID_PENDING,
            code="smart_split",
            pending_id=parent.hold_id(0),
            reference=ref,
        )
    ]
    book_child = None
    for allocation in plan:
        amount = _child_hold(side, allocation)
        if allocation.source == OUR_BOOK:
            book_child = SpotOrder.objects.create(
                user_id=parent.user_id,
                symbol=symbol,
                side=side,
                type=LIMIT,
                time_in_force=IOC,
                quantity=allocation.quantity,
                price=allocation.worst_price,
                route="book",
                hold_asset=hold_asset,
                hold_amount=amount,
                parent=parent,
            )
            split.append(
                TransferRequest(
                    id=book_child.hold_id(0),
                    kind=TransferKind.PENDING,
                    code="spot_hold",
                    asset=hold_asset,
                    amount=amount,
                    debit=trader,
                    reference=f"spot_order:{book_child.pk}",
                    credit=system_account(role=SystemRole.SPOT_CLEARING, asset=hold_asset, key=str(book_child.pk)),
                )
            )
        else:
            child = VenueOrder.objects.create(
                parent=parent,
                user_id=parent.user_id,
                venue=allocation.source,
                symbol=symbol,
                client_order_id=f"sor-{parent.pk}-{allocation.source}",
                side=side,
                quantity=allocation.quantity,
                limit_price=allocation.worst_price,
                hold_asset=hold_asset,
                hold_amount=amount,
            )
            split.append(
                TransferRequest(
                    id=child.transfer_id("hold"),
                    kind=TransferKind.PENDING,
                    code="venue_hold",
                    asset=hold_asset,
                    amount=amount,
                    debit=trader,
                    reference=ref,
                    credit=system_account(role=SystemRole.VENUE_FUNDING, asset=hold_asset, key=child.client_order_id),
                )
            )
    transfers_execute(split)
    parent.hold_amount, parent.hold_seq = Decimal(0), 1
    fields = ["hold_amount", "hold_seq", "updated_at"]
    if not plan:
        parent.status, parent.cancel_reason, parent.closed_at = SpotStatus.CANCELLED, "no_liquidity", timezone.now()
        fields += ["status", "cancel_reason", "closed_at"]
    parent.save(update_fields=fields)
    if not plan:
        _tell(parent)
    if book_child is not None:
        engine_wake_on_commit(symbol)
    if plan:
        enqueue_on_commit("orders.tasks.smart_order_route", parent.pk)


def smart_order_route(*, parent_id: int) -> SpotOrder:
    """The children's work, off the request: send each venue child (once), give the book
    child a moment to be matched, and close the parent if its children are done. Whatever
    is left (a lost venue reply, a slow engine) the sweep finishes (``venue_orders_resolve``)."""
    venues = {}
    for child in VenueOrder.objects.filter(parent_id=parent_id, status=VenueOrderStatus.PENDING).order_by("id"):
        venue = venues.get(child.venue) or venues.setdefault(child.venue, venue_get(child.venue))
        venue_order_execute(venue_order_id=child.pk, venue=venue)
    book_child = SpotOrder.objects.filter(parent_id=parent_id).values_list("pk", flat=True).first()
    if book_child is not None:
        spot_order_wait(order_id=book_child, until_final=True, wait=settings.SMART_ORDER_WAIT_SECONDS)
    return smart_order_refresh(parent_id=parent_id)


# --- venue children -------------------------------------------------------------------------------


def venue_order_execute(*, venue_order_id: int, venue=None) -> VenueOrder:
    """Send a venue child once and settle its answer. One already sent is only ever looked up."""
    child = VenueOrder.objects.get(pk=venue_order_id)
    if child.is_final:
        return child
    venue = venue or venue_get(child.venue)
    if child.attempts:
        return venue_order_resolve(venue_order_id=child.pk, venue=venue)
    with transaction.atomic(durable=True):
        claimed = VenueOrder.objects.filter(pk=child.pk, attempts=0).update(
            attempts=1, status=VenueOrderStatus.SENT, sent_at=timezone.now(), updated_at=timezone.now()
        )
    if not claimed:  # another process sent it first: its outcome is for a lookup to tell
        return venue_order_resolve(venue_order_id=child.pk, venue=venue)
    try:
        execution = venue.ioc_order(
            client_order_id=child.client_order_id,
            symbol=child.symbol,
            side=child.side,
            amount=child.quantity,
            limit_price=child.limit_price,
        )
    except VenueTimeout as exc:
        logger.warning("venue %s timed out on %s (%s): looking it up", child.venue, child.client_order_id, exc)
        return venue_order_resolve(venue_order_id=child.pk, venue=venue)
    except VenueError as exc:
        return _settle(child.pk, None, fee_rate=venue.taker_fee, error=exc.code, message=str(exc))
    return _settle(child.pk, execution, fee_rate=venue.taker_fee)


def venue_order_resolve(*, venue_order_id: int, venue=None, now=None) -> VenueOrder:
    """Find out what became of a sent venue child by its client order id: settle what the venue
    reports; nothing found after the venue's receive window means it never executed."""
    child = VenueOrder.objects.get(pk=venue_order_id)
    if child.is_final:
        return child
    venue = venue or venue_get(child.venue)
    try:
        found = venue.fetch_order(client_order_id=child.client_order_id, symbol=child.symbol)
    except VenueError as exc:
        return _mark_unknown(child, f"lookup failed: {exc.code}")
    if found is not None and not found.is_final:
        return _mark_unknown(child, f"venue_{found.status}")  # an IOC still working: the next lookup tells
    if found is not None:
        return _settle(child.pk, found, fee_rate=venue.taker_fee)
    now = now or timezone.now()
    if child.sent_at is None or now - child.sent_at > timedelta(seconds=venue.unknown_outcome_grace_s):
        return _settle(
            child.pk,
            None,
            fee_rate=venue.taker_fee,
            error="not_placed",
            message="not found at the venue after its receive window: never executed",
        )
    return _mark_unknown(child, "venue_timeout")


def venue_orders_resolve(*, now=None) -> int:
    """Resolve every venue child left sent or unknown (a periodic sweep, or after a crash),
    then close every ``routing`` parent whose children are all final; returns how many
    children became final."""
    done = 0
    for child_id in VenueOrder.objects.filter(
        status__in=[VenueOrderStatus.SENT, VenueOrderStatus.UNKNOWN, VenueOrderStatus.PENDING]
    ).values_list("id", flat=True):
        child = VenueOrder.objects.get(pk=child_id)
        if child.status == VenueOrderStatus.PENDING and (now or timezone.now()) - child.created_at < PENDING_GRACE:
            continue  # its router is probably about to send it
        try:
            if child.status == VenueOrderStatus.PENDING and child.attempts == 0:
                # recorded but never sent (the process died before sending): too old to send now
                child = _settle(child.pk, None, fee_rate=Decimal(0), error="not_sent", message="never sent")
            else:
                child = venue_order_resolve(venue_order_id=child.pk, now=now)
        except UnknownVenue:
            logger.error("venue order %s names a venue no longer configured", child.client_order_id)
            continue
        if child.is_final:
            done += 1
    for parent_id in SpotOrder.objects.filter(status=ROUTING).values_list("pk", flat=True):
        smart_order_refresh(parent_id=parent_id)
    return done


def _mark_unknown(child: VenueOrder, error: str) -> VenueOrder:
    VenueOrder.objects.filter(pk=child.pk, status__in=[VenueOrderStatus.SENT, VenueOrderStatus.UNKNOWN]).update(
        status=VenueOrderStatus.UNKNOWN, error=error, updated_at=timezone.now()
    )
    return VenueOrder.objects.get(pk=child.pk)


def _settle(
    child_id: int, execution: Execution | None, *, fee_rate: Decimal, error: str = "", message: str = ""
) -> VenueOrder:
    """Book a venue child's final outcome once, in one transaction. The trader settles with the
    venue funding account (our account at the venue): the hold is posted to it for what the
    fill spent (the rest released), and it pays out what was received less the fee, which goes
    to the fees account. The venue's own side is mirrored against the external world: the
    funding account paid what was spent and got the gross fill, and the fee is passed on to
    the venue (fees -> external), so the funding account ends flat. Ids ``venue:<coid>:<leg>``."""
    with transaction.atomic(durable=True):
        child = VenueOrder.objects.select_for_update().get(pk=child_id)
        if child.is_final:
            return child
        base, quote_asset = child.symbol.split("-")
        ref = f"spot_order:{child.parent_id}"
        legs = []
        filled = Decimal(0) if execution is None else execution.filled.quantize(quantum(base), ROUND_DOWN)
        if not filled:
            legs.append(
                TransferRequest(
                    id=child.transfer_id("void"),
                    kind=TransferKind.VOID_PENDING,
                    code="venue_release",
                    pending_id=child.transfer_id("hold"),
                    reference=ref,
                )
            )
            refused = execution.status == REJECTED if execution is not None else error not in ("not_placed", "not_sent")
            status = VenueOrderStatus.REJECTED if refused else VenueOrderStatus.CANCELLED
            cost = fee = Decimal(0)
        else:
            buy = child.side == BUY
            cost = quantize(quote_asset, execution.cost, rounding=ROUND_UP if buy else ROUND_DOWN)
            spent = cost if buy else filled
            if spent > child.hold_amount:  # the venue went past the limit: the trader pays no more than held
                logger.error(
                    "venue %s order %s spent %s, more than its hold %s",
                    child.venue,
                    child.client_order_id,
                    spent,
                    child.hold_amount,
                )
                error, message, spent = "exceeds_hold", f"venue reported {spent}", child.hold_amount
            received_asset = base if buy else quote_asset
            gross = filled if buy else cost
            if execution.fee is not None and execution.fee_asset == received_asset:
                fee = execution.fee
            else:  # no fee in the reply (a lookup) or in another asset: the venue's taker rate
                fee = gross * fee_rate
            fee = min(quantize(received_asset, fee, rounding=ROUND_UP), gross)
            spent_asset = quote_asset if buy else base
            key = child.client_order_id

            def leg(name, asset, amount, debit, credit, code="venue_fill"):
                if amount > 0:
                    legs.append(
                        TransferRequest(
                            id=child.transfer_id(name),
                            code=code,
                            asset=asset,
                            amount=amount,
                            debit=debit,
                            credit=credit,
                            reference=ref,
                        )
                    )

            def funding(asset):
                return system_account(role=SystemRole.VENUE_FUNDING, asset=asset, key=key)

            def external(asset):
                return system_account(role=SystemRole.EXTERNAL, asset=asset, key=key)

            fees_account = system_account(role=SystemRole.FEES, asset=received_asset, key=child.symbol)
            legs.append(
                TransferRequest(
                    id=child.transfer_id("post"),
                    kind=TransferKind.POST_PENDING,
                    code="venue_fill",
                    pending_id=child.transfer_id("hold"),
                    amount=spent,
                    reference=ref,
                )
            )
            # the venue's side of the trade: our funding account there paid and received
            leg("paid", spent_asset, spent, funding(spent_asset), external(spent_asset))
            leg("got", received_asset, gross, external(received_asset), funding(received_asset))
            # the trader's side: what was received less the fee; the fee is booked as fee
            # income and paid on to the venue, which kept it
            leg(
                "recv",
                received_asset,
                gross - fee,
                funding(received_asset),
                user_account(user_id=child.user_id, asset=received_asset),
            )
            leg("fee", received_asset, fee, funding(received_asset), fees_account, code="venue_fee")
            leg("venue_fee", received_asset, fee, fees_account, external(received_asset), code="venue_fee")
            status = VenueOrderStatus.FILLED if filled >= child.quantity else VenueOrderStatus.PARTIALLY_FILLED
        transfers_execute(legs)
        child.status = status
        child.filled_quantity, child.filled_quote, child.fee = filled, cost, fee
        child.average_price = (cost / filled).quantize(Decimal("0.00000001")) if filled else None
        child.venue_order_id = execution.venue_order_id if execution is not None else child.venue_order_id
        child.error = (f"{error}: {message}" if message else error)[:300]
        child.hold_amount = Decimal(0)
        child.closed_at = timezone.now()
        child.save()
        user_id, symbol = child.user_id, child.symbol
        transaction.on_commit(
            lambda: publish_many([(f"user:{user_id}", {"type": "balance_changed", "assets": symbol.split("-")})])
        )
    return child


# --- the parent -----------------------------------------------------------------------------------


def smart_order_refresh(*, parent_id: int) -> SpotOrder:
    """Close a ``routing`` parent once every child is final: its fills, fees and status are
    the sum of theirs. Before that (or if already closed) it is returned as it is."""
    parent = SpotOrder.objects.get(pk=parent_id)
    if parent.status != ROUTING:
        return parent
    if SpotOrder.objects.filter(parent=parent, status__in=LIVE_STATUSES).exists():
        return parent
    if parent.venue_children.exclude(status__in=VENUE_FINAL_STATUSES).exists():
        return parent
    with transaction.atomic(durable=True):
        parent = SpotOrder.objects.select_for_update(no_key=True).get(pk=parent_id)
        if parent.status != ROUTING:
            return parent
        filled = quote = fees = Decimal(0)
        for child in SpotOrder.objects.filter(parent=parent):
            filled, quote, fees = filled + child.filled_quantity, quote + child.filled_quote, fees + child.fees_paid
        for child in parent.venue_children.all():
            filled, quote, fees = filled + child.filled_quantity, quote + child.filled_quote, fees + child.fee
        parent.filled_quantity, parent.filled_quote, parent.fees_paid = filled, quote, fees
        if filled >= parent.quantity:
            parent.status = SpotStatus.FILLED
        else:
            parent.status, parent.cancel_reason = SpotStatus.CANCELLED, "ioc"
        parent.closed_at = timezone.now()
        parent.save(
            update_fields=[
                "filled_quantity",
                "filled_quote",
                "fees_paid",
                "status",
                "cancel_reason",
                "closed_at",
                "updated_at",
            ]
        )
        payload = {
            "type": "order",
            "id": parent.pk,
            "symbol": parent.symbol,
            "status": parent.status,
            "filled_quantity": str(filled),
            "client_order_id": parent.client_order_id,
        }
        user_id = parent.user_id
        transaction.on_commit(lambda: publish_many([(f"user:{user_id}", payload)]))
        _tell(parent)
    return parent


def _tell(parent: SpotOrder) -> None:
    """The trader's message of a smart order that closed, in the closing transaction."""
    message = smart_order_message(parent)
    if message is not None:
        notify_many([message])


__all__ = [
    "ROUTING",
    "route_plan",
    "smart_order_place",
    "smart_order_refresh",
    "smart_order_route",
    "venue_order_execute",
    "venue_order_resolve",
    "venue_orders_resolve",
]
