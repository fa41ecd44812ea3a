"""Spot reads: the trader's orders and fills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Q

from trading.db import Read, sql_int, sql_name
from trading.errors import NotFound, ValidationFailed
from trading.formatting import decimal_string

from .models import FINAL_STATUSES, LIVE_STATUSES, SpotOrder, SpotStatus, SpotTrade
from .routing_selectors import OUR_BOOK

SPOT_STATUS_FILTERS = {
    "open": [*LIVE_STATUSES, SpotStatus.ROUTING],
    "closed": list(FINAL_STATUSES),
    "all": None,
}


_LIVE = ", ".join(repr(str(status)) for status in LIVE_STATUSES)


def live_orders_read(*, user_id: int, symbol: str) -> Read:
    """The trader's live orders (the open-order limit's usage) and the base quantity their live
    buys on ``symbol`` may still buy (counted in the position limit, as the holding they may
    become), in one plain statement on a partial index: order entry sends it with its other
    reads after locking the trader's row (``trading.db.read_together``)."""
    sql = (
        f"SELECT count(*), COALESCE(SUM(CASE WHEN side = 'buy' AND symbol = {sql_name(symbol)} "
        f"THEN quantity - filled_quantity END), 0) "
        f"FROM {SpotOrder._meta.db_table} WHERE user_id = {sql_int(user_id)} AND status IN ({_LIVE})"
    )
    return Read.one(sql, _live_orders)


def _live_orders(rows) -> tuple[int, Decimal]:
    count, buying = rows[0]
    return count, SpotOrder._meta.get_field("quantity").from_db(Decimal(buying) if buying else Decimal(0), connection)


def client_order_read(*, user_id: int, client_order_id: str) -> Read:
    """The id of the trader's order with this ``client_order_id`` (a replay), or None."""
    sql = (
        f"SELECT id FROM {SpotOrder._meta.db_table} "
        f"WHERE user_id = {sql_int(user_id)} AND client_order_id = {sql_name(client_order_id)}"
    )
    return Read.one(sql, lambda rows: rows[0][0] if rows else None)


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
            "status must be open, closed, all or an order status.",
            fields={"status": ["open, closed, all, or a status."]},
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
        trade_id=trade.pk,
        order_id=trade.maker_order_id if maker else trade.taker_order_id,
        symbol=trade.symbol,
        side=side,
        price=trade.price,
        quantity=trade.quantity,
        quote_amount=trade.quote_amount,
        fee=trade.maker_fee if maker else trade.taker_fee,
        fee_asset=base if side == "buy" else "USDT",
        liquidity="maker" if maker else "taker",
        time=trade.created_at,
    )


def spot_fills_for(*, user, symbol: str | None = None, limit: int = 100) -> list[Fill]:
    """The trader's newest ``limit`` fills, newest first (a trade against yourself cannot
    happen: self-trade prevention cancels the resting order)."""
    maker = SpotTrade.objects.filter(maker_user=user)
    taker = SpotTrade.objects.filter(taker_user=user)
    if symbol:
        maker, taker = maker.filter(symbol=symbol.upper()), taker.filter(symbol=symbol.upper())
    trades = sorted(list(maker.order_by("-id")[:limit]) + list(taker.order_by("-id")[:limit]), key=lambda t: -t.pk)[
        :limit
    ]
    return [_fill(trade, user.pk) for trade in trades]


def spot_fill_trades(*, user, symbol: str | None = None):
    """The trades the trader took part in, newest first, as a queryset to page through
    (``spot_fills_page`` turns a page of them into fills)."""
    trades = SpotTrade.objects.filter(Q(maker_user=user) | Q(taker_user=user))
    if symbol:
        trades = trades.filter(symbol=symbol.upper())
    return trades.order_by("-id")


def spot_fills_page(*, user, trades) -> list[Fill]:
    return [_fill(trade, user.pk) for trade in trades]


def spot_order_fills(*, order: SpotOrder) -> list[Fill]:
    trades = SpotTrade.objects.filter(Q(maker_order=order) | Q(taker_order=order)).order_by("id")
    return [_fill_of_order(trade, order) for trade in trades]


def _fill_of_order(trade: SpotTrade, order: SpotOrder) -> Fill:
    maker = trade.maker_order_id == order.pk
    return Fill(
        trade_id=trade.pk,
        order_id=order.pk,
        symbol=trade.symbol,
        side=order.side,
        price=trade.price,
        quantity=trade.quantity,
        quote_amount=trade.quote_amount,
        fee=trade.maker_fee if maker else trade.taker_fee,
        fee_asset=trade.symbol.split("-")[0] if order.side == "buy" else "USDT",
        liquidity="maker" if maker else "taker",
        time=trade.created_at,
    )


def smart_order_children(*, parent: SpotOrder, order_dict) -> list[dict]:
    """A parent's children as the API shows them: book children as orders (``order_dict``),
    venue children with their venue, client order id and outcome."""
    children = [
        {"venue": OUR_BOOK, **order_dict(child)} for child in SpotOrder.objects.filter(parent=parent).order_by("id")
    ]
    for child in parent.venue_children.order_by("id"):
        children.append(
            {
                "venue": child.venue,
                "client_order_id": child.client_order_id,
                "side": child.side,
                "quantity": decimal_string(child.quantity),
                "price": decimal_string(child.limit_price),
                "status": child.status,
                "filled_quantity": decimal_string(child.filled_quantity),
                "filled_quote": decimal_string(child.filled_quote),
                "average_price": decimal_string(child.average_price),
                "fees_paid": decimal_string(child.fee),
                "error": child.error or None,
            }
        )
    return children
