"""What the order apps tell the risk app, which sits below them: the usage of the limits on
open orders and option positions (``GET /api/v1/risk/limits``), and the cancel-all of a
trading-state change. Connected from ``OrdersConfig.ready``."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Max, Sum

from marketdata.models import Instrument, InstrumentKind
from risk import core as risk_core
from risk import selectors as risk_selectors
from risk.services import trading_state_changed

from .options.models import OptionPosition, PositionStatus
from .spot.models import LIVE_STATUSES, SpotOrder
from .spot.services.entry import spot_orders_cancel_all


def open_orders_used(user) -> dict[str, Decimal]:
    return {"": Decimal(SpotOrder.objects.filter(user=user, status__in=LIVE_STATUSES).count())}


def series_contracts_used(user) -> dict[str, Decimal]:
    """Per underlying: the most contracts held in one series (the limit is per series)."""
    rows = (
        OptionPosition.objects.filter(user=user, status=PositionStatus.OPEN)
        .values("underlying")
        .annotate(most=Max("contracts"))
    )
    return {row["underlying"]: row["most"] for row in rows}


def option_premium_used(user) -> dict[str, Decimal]:
    total = OptionPosition.objects.filter(user=user, status=PositionStatus.OPEN).aggregate(total=Sum("cost_usdt"))
    return {"": total["total"] or Decimal(0)}


def _spot_symbols(target: str) -> list[str]:
    """A symbol scope names a pair (BTC-USDT) or an underlying (BTC: its pairs)."""
    spot = Instrument.objects.filter(kind=InstrumentKind.SPOT)
    return list(spot.filter(symbol=target).values_list("symbol", flat=True)) or list(
        spot.filter(base=target).values_list("symbol", flat=True)
    )


def cancel_on_state_change(sender, change: dict, **_) -> int:
    """Cancel-all with a state change: the open spot orders in its scope."""
    if not change["cancel_open_orders"]:
        return 0
    scope, target = change["scope"], change["target"]
    if scope == risk_core.PLATFORM:
        return spot_orders_cancel_all()
    if scope == risk_core.SYMBOL:
        return spot_orders_cancel_all(symbols=_spot_symbols(target))
    return spot_orders_cancel_all(user_id=int(target))


def connect() -> None:
    risk_selectors.usage_register("max_open_orders", open_orders_used)
    risk_selectors.usage_register("max_series_contracts", series_contracts_used)
    risk_selectors.usage_register("max_option_premium", option_premium_used)
    trading_state_changed.connect(cancel_on_state_change, dispatch_uid="orders-cancel-on-state-change")
