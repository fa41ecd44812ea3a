"""The USDT-mode options counter: quotes, buy to open, sell to close, and expiry.

Every fill is one transaction that locks, in this order, the trader's user row (one
trader's option orders are decided one at a time, so limits and idempotency checks are
exact), their position in the series, then the ledger accounts (``transfers_execute``
locks those by primary key). It records the order, moves the USDT between the trader and
the OPTION_CLEARING system account under a transfer id derived from the order, and writes
the outbox event the back office settles. Expiry locks only the position.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from accounts.selectors import kyc_tier
from ledger.models import SystemRole
from ledger.selectors import balance_of
from ledger.services import IdempotencyConflict, TransferRequest, system_account, transfers_execute, user_account
from marketdata.models import Instrument, InstrumentKind, OptionType
from marketdata.options import live_index, series_price
from marketdata.selectors import index_twap
from risk import core as risk_core
from risk import exposure as exposure_core
from risk import services as risk
from trading.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from trading.formatting import decimal_string, display_amount, utc_string
from trading.idempotency import parse_client_order_id as _parse_client_order_id
from trading.idempotency import request_hash as _hash
from trading.metrics import order_entry_timed
from trading.money import fmt, parse_decimal, quantize
from trading.outbox import outbox_write

from . import exposure, notices
from .models import (
    ExerciseOutcome,
    OptionExercise,
    OptionOrder,
    OptionPosition,
    OptionQuote,
    OptionSide,
    PositionStatus,
    SettlementState,
)

logger = logging.getLogger(__name__)

USDT = "USDT"
PRICE_TICK = Decimal("0.01")  # USDT per contract
LOT = Decimal("0.01")  # contracts (each series also carries its own lot size)
IV_PLACES = Decimal("0.0001")
ORDER_TOPIC = "options.order"
EXERCISE_TOPIC = "options.exercise"


class SettlementPriceUnavailable(DomainError):
    """No index TWAP for an expiry yet: the expiry run must be retried later."""

    status = 503
    code = "settlement_price_unavailable"


# --- input ------------------------------------------------------------------------------------------


def _parse_side(value) -> str:
    if value not in OptionSide.values:
        raise ValidationFailed("side must be buy or sell.", fields={"side": ["buy or sell."]})
    return value


def _tradable_series(series, *, now: datetime) -> Instrument:
    symbol = (series or "").strip().upper() if isinstance(series, str) else ""
    if not symbol:
        raise ValidationFailed(
            "series is required.", fields={"series": ["An option series, e.g. BTC-20261225-100000-C."]}
        )
    instrument = Instrument.objects.filter(symbol=symbol, kind=InstrumentKind.OPTION).first()
    if instrument is None:
        raise NotFound(f"Unknown option series {symbol}.")
    _check_not_expired(instrument, now=now)
    return instrument


def _check_not_expired(instrument: Instrument, *, now: datetime) -> None:
    cutoff = timedelta(seconds=settings.OPTION_TRADING_CUTOFF_SECONDS)
    if not instrument.active or instrument.expiry - cutoff <= now:
        raise Conflict(
            f"{instrument.symbol} has expired or is about to expire; it can no longer be traded.", code="series_expired"
        )


# --- quotes -----------------------------------------------------------------------------------------


def options_quote(*, user: User, series: str, side: str, contracts, now: datetime | None = None) -> OptionQuote:
    """A firm price for ``contracts`` of ``series``: the chain's ask to buy, its bid to sell
    (mark ± the counter's spread), in USDT per contract at the live index. Valid for
    OPTION_QUOTE_TTL_SECONDS and for one order."""
    now = now or timezone.now()
    side = _parse_side(side)
    parse_decimal(contracts, field="contracts", step=LOT, what="lot size")  # bad input first, then the series
    instrument = _tradable_series(series, now=now)
    contracts_value = parse_decimal(contracts, field="contracts", step=instrument.lot_size, what="lot size")
    held = _held_contracts(user=user, instrument=instrument)
    if side == OptionSide.SELL and contracts_value > held:
        raise _insufficient_position(instrument, held)
    # a quote that no order could use is not given (the order is checked again, at fill)
    risk.option_quote_precheck(user=user, instrument=instrument, side=side, contracts=contracts_value, held=held)
    price = series_price(instrument=instrument, now=now)
    unit, spread = _counter_price(price, instrument=instrument, side=side, contracts=contracts_value, now=now)
    total = quantize(USDT, unit * contracts_value)
    if side == OptionSide.BUY:
        _check_affordable(user=user, instrument=instrument, unit=unit, total=total)
    with transaction.atomic(durable=True):
        return OptionQuote.objects.create(
            user=user,
            instrument=instrument,
            series=instrument.symbol,
            underlying=instrument.base,
            side=side,
            contracts=contracts_value,
            price_usdt=unit,
            total_usdt=total,
            mark_usdt=price.mark_usdt,
            index_price=price.index,
            iv=Decimal(repr(price.iv)).quantize(IV_PLACES, rounding=ROUND_HALF_EVEN),
            spread=Decimal(repr(spread)).quantize(Decimal("0.00000001")),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.OPTION_QUOTE_TTL_SECONDS),
        )


def _check_affordable(*, user: User, instrument: Instrument, unit: Decimal, total: Decimal) -> None:
    """A buy quote the trader's available USDT cannot pay is refused now, with the reason and
    the most they could buy at that price, rather than at the order (checked again there)."""
    available = balance_of(user=user, asset=USDT).available
    if total <= available:
        return
    most = (available / unit // instrument.lot_size) * instrument.lot_size if unit > 0 else Decimal(0)
    raise Conflict(
        f"{display_amount(total, USDT)} USDT for this quote is more than the "
        f"{display_amount(available, USDT)} USDT you have available.",
        code="insufficient_funds",
        fields={
            "contracts": [
                f"At most {decimal_string(most)} contracts at this price."
                if most > 0
                else f"Not enough for {decimal_string(instrument.lot_size)} contracts, the smallest order: "
                "deposit USDT first."
            ]
        },
    )


def _counter_price(price, *, instrument: Instrument, side: str, contracts: Decimal, now: datetime):
    """The counter's price per contract and half-spread (a fraction of the mark) for this
    order: the chain's bid to sell (and its distance below the mark); to buy, its ask,
    widened when the buy adds to the counter's exposure past a soft limit (``RiskRefused``
    past a hard one)."""
    if side != OptionSide.BUY:
        return price.bid_usdt, price.bid_spread
    decision = exposure.counter_decision(
        instrument=instrument, side=side, contracts=contracts, index=price.index, now=now
    )
    if decision.refusal is not None:
        raise risk.RiskRefused(decision.refusal)
    ask = exposure_core.widened_ask(
        mark=price.mark_usdt, ask=price.ask_usdt, spread=price.spread, multiplier=decision.multiplier
    )
    return ask, price.spread * decision.multiplier


def option_quotes_purge(*, now: datetime | None = None, older_than: timedelta = timedelta(hours=24)) -> int:
    """Delete quotes that expired unused more than ``older_than`` ago (one is written per
    "Get quote"); quotes that filled an order stay with it."""
    cutoff = (now or timezone.now()) - older_than
    with transaction.atomic(durable=True):
        deleted, _ = OptionQuote.objects.filter(expires_at__lt=cutoff, order__isnull=True).delete()
    return deleted


def _premium_open(user: User) -> Decimal:
    """Premium paid for the trader's open positions (the premium limit's usage)."""
    total = OptionPosition.objects.filter(user=user, status=PositionStatus.OPEN).aggregate(total=Sum("cost_usdt"))
    return total["total"] or Decimal(0)


def _held_contracts(*, user: User, instrument: Instrument) -> Decimal:
    position = OptionPosition.objects.filter(user=user, instrument=instrument, status=PositionStatus.OPEN).first()
    return position.contracts if position else Decimal(0)


def _insufficient_position(instrument: Instrument, held: Decimal) -> Conflict:
    return Conflict(
        f"You hold {decimal_string(held)} contracts of {instrument.symbol}; you can only sell what you hold.",
        code="insufficient_position",
        fields={"contracts": [f"At most {decimal_string(held)}."]},
    )


# --- orders -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fill:
    """What an order will do, decided before its transaction opens."""

    instrument: Instrument
    side: str
    contracts: Decimal
    price_usdt: Decimal
    mark_usdt: Decimal
    iv: Decimal
    index_price: Decimal
    quote: OptionQuote | None
    limit_price_usdt: Decimal | None

    @property
    def total_usdt(self) -> Decimal:
        return quantize(USDT, self.price_usdt * self.contracts)


@order_entry_timed("option")
def options_order_place(
    *,
    user: User,
    quote_id=None,
    series=None,
    side=None,
    contracts=None,
    limit_price_usdt=None,
    client_order_id=None,
    now: datetime | None = None,
) -> tuple[OptionOrder, bool]:
    """Fill an order against the counter: from a quote (``quote_id``), or at the live price if
    it is no worse than ``limit_price_usdt``. Returns ``(order, replayed)``: with a
    ``client_order_id`` seen before, the original order and True (no second effect)."""
    now = now or timezone.now()
    client_order_id = _parse_client_order_id(client_order_id)
    direct = (series, side, contracts, limit_price_usdt)
    if quote_id not in (None, ""):
        if any(value not in (None, "") for value in direct):
            raise ValidationFailed(
                "Send either quote_id, or series, side, contracts and limit_price_usdt; not both.",
                fields={"quote_id": ["Not together with series, side, contracts or limit_price_usdt."]},
            )
        quote_uuid = _parse_quote_id(quote_id)
        request_hash = _hash("quote", str(quote_uuid))
    else:
        quote_uuid = None
        side = _parse_side(side)
        contracts_value = parse_decimal(contracts, field="contracts", step=LOT, what="lot size")
        limit = parse_decimal(limit_price_usdt, field="limit_price_usdt", step=PRICE_TICK, what="price tick")
        request_hash = _hash(
            "limit", str(series or "").strip().upper(), side, decimal_string(contracts_value), decimal_string(limit)
        )

    if client_order_id:
        existing = OptionOrder.objects.filter(user=user, client_order_id=client_order_id).first()
        if existing is not None:
            return _replay(existing, request_hash), True

    risk.order_rate_take(user=user)
    if quote_uuid is not None:
        fill = _fill_from_quote(user=user, quote_id=quote_uuid, now=now)
    else:
        fill = _fill_at_limit(series=series, side=side, contracts=contracts_value, limit=limit, now=now)
    if fill.side == OptionSide.BUY and settings.OPTION_KYC_REQUIRED and kyc_tier(user=user) < 1:
        raise Forbidden("Complete identity verification (KYC) before buying options.", code="kyc_required")

    try:
        return _execute(user=user, fill=fill, client_order_id=client_order_id, request_hash=request_hash, now=now)
    except IntegrityError:
        if client_order_id:
            existing = OptionOrder.objects.filter(user=user, client_order_id=client_order_id).first()
            if existing is not None:
                return _replay(existing, request_hash), True
        if fill.quote is not None and OptionOrder.objects.filter(quote=fill.quote).exists():
            raise _quote_used() from None
        raise


def _parse_quote_id(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed("quote_id is not a quote id.", fields={"quote_id": ["Not a valid quote id."]}) from None


def _replay(existing: OptionOrder, request_hash: str) -> OptionOrder:
    if existing.request_hash != request_hash:
        raise IdempotencyConflict(
            "This client_order_id was used for a different order.", fields={"client_order_id": ["Already used."]}
        )
    return existing


def _quote_used() -> Conflict:
    return Conflict("This quote has already been used for an order; ask for a new one.", code="quote_used")


def _fill_from_quote(*, user: User, quote_id: uuid.UUID, now: datetime) -> _Fill:
    quote = OptionQuote.objects.select_related("instrument").filter(pk=quote_id, user=user).first()
    if quote is None:
        raise NotFound("No such quote.")
    if OptionOrder.objects.filter(quote=quote).exists():
        raise _quote_used()
    if quote.expires_at <= now:
        raise Conflict("This quote has expired; ask for a new one.", code="quote_expired")
    _check_not_expired(quote.instrument, now=now)
    index = live_index(quote.underlying)
    moved = abs(index - quote.index_price) / quote.index_price
    if moved > Decimal(repr(settings.OPTION_QUOTE_INDEX_TOLERANCE)):
        raise Conflict(
            f"The {quote.underlying} index moved {moved * 100:.2f}% since the quote; ask for a new one.",
            code="quote_index_moved",
        )
    return _Fill(
        instrument=quote.instrument,
        side=quote.side,
        contracts=quote.contracts,
        price_usdt=quote.price_usdt,
        mark_usdt=quote.mark_usdt,
        iv=quote.iv,
        index_price=index,
        quote=quote,
        limit_price_usdt=None,
    )


def _fill_at_limit(*, series, side: str, contracts: Decimal, limit: Decimal, now: datetime) -> _Fill:
    instrument = _tradable_series(series, now=now)
    contracts = parse_decimal(contracts, field="contracts", step=instrument.lot_size, what="lot size")
    price = series_price(instrument=instrument, now=now)
    unit, _ = _counter_price(price, instrument=instrument, side=side, contracts=contracts, now=now)
    if side == OptionSide.BUY and unit > limit:
        raise Conflict(
            f"The counter's price {unit:f} USDT is above your limit {limit:f}.",
            code="price_limit_exceeded",
            fields={"limit_price_usdt": [f"The buy price is {unit:f}."]},
        )
    if side == OptionSide.SELL and price.bid_usdt < limit:
        raise Conflict(
            f"The counter's price {price.bid_usdt:f} USDT is below your limit {limit:f}.",
            code="price_limit_exceeded",
            fields={"limit_price_usdt": [f"The sell price is {price.bid_usdt:f}."]},
        )
    return _Fill(
        instrument=instrument,
        side=side,
        contracts=contracts,
        price_usdt=unit,
        mark_usdt=price.mark_usdt,
        iv=Decimal(repr(price.iv)).quantize(IV_PLACES, rounding=ROUND_HALF_EVEN),
        index_price=price.index,
        quote=None,
        limit_price_usdt=limit,
    )


def _execute(
    *, user: User, fill: _Fill, client_order_id: str, request_hash: str, now: datetime
) -> tuple[OptionOrder, bool]:
    with transaction.atomic(durable=True):
        User.objects.select_for_update(no_key=True).filter(pk=user.pk).first()
        # Under the trader's lock: a concurrent request with the same id or quote has
        # either committed (seen here) or waits behind us.
        if client_order_id:
            existing = OptionOrder.objects.filter(user=user, client_order_id=client_order_id).first()
            if existing is not None:
                return _replay(existing, request_hash), True
        if fill.quote is not None and OptionOrder.objects.filter(quote=fill.quote).exists():
            raise _quote_used()
        position = OptionPosition.objects.select_for_update().filter(user=user, instrument=fill.instrument).first()
        held = position.contracts if position is not None and position.status == PositionStatus.OPEN else Decimal(0)
        risk.option_order_admit(
            user=user,
            instrument=fill.instrument,
            order=risk_core.OptionOrder(
                side=fill.side,
                contracts=fill.contracts,
                total_usdt=fill.total_usdt,
                held=held,
                premium_open=_premium_open(user) if fill.side == OptionSide.BUY else Decimal(0),
            ),
            operation=(
                f"option_order:{client_order_id}"
                if client_order_id
                else f"option_quote:{fill.quote.pk}"
                if fill.quote is not None
                else ""
            ),
        )
        if fill.side == OptionSide.BUY:
            # the counter's own book, as of at most COUNTER_EXPOSURE_CACHE_SECONDS ago
            # (orders/options/exposure.py says why that and not a lock)
            decision = exposure.counter_decision(
                instrument=fill.instrument,
                side=fill.side,
                contracts=fill.contracts,
                index=fill.index_price,
                now=now,
            )
            if decision.refusal is not None:
                raise risk.RiskRefused(decision.refusal)
        if fill.side == OptionSide.BUY:
            order = _open(
                user=user,
                fill=fill,
                position=position,
                client_order_id=client_order_id,
                request_hash=request_hash,
                now=now,
            )
        else:
            order = _close(
                user=user,
                fill=fill,
                position=position,
                client_order_id=client_order_id,
                request_hash=request_hash,
                now=now,
            )
        _write_order_event(order)
        notices.order_filled(order)
    exposure.exposure_forget(fill.instrument.base)  # committed: this process sees it at once
    return order, False


def _new_order(*, user, fill: _Fill, client_order_id: str, request_hash: str, realized=None) -> OptionOrder:
    total = fill.total_usdt
    return OptionOrder.objects.create(
        user=user,
        instrument=fill.instrument,
        series=fill.instrument.symbol,
        underlying=fill.instrument.base,
        side=fill.side,
        contracts=fill.contracts,
        price_usdt=fill.price_usdt,
        total_usdt=total,
        underlying_qty=quantize(fill.instrument.base, total / fill.index_price),
        index_price=fill.index_price,
        mark_usdt=fill.mark_usdt,
        iv=fill.iv,
        limit_price_usdt=fill.limit_price_usdt,
        quote=fill.quote,
        realized_pnl_usdt=realized,
        client_order_id=client_order_id,
        request_hash=request_hash,
    )


def _open(
    *, user, fill: _Fill, position: OptionPosition | None, client_order_id: str, request_hash: str, now
) -> OptionOrder:
    underlying = fill.instrument.base
    total = fill.total_usdt
    if position is not None and position.status in (PositionStatus.EXERCISED, PositionStatus.EXPIRED):
        raise Conflict(f"{fill.instrument.symbol} has expired; it can no longer be traded.", code="series_expired")
    if position is None:
        position = OptionPosition(
            user=user, instrument=fill.instrument, series=fill.instrument.symbol, underlying=underlying
        )
    if position.status != PositionStatus.OPEN or position.contracts == 0:
        position.status, position.contracts, position.cost_usdt, position.closed_at = (
            PositionStatus.OPEN,
            Decimal(0),
            Decimal(0),
            None,
        )
    position.contracts += fill.contracts
    position.cost_usdt += total
    position.average_price_usdt = quantize(USDT, position.cost_usdt / position.contracts, rounding=ROUND_HALF_EVEN)
    position.save()

    order = _new_order(user=user, fill=fill, client_order_id=client_order_id, request_hash=request_hash)
    transfers_execute(
        [
            TransferRequest(
                id=order.transfer_id,
                code="option_open",
                asset=USDT,
                amount=total,
                debit=user_account(user_id=user.pk, asset=USDT),
                credit=system_account(role=SystemRole.OPTION_CLEARING, asset=USDT, key=order.transfer_id),
                reference=order.outbox_key,
            )
        ]
    )
    return order


def _close(
    *, user, fill: _Fill, position: OptionPosition | None, client_order_id: str, request_hash: str, now
) -> OptionOrder:
    held = position.contracts if position is not None and position.status == PositionStatus.OPEN else Decimal(0)
    if fill.contracts > held:
        raise _insufficient_position(fill.instrument, held)
    proceeds = fill.total_usdt
    if fill.contracts == position.contracts:
        cost_released = position.cost_usdt
    else:
        cost_released = quantize(
            USDT, position.cost_usdt * fill.contracts / position.contracts, rounding=ROUND_HALF_EVEN
        )
    realized = proceeds - cost_released
    position.contracts -= fill.contracts
    position.cost_usdt -= cost_released
    position.realized_pnl_usdt += realized
    if position.contracts == 0:
        position.status, position.closed_at = PositionStatus.CLOSED, now
    position.save()

    order = _new_order(
        user=user, fill=fill, client_order_id=client_order_id, request_hash=request_hash, realized=realized
    )
    if proceeds > 0:  # a worthless option closes for nothing: no money moves
        transfers_execute(
            [
                TransferRequest(
                    id=order.transfer_id,
                    code="option_close",
                    asset=USDT,
                    amount=proceeds,
                    debit=system_account(role=SystemRole.OPTION_CLEARING, asset=USDT, key=order.transfer_id),
                    credit=user_account(user_id=user.pk, asset=USDT),
                    reference=order.outbox_key,
                )
            ]
        )
    return order


def _write_order_event(order: OptionOrder) -> None:
    key = order.outbox_key
    outbox_write(
        topic=ORDER_TOPIC,
        key=key,
        payload={
            "ref": key,
            "kind": order.kind,
            "order_id": order.pk,
            "user_id": order.user_id,
            "series": order.series,
            "underlying": order.underlying,
            "contracts": decimal_string(order.contracts, step=LOT),
            "usdt": fmt(USDT, order.total_usdt),
            "underlying_qty": fmt(order.underlying, order.underlying_qty),
            "index_price": decimal_string(order.index_price),
            "created_at": utc_string(order.created_at),
        },
    )


# --- expiry -----------------------------------------------------------------------------------------


def settlement_price(*, underlying: str, expiry: datetime) -> Decimal | None:
    """The index TWAP over the OPTION_SETTLEMENT_TWAP_MINUTES before ``expiry``, or None."""
    return index_twap(underlying=underlying, end=expiry, minutes=settings.OPTION_SETTLEMENT_TWAP_MINUTES)


def intrinsic_value(*, option_type: str, strike: Decimal, settlement: Decimal) -> Decimal:
    """USDT per contract (one unit of the underlying) at expiry."""
    value = settlement - strike if option_type == OptionType.CALL else strike - settlement
    return max(value, Decimal(0))


def options_expire(*, expiry: datetime | None = None, now: datetime | None = None) -> dict:
    """Exercise the in-the-money open positions of every series that has expired (or of
    ``expiry`` only) at the settlement TWAP, paying the intrinsic value in USDT, and expire
    the rest. Each position is settled in its own transaction, once: re-running, or running
    twice at the same time, changes nothing more. Raises ``SettlementPriceUnavailable``
    (after settling what it could) when an expiry has no TWAP yet."""
    now = now or timezone.now()
    if expiry is not None and expiry > now:
        raise Conflict(f"{utc_string(expiry)} has not expired yet.", code="not_expired")
    due = OptionPosition.objects.filter(status=PositionStatus.OPEN, instrument__expiry__lte=now)
    if expiry is not None:
        due = due.filter(instrument__expiry=expiry)
    groups = sorted(set(due.values_list("underlying", "instrument__expiry")))
    summary = {"exercised": 0, "expired": 0, "payout_usdt": Decimal(0), "expiries": [], "unavailable": []}
    for underlying, series_expiry in groups:
        price = settlement_price(underlying=underlying, expiry=series_expiry)
        label = f"{underlying} {utc_string(series_expiry)}"
        if price is None:
            logger.warning("options expiry %s: no index TWAP yet; will retry", label)
            summary["unavailable"].append(label)
            continue
        summary["expiries"].append(
            {"underlying": underlying, "expiry": utc_string(series_expiry), "settlement_price": decimal_string(price)}
        )
        position_ids = (
            due.filter(underlying=underlying, instrument__expiry=series_expiry)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for position_id in list(position_ids):
            exercise = _expire_position(position_id=position_id, settlement=price)
            if exercise is None:
                continue  # settled by a concurrent run
            summary[exercise.outcome] += 1
            summary["payout_usdt"] += exercise.payout_usdt
        exposure.exposure_forget(underlying)
    if summary["unavailable"]:
        raise SettlementPriceUnavailable(
            f"No index TWAP yet for {', '.join(summary['unavailable'])}; "
            "positions there stay open until a retry settles them."
        )
    return summary


def _expire_position(*, position_id: int, settlement: Decimal) -> OptionExercise | None:
    with transaction.atomic(durable=True):
        position = (
            OptionPosition.objects.select_for_update().select_related("instrument").filter(pk=position_id).first()
        )
        if position is None or position.status != PositionStatus.OPEN:
            return None
        instrument = position.instrument
        intrinsic = intrinsic_value(option_type=instrument.option_type, strike=instrument.strike, settlement=settlement)
        payout = quantize(USDT, intrinsic * position.contracts)
        exercised = payout > 0
        exercise = OptionExercise.objects.create(
            position=position,
            user_id=position.user_id,
            instrument=instrument,
            series=position.series,
            underlying=position.underlying,
            expiry=instrument.expiry,
            outcome=ExerciseOutcome.EXERCISED if exercised else ExerciseOutcome.EXPIRED,
            contracts=position.contracts,
            settlement_price=settlement,
            intrinsic_usdt=intrinsic,
            payout_usdt=payout,
            underlying_qty=quantize(position.underlying, payout / settlement),
            realized_pnl_usdt=payout - position.cost_usdt,
            # Nothing leaves the platform for a worthless expiry: there is nothing to settle.
            settlement_state=SettlementState.PENDING if exercised else SettlementState.SETTLED,
        )
        position.realized_pnl_usdt += exercise.realized_pnl_usdt
        position.status = PositionStatus.EXERCISED if exercised else PositionStatus.EXPIRED
        position.contracts, position.cost_usdt, position.closed_at = Decimal(0), Decimal(0), timezone.now()
        position.save()
        notices.exercise_done(exercise)
        if exercised:
            transfers_execute(
                [
                    TransferRequest(
                        id=exercise.transfer_id,
                        code="option_exercise",
                        asset=USDT,
                        amount=payout,
                        debit=system_account(role=SystemRole.OPTION_CLEARING, asset=USDT, key=exercise.transfer_id),
                        credit=user_account(user_id=position.user_id, asset=USDT),
                        reference=exercise.outbox_key,
                    )
                ]
            )
            key = exercise.outbox_key
            outbox_write(
                topic=EXERCISE_TOPIC,
                key=key,
                payload={
                    "ref": key,
                    "kind": "exercise",
                    "order_id": None,
                    "exercise_id": exercise.pk,
                    "position_id": position.pk,
                    "user_id": position.user_id,
                    "series": exercise.series,
                    "underlying": exercise.underlying,
                    "contracts": decimal_string(exercise.contracts, step=LOT),
                    "usdt": fmt(USDT, payout),
                    "underlying_qty": fmt(exercise.underlying, exercise.underlying_qty),
                    "index_price": decimal_string(settlement),
                    "settlement_price": decimal_string(settlement),
                    "created_at": utc_string(exercise.created_at),
                },
            )
    return exercise
