"""Amending an open spot order: a new price and/or total quantity (filled included, as in
FIX), carried out by the symbol's engine runner like a cancel.

The request is checked here (the order's type allows the change, the values fit the market,
the price band and size limits), and inserted with a reserve hold for what the change may
cost beyond the order's current hold, in one transaction: too few funds refuse it with
``insufficient_funds`` and nothing is written. The runner then applies it with the engine's
priority rules (a smaller quantity at the same price keeps the order's place in the queue;
a new price or a larger quantity re-queues it, and a new price that crosses trades at once),
or refuses it (the order is as it was). Either way the reserve is voided in that batch; an
applied amend replaces the order's hold by one of the new size.

What a buy holds is its price (a stop-market's or trailing stop's protection price) times
its remaining quantity; a sell holds its remaining quantity.
"""

from __future__ import annotations

import time
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from ledger.models import SystemRole, TransferKind
from ledger.services import IdempotencyConflict, TransferRequest, system_account, transfers_execute, user_account
from risk import core as risk_core
from risk import services as risk
from trading.errors import Conflict, NotFound, ValidationFailed
from trading.idempotency import request_hash
from trading.money import parse_decimal, quantize

from ..engine import BUY, LIMIT, STOP_LIMIT, STOP_MARKET, TRAILING_STOP
from ..models import LIVE_STATUSES, AmendStatus, SpotAmend, SpotOrder
from .entry import _index, engine_wake_on_commit, spot_instrument

PRICED_TYPES = (LIMIT, STOP_LIMIT)
AMENDABLE_TYPES = (LIMIT, STOP_LIMIT, STOP_MARKET, TRAILING_STOP)


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def amend_hold(*, order: SpotOrder, price: Decimal | None, quantity: Decimal, filled: Decimal) -> Decimal:
    """What the order holds once it is ``quantity`` in total at ``price`` with ``filled``
    done: a buy its price (or protection price) times the rest, rounded up to the cent-micro;
    a sell the rest of its base quantity."""
    remaining = quantity - filled
    if order.side != BUY:
        return remaining
    unit = price if price is not None else order.protect_price
    return quantize("USDT", unit * remaining, rounding=ROUND_CEILING)


def spot_order_amend(
    *,
    user: User,
    order_id: int,
    price=None,
    quantity=None,
    idempotency_key: str = "",
    wait: float | None = None,
) -> tuple[SpotAmend, bool]:
    """Ask the engine to change one of the trader's open orders, and wait up to ``wait``
    seconds for its verdict. Returns ``(amend, replayed)``: a repeated ``idempotency_key``
    returns the first request's amend (a different change under it is a conflict)."""
    order = SpotOrder.objects.filter(pk=order_id, user=user).first()
    if order is None:
        raise NotFound("No such order.")
    if price in (None, "") and quantity in (None, ""):
        raise ValidationFailed("Give a new price, a new quantity or both.", fields={"price": ["Nothing to change."]})
    instrument = spot_instrument(order.symbol)
    new_price = new_qty = None
    if price not in (None, ""):
        new_price = parse_decimal(price, field="price", step=instrument.tick_size, what="tick size")
    if quantity not in (None, ""):
        new_qty = parse_decimal(quantity, field="quantity", step=instrument.lot_size, what="lot size")
    fingerprint = request_hash(str(order.pk), str(new_price), str(new_qty))
    if idempotency_key:
        known = SpotAmend.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if known is not None:
            return _replay(known, fingerprint), True
    if order.type not in AMENDABLE_TYPES or order.route != "book":
        raise Conflict(f"A {order.type} order cannot be amended; cancel it instead.", code="amend_not_allowed")
    if new_price is not None and order.type not in PRICED_TYPES:
        raise _bad("price", f"A {order.type} order has no limit price to change.")
    price_after = new_price if new_price is not None else order.price
    qty_after = new_qty if new_qty is not None else order.quantity
    if qty_after == order.quantity and price_after == order.price:
        raise _bad("price" if new_price is not None else "quantity", "That is the order's price and quantity already.")
    if qty_after <= order.filled_quantity:
        raise _bad("quantity", f"quantity must be more than the {order.filled_quantity.normalize():f} filled.")
    index = _index(instrument)
    # the band and size checks read the order as it would be (its remaining value)
    facts = risk_core.SpotOrder(
        side=order.side,
        type=order.type,
        quantity=qty_after - order.filled_quantity,
        notional=(price_after or order.protect_price or order.stop_price or Decimal(0))
        * (qty_after - order.filled_quantity),
        price=price_after,
        stop_price=order.stop_price,
        tick=instrument.tick_size,
    )
    risk.spot_order_precheck(user=user, instrument=instrument, order=facts, index=index)
    try:
        with transaction.atomic(durable=True):
            order = SpotOrder.objects.select_for_update(no_key=True).filter(pk=order_id, user=user).first()
            if order.status not in LIVE_STATUSES:
                raise Conflict(f"The order is already {order.status}.", code="order_not_open")
            if order.cancel_requested_at is not None:
                raise Conflict("The order is being cancelled.", code="order_not_open")
            if SpotAmend.objects.filter(order=order, status=AmendStatus.PENDING).exists():
                raise Conflict("An amend of this order is still waiting for the engine.", code="amend_pending")
            needed = amend_hold(order=order, price=price_after, quantity=qty_after, filled=order.filled_quantity)
            amend = SpotAmend.objects.create(
                order=order,
                user_id=user.pk,
                symbol=order.symbol,
                price=new_price,
                quantity=new_qty,
                reserve=max(Decimal(0), needed - order.hold_amount),
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
            )
            if amend.reserve:
                transfers_execute(
                    [
                        TransferRequest(
                            id=amend.reserve_id(),
                            kind=TransferKind.PENDING,
                            code="spot_hold",
                            asset=order.hold_asset,
                            amount=amend.reserve,
                            debit=user_account(user_id=user.pk, asset=order.hold_asset),
                            credit=system_account(
                                role=SystemRole.SPOT_CLEARING, asset=order.hold_asset, key=str(order.pk)
                            ),
                            reference=f"spot_order:{order.pk}",
                        )
                    ]
                )
            engine_wake_on_commit(order.symbol)
    except IntegrityError:
        # the same key raced in from another request: the winner's amend is the answer
        known = SpotAmend.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if idempotency_key and known is not None:
            return _replay(known, fingerprint), True
        raise Conflict("An amend of this order is still waiting for the engine.", code="amend_pending") from None
    return spot_amend_wait(amend_id=amend.pk, wait=wait), False


def _replay(known: SpotAmend, fingerprint: str) -> SpotAmend:
    if known.request_hash != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was used for a different amend.")
    return known


def spot_amend_wait(*, amend_id: int, wait: float | None = None) -> SpotAmend:
    """The amend once the engine has decided it, or as it is after ``wait`` seconds."""
    deadline = time.monotonic() + (settings.SPOT_ORDER_WAIT_SECONDS if wait is None else wait)
    delay = 0.005
    while True:
        amend = SpotAmend.objects.select_related("order").get(pk=amend_id)
        if amend.status != AmendStatus.PENDING or time.monotonic() >= deadline:
            return amend
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


__all__ = ["amend_hold", "spot_amend_wait", "spot_order_amend"]
