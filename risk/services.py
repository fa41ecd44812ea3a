"""The one pre-trade risk service: every entry path (spot order entry and smart routing,
RFQ, the options counter, withdrawals) asks it before a hold is placed, and trading states
are set here.

Two calls per order. ``*_precheck`` runs before the entry's transaction and needs no lock:
the order rate, then the limits on the order itself (price band, value, quantity). The
``*_admit`` calls run inside the entry's transaction, after the trader's row is locked: the
trading state (read under ``trading_state_guard``) and the limits on what the trader already
has (open orders, holdings, positions). Each refusal raises before anything is written.

Trading states are exact at the commit of their change: ``trading_state_set`` takes an
exclusive PostgreSQL advisory lock that every admitting transaction holds shared, so once a
halt has committed no order that read the earlier state can still commit.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import User
from marketdata.models import Instrument
from trading.audit import audit_append
from trading.db import read_together
from trading.errors import DomainError, NotFound, ValidationFailed
from trading.money import ASSETS

from . import alerts, core, ratelimit, selectors
from .models import RiskLimit, TradingState

# sent inside the transaction that changed a state: scope, target, state, cancel_open_orders;
# the order apps cancel open orders in scope from their receivers (they sit above this app)
trading_state_changed = Signal()

STATE_LOCK = selectors.STATE_LOCK

SPOT_LIMITS = (
    "buy_band_above",
    "buy_band_below",
    "sell_band_above",
    "sell_band_below",
    "min_notional",
    "max_notional",
    "max_order_quantity",
    "max_market_quantity",
)
SPOT_USAGE_LIMITS = ("max_open_orders", "max_position")
OPTION_LIMITS = ("max_series_contracts", "max_option_premium")
RATE_LIMITS = ("order_rate", "order_burst")


class RiskRefused(DomainError):
    """A pre-trade check said no; ``refusal`` says which and why."""

    def __init__(self, refusal: core.Refusal, *, headers: dict | None = None):
        super().__init__(
            refusal.message, code=refusal.code, status=refusal.status, fields=refusal.fields(), headers=headers
        )
        self.refusal = refusal


def _raise(refusal: core.Refusal | None) -> None:
    if refusal is not None:
        raise RiskRefused(refusal)


# --- rate and state ----------------------------------------------------------------------------


def order_rate_take(*, user) -> None:
    """Count one order against the trader's rate (system traders are not counted)."""
    if selectors.exempt(user):
        return
    rates = selectors.limits_of(user, RATE_LIMITS)
    if rates["order_rate"] is None or rates["order_burst"] is None:
        return
    allowed, retry_after = ratelimit.take(user.pk, rate=rates["order_rate"], burst=rates["order_burst"])
    if not allowed:
        seconds = max(1, int(retry_after + 0.999))
        raise RiskRefused(core.rate_refusal(retry_after, rates), headers={"Retry-After": str(seconds)})


def trading_state_guard(*, symbols, user_id: int) -> selectors.StateView:
    """The trading state as committed, read inside the caller's transaction and held: a
    state change waits for this transaction, and this one for a change in flight. (Spot
    order entry reads it with its other reads: ``selectors.state_read``.)"""
    (view,) = read_together(selectors.state_read(symbols=symbols, user_id=user_id))
    return view


def _state_refuse(view: selectors.StateView, *, reduces: bool) -> None:
    if not view.held:
        raise RuntimeError("order admission needs the trading state read under its lock (selectors.state_read)")
    _raise(core.state_refusal(view.state, reduces=reduces, what=view.where))


def state_admit(*, symbols, user_id: int, reduces: bool) -> None:
    _state_refuse(trading_state_guard(symbols=symbols, user_id=user_id), reduces=reduces)


def state_precheck(*, symbols, user_id: int, reduces: bool) -> None:
    """The cached state (quotes and pages: nothing is held on them)."""
    view = selectors.state_of(symbols=symbols, user_id=user_id)
    _raise(core.state_refusal(view.state, reduces=reduces, what=view.where))


# --- spot --------------------------------------------------------------------------------------


def spot_limits(user, instrument: Instrument, names=SPOT_LIMITS) -> core.Limits:
    return selectors.limits_of(
        user,
        names,
        symbol=instrument.symbol,
        asset=instrument.base,
        defaults={"min_notional": instrument.min_notional},
    )


def spot_order_precheck(*, user, instrument: Instrument, order: core.SpotOrder, index: Decimal | None) -> None:
    """Before the entry's transaction: the order rate, then the order's price, value and size."""
    order_rate_take(user=user)
    found = spot_limits(user, instrument)
    _raise(core.band_refusal(order, found, index) or core.size_refusal(order, found))


def spot_state_read(*, user_id: int, instrument: Instrument):
    """The read of the trading state that ``spot_order_admit`` needs, for order entry to send
    with its own reads after locking the trader's row (``trading.db.read_together``)."""
    return selectors.state_read(symbols=(instrument.symbol, instrument.base), user_id=user_id)


def spot_order_admit(
    *,
    user,
    instrument: Instrument,
    order: core.SpotOrder,
    state: selectors.StateView,
    usage: core.SpotUsage,
    operation: str = "",
) -> None:
    """Inside the entry's transaction, the trader's row locked: the trading state (``state``,
    from ``spot_state_read`` in this transaction), then the limits on what the trader has
    (``usage``: their live orders' count, their holding of the base and what their live buys
    on this pair may still buy, read under the same lock). ``operation``: the order's own id
    (its client order id), which keys the risk alerts it raises."""
    _state_refuse(state, reduces=order.side == core.SELL)
    if selectors.exempt(user):
        return
    found = spot_limits(user, instrument, SPOT_USAGE_LIMITS)
    _raise(core.usage_refusal(order, found, usage))
    alerts.usage_alert(
        user=user,
        name="max_open_orders",
        target="",
        limit=found["max_open_orders"],
        before=usage.open_orders,
        after=usage.open_orders + 1,
        operation=operation,
    )
    if order.side == core.BUY and order.quantity is not None:
        alerts.usage_alert(
            user=user,
            name="max_position",
            target=instrument.base,
            limit=found["max_position"],
            before=usage.position,
            after=usage.position + order.quantity,
            operation=operation,
        )


def notional_check(*, user, instrument: Instrument, notional: Decimal) -> None:
    """The order-value limits alone (an RFQ block is priced before it is an order)."""
    found = spot_limits(user, instrument, ("min_notional", "max_notional"))
    order = core.SpotOrder(side=core.BUY, type="limit", quantity=None, notional=notional)
    _raise(core.size_refusal(order, found))


# --- options -----------------------------------------------------------------------------------


def option_quote_precheck(*, user, instrument: Instrument, side: str, contracts: Decimal, held: Decimal) -> None:
    """A quote nobody could trade is not given: the cached state and the series limit."""
    state_precheck(symbols=(instrument.base, instrument.symbol), user_id=user.pk, reduces=side == core.SELL)
    found = selectors.limits_of(user, ("max_series_contracts",), underlying=instrument.base)
    order = core.OptionOrder(side=side, contracts=contracts, total_usdt=Decimal(0), held=held, premium_open=Decimal(0))
    _raise(core.option_refusal(order, found))


def option_order_admit(*, user, instrument: Instrument, order: core.OptionOrder, operation: str = "") -> None:
    """Inside the counter's transaction, the trader's row and position locked. ``operation``:
    the order's own id (its client order id or quote), which keys the risk alerts it raises."""
    state_admit(symbols=(instrument.base, instrument.symbol), user_id=user.pk, reduces=order.side == core.SELL)
    found = selectors.limits_of(user, OPTION_LIMITS, underlying=instrument.base)
    _raise(core.option_refusal(order, found))
    if order.side == core.BUY:
        alerts.usage_alert(
            user=user,
            name="max_series_contracts",
            target=instrument.symbol,
            limit=found["max_series_contracts"],
            before=order.held,
            after=order.held + order.contracts,
            operation=operation,
        )
        alerts.usage_alert(
            user=user,
            name="max_option_premium",
            target="",
            limit=found["max_option_premium"],
            before=order.premium_open,
            after=order.premium_open + order.total_usdt,
            operation=operation,
        )


# --- withdrawals -------------------------------------------------------------------------------


def withdrawal_check(*, user, asset: str, amount: Decimal, tier: int | None = None, **_) -> None:
    """Registered with the kernel's ``withdrawal`` checks; runs in the withdrawal's
    transaction with the user's row locked, so the 24-hour sum is exact. The tier is the one
    the withdrawal just read (a KYC approval a moment ago counts at once)."""
    limit = selectors.limits_of(user, ("daily_withdrawal",), asset=asset, tier=tier)["daily_withdrawal"]
    used = selectors.withdrawn_today(user=user, asset=asset)
    _raise(core.withdrawal_refusal(asset=asset, amount=amount, used=used, limit=limit))
    alerts.usage_alert(user=user, name="daily_withdrawal", target=asset, limit=limit, before=used, after=used + amount)


def withdrawal_limits(*, user) -> dict[str, Decimal]:
    """The trader's 24-hour withdrawal limit per asset (the wallet page shows them)."""
    return {
        asset: value
        for asset in ASSETS
        if (value := selectors.limits_of(user, ("daily_withdrawal",), asset=asset)["daily_withdrawal"]) is not None
    }


# --- trading states ----------------------------------------------------------------------------


def state_target(scope: str, target) -> str:
    """The canonical target of a scope (a symbol in capitals, a user's id), or a 4xx."""
    target = (target or "").strip() if isinstance(target, str) else "" if target is None else str(target)
    if scope == core.PLATFORM:
        if target:
            raise ValidationFailed("The platform scope takes no target.", fields={"target": ["Leave it out."]})
        return ""
    if not target:
        raise ValidationFailed(f"The {scope} scope needs a target.", fields={"target": ["Required."]})
    if scope == core.SYMBOL:
        symbol = target.upper()
        known = Instrument.objects.filter(symbol=symbol).exists() or Instrument.objects.filter(base=symbol).exists()
        if not known:
            raise NotFound(f"No market or underlying {symbol}.")
        return symbol
    user = (
        User.objects.filter(pk=int(target)).first()
        if target.isascii() and target.isdigit()
        else User.objects.filter(email__iexact=target).first()
    )
    if user is None:
        raise NotFound(f"No user {target}.")
    return str(user.pk)


def trading_state_set(
    *, scope: str, target=None, state: str, reason: str, actor, cancel_open_orders: bool = False
) -> dict:
    """Set a scope's trading state (``active`` clears it), in the audit trail, and cancel
    the open orders in scope if asked. Returns the change as recorded."""
    if scope not in core.SCOPES:
        raise ValidationFailed("scope must be platform, symbol or user.", fields={"scope": ["Unknown scope."]})
    if state not in core.STATES:
        raise ValidationFailed("state must be active, reduce_only or halted.", fields={"state": ["Unknown state."]})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why (reason).", fields={"reason": ["Required."]})
    target = state_target(scope, target)
    now = timezone.now()
    with transaction.atomic():  # or the admin's, whose change view opens one
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STATE_LOCK])
        row = TradingState.objects.select_for_update().filter(scope=scope, target=target).first()
        before = row.state if row else core.ACTIVE
        if state == core.ACTIVE:
            if row is not None:
                row.delete()
        else:
            TradingState.objects.update_or_create(
                scope=scope,
                target=target,
                defaults={"state": state, "reason": reason[:200], "set_by": actor, "set_at": now},
            )
        change = {
            "scope": scope,
            "target": target,
            "state": state,
            "previous": before,
            "reason": reason[:200],
            "cancel_open_orders": bool(cancel_open_orders),
            "set_at": now,
        }
        record = audit_append(
            actor=actor,
            action="risk.trading_state",
            target_type="risk.tradingstate",
            target_id=f"{scope}:{target}",
            data=change,
        )
        results = trading_state_changed.send(sender=TradingState, change=change)
        if before != state:
            alerts.state_alert(change=change, user_id=int(target) if scope == core.USER else None, change_id=record.seq)
        change["cancelled_orders"] = sum(int(result or 0) for _, result in results)
        transaction.on_commit(selectors.cache_clear)
    return change


# --- limit overrides (staff, in the admin) -------------------------------------------------------


def risk_limit_save(*, limit: RiskLimit, actor) -> RiskLimit:
    """Create or change an override, in the audit trail."""
    with transaction.atomic():  # or the admin's, whose change view opens one
        created = limit.pk is None
        before = None if created else RiskLimit.objects.select_for_update().filter(pk=limit.pk).first()
        limit.save()
        audit_append(
            actor=actor,
            action="risk.limit_created" if created else "risk.limit_changed",
            target=limit,
            data={
                "name": limit.name,
                "target": limit.target,
                "tier": limit.tier,
                "user_id": limit.user_id,
                "value": limit.value,
                "previous": None if before is None else before.value,
                "note": limit.note,
            },
        )
    return limit


def risk_limit_delete(*, limit: RiskLimit, actor) -> None:
    with transaction.atomic():  # or the admin's, whose change view opens one
        audit_append(
            actor=actor,
            action="risk.limit_deleted",
            target=limit,
            data={
                "name": limit.name,
                "target": limit.target,
                "tier": limit.tier,
                "user_id": limit.user_id,
                "value": limit.value,
            },
        )
        limit.delete()
