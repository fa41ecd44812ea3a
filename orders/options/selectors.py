"""Options reads: the trader's option orders, positions (valued at the live mark) and expiries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from marketdata.options import IndexStale, live_index, series_price
from trading.errors import ValidationFailed
from trading.money import quantize

from .models import OptionExercise, OptionOrder, OptionPosition, PositionStatus

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


def open_interest(*, underlying: str, expiry: datetime | None = None) -> dict[str, Decimal]:
    """Contracts held in open positions per series of ``underlying`` (one grouped query),
    for one expiry or all; series nobody holds are absent. The chain reads it through
    ``marketdata.options.open_interest_register``."""
    rows = OptionPosition.objects.filter(status=PositionStatus.OPEN, underlying=underlying)
    if expiry is not None:
        rows = rows.filter(instrument__expiry=expiry)
    grouped = rows.values("series").annotate(held=Sum("contracts")).order_by()
    return {row["series"]: row["held"] for row in grouped}
