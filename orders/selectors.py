"""Orders reads: the trader's spot orders and fills; option orders, positions (valued at the
live mark) and expiries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from marketdata.options import IndexStale, live_index, series_price
from trading.errors import NotFound, ValidationFailed
from trading.money import quantize

from .models import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    OptionExercise,
    OptionOrder,
    OptionPosition,
    PositionStatus,
    SpotOrder,
    SpotStatus,
    SpotTrade,
)

POSITION_FILTERS = {
    "open": [PositionStatus.OPEN],
    "closed": [PositionStatus.CLOSED, PositionStatus.EXERCISED, PositionStatus.EXPIRED],
    "all": list(PositionStatus.values),
}


def option_orders_for(*, user):
    return OptionOrder.objects.filter(user=user).order_by("-created_at", "-id")


def option_exercises_for(*, user):
    return OptionExercise.objects.filter(user=user).order_by("-created_at", "-id")


@dataclass
class PositionView:
    """A position with what it is worth now. The mark fields are None while the index is stale."""

    position: OptionPosition
    index_price: Decimal | None = None
    mark_price_usdt: Decimal | None = None
    close_price_usdt: Decimal | None = None
    mark_value_usdt: Decimal | None = None
    unrealized_pnl_usdt: Decimal | None = None

    def __getattr__(self, name):
        return getattr(self.position, name)


def option_positions_for(*, user, status: str = "open", now: datetime | None = None) -> list[PositionView]:
    """The trader's positions; open ones valued at the chain's mark on the live index."""
    if status not in POSITION_FILTERS:
        raise ValidationFailed("status must be open, closed or all.", fields={"status": ["open, closed or all."]})
    now = now or timezone.now()
    positions = (
        OptionPosition.objects.filter(user=user, status__in=POSITION_FILTERS[status])
        .select_related("instrument")
        .order_by("instrument__expiry", "series")
    )
    indexes: dict[str, Decimal | None] = {}
    views = []
    for position in positions:
        view = PositionView(position)
        instrument = position.instrument
        if position.status == PositionStatus.OPEN and instrument.expiry > now:
            if position.underlying not in indexes:
                try:
                    indexes[position.underlying] = live_index(position.underlying)
                except IndexStale:
                    indexes[position.underlying] = None
            index = indexes[position.underlying]
            if index is not None:
                price = series_price(instrument=instrument, now=now, index=index)
                view.index_price = index
                view.mark_price_usdt = price.mark_usdt
                view.close_price_usdt = price.bid_usdt
                view.mark_value_usdt = quantize("USDT", price.mark_usdt * position.contracts)
                view.unrealized_pnl_usdt = view.mark_value_usdt - position.cost_usdt
        views.append(view)
    return views


def option_position_get(*, user, instrument_id: int) -> OptionPosition | None:
    return OptionPosition.objects.select_related("instrument").filter(user=user, instrument_id=instrument_id).first()


# --- spot -----------------------------------------------------------------------------------------

SPOT_STATUS_FILTERS = {
    "open": [*LIVE_STATUSES, SpotStatus.ROUTING],
    "closed": list(FINAL_STATUSES),
    "all": None,
}


def spot_orders_for(*, user, status: str = "all", symbol: str | None = None):
    """The trader's spot orders, newest first; ``status`` is open, closed, all or one status."""
    qs = SpotOrder.objects.filter(user=user)
    if status in SPOT_STATUS_FILTERS:
        if SPOT_STATUS_FILTERS[status] is not None:
            qs = qs.filter(status__in=SPOT_STATUS_FILTERS[status])
    elif status in SpotStatus.values:
        qs = qs.filter(status=status)
    else:
        raise ValidationFailed(
            "status must be open, closed, all or an order status.", fields={"status": ["open, closed, all, or a status."]}
        )
    if symbol:
        qs = qs.filter(symbol=symbol.upper())
    return qs.order_by("-id")


def spot_order_get(*, user, order_id) -> SpotOrder:
    """One of the trader's orders; another trader's is not found (404), never forbidden."""
    try:
        order_id = int(order_id)
    except (TypeError, ValueError):
        raise NotFound("No such order.") from None
    order = SpotOrder.objects.filter(pk=order_id, user=user).first()
    if order is None:
        raise NotFound("No such order.")
    return order


@dataclass
class Fill:
    """A trader's side of one trade (their execution report)."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    quantity: Decimal
    quote_amount: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: str
    time: datetime


def _fill(trade: SpotTrade, user_id: int) -> Fill:
    maker = trade.maker_user_id == user_id
    side = ("sell" if trade.taker_side == "buy" else "buy") if maker else trade.taker_side
    base = trade.symbol.split("-")[0]
    return Fill(
        trade_id=trade.pk, order_id=trade.maker_order_id if maker else trade.taker_order_id, symbol=trade.symbol,
        side=side, price=trade.price, quantity=trade.quantity, quote_amount=trade.quote_amount,
        fee=trade.maker_fee if maker else trade.taker_fee, fee_asset=base if side == "buy" else "USDT",
        liquidity="maker" if maker else "taker", time=trade.created_at,
    )


def spot_fills_for(*, user, symbol: str | None = None, limit: int = 100) -> list[Fill]:
    """The trader's fills, newest first (a trade against yourself cannot happen: self-trade
    prevention cancels the resting order)."""
    maker = SpotTrade.objects.filter(maker_user=user)
    taker = SpotTrade.objects.filter(taker_user=user)
    if symbol:
        maker, taker = maker.filter(symbol=symbol.upper()), taker.filter(symbol=symbol.upper())
    trades = sorted(list(maker.order_by("-id")[:limit]) + list(taker.order_by("-id")[:limit]), key=lambda t: -t.pk)[:limit]
    return [_fill(trade, user.pk) for trade in trades]


def spot_order_fills(*, order: SpotOrder) -> list[Fill]:
    trades = SpotTrade.objects.filter(Q(maker_order=order) | Q(taker_order=order)).order_by("id")
    return [
        _fill_of_order(trade, order) for trade in trades
    ]


def _fill_of_order(trade: SpotTrade, order: SpotOrder) -> Fill:
    maker = trade.maker_order_id == order.pk
    return Fill(
        trade_id=trade.pk, order_id=order.pk, symbol=trade.symbol, side=order.side, price=trade.price,
        quantity=trade.quantity, quote_amount=trade.quote_amount, fee=trade.maker_fee if maker else trade.taker_fee,
        fee_asset=trade.symbol.split("-")[0] if order.side == "buy" else "USDT", liquidity="maker" if maker else "taker",
        time=trade.created_at,
    )
