"""Placing a spot order: the checks every order gets (``entry.order_price``), then the book
(``entry.book_order_place``) or smart routing across the book and the outside venues
(``routing.smart_order_place``), which enters its parent the same way."""

from __future__ import annotations

from accounts.models import User
from trading.metrics import order_entry_timed

from ..models import SpotOrder
from .entry import OrderRequest, book_order_place, order_price
from .routing import smart_order_place


@order_entry_timed("spot")
def spot_order_place(*, user: User, request: OrderRequest) -> tuple[SpotOrder, bool]:
    """Enter an order (``order_request(...)``); returns ``(order, replayed)``. A replayed
    ``client_order_id`` returns the original order (no second hold)."""
    replayed, priced = order_price(user=user, request=request)
    if replayed is not None:
        return replayed, True
    if request.route == "smart":
        return smart_order_place(user=user, request=request, priced=priced)
    return book_order_place(user=user, request=request, priced=priced)
