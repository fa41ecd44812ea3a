"""Spot writes: order entry (``entry``), placing (``place``), smart routing (``routing``)
and RFQ (``rfq``). The names callers use are handed on here."""

from .amend import spot_order_amend
from .entry import (
    IndexUnavailable,
    OrderRequest,
    order_request,
    spot_order_cancel,
    spot_order_wait,
    spot_orders_cancel_mine,
)
from .place import spot_order_place

__all__ = [
    "IndexUnavailable",
    "OrderRequest",
    "order_request",
    "spot_order_amend",
    "spot_order_cancel",
    "spot_order_place",
    "spot_order_wait",
    "spot_orders_cancel_mine",
]
