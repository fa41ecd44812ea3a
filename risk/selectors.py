"""Risk reads: the limits that apply to a trader, the trading state of a scope, and what a
trader uses of each limit.

Limit overrides and trading states change a few times a day and every order reads them, so
each process keeps them in memory: a change is seen at once by the process that made it and
by every other process within ``RISK_CACHE_SECONDS``. Order entry does not rely on the cache
for trading states: it reads them under a lock (``state_read``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from accounts.selectors import kyc_tier, kyc_tier_loaded
from ledger.models import Withdrawal, WithdrawalStatus
from ledger.selectors import balances_for
from marketdata.models import Instrument, InstrumentKind
from marketdata.services import UNDERLYINGS
from trading.db import Read
from trading.money import ASSETS

from . import core
from .models import RiskLimit, TradingState

_lock = threading.Lock()
_cache: dict[str, tuple[float, object]] = {}


def _cached(key: str, load: Callable[[], object]):
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < settings.RISK_CACHE_SECONDS:
        return hit[1]
    value = load()
    with _lock:
        _cache[key] = (now, value)
    return value


def cache_clear() -> None:
    """Forget the cached limits and states (a change in this process takes effect at once)."""
    with _lock:
        _cache.clear()


# --- limits ------------------------------------------------------------------------------------


def _overrides() -> dict[tuple, Decimal]:
    rows = RiskLimit.objects.values_list("name", "target", "tier", "user_id", "value")
    return {(name, target, tier, user_id): value for name, target, tier, user_id, value in rows}


def _setting(table: dict, name: str, target: str):
    value = table.get(name)
    if isinstance(value, dict):
        value = value.get(target, value.get("*"))
    return None if value is None else Decimal(str(value))


def limit_value(name: str, *, target: str = "", tier: int = 0, user_id: int | None = None, default=None):
    """One limit for a trader: the most specific override (the user's, the tier's,
    everyone's; each for this target first), else the tier's default in settings
    (``RISK_TIER_LIMITS``), else ``default`` (the instrument's own, e.g. its minimum
    notional), else the platform's default (``RISK_LIMITS``). None: no such limit."""
    rows = _cached("overrides", _overrides)
    for key in (
        (name, target, None, user_id),
        (name, "", None, user_id),
        (name, target, tier, None),
        (name, "", tier, None),
        (name, target, None, None),
        (name, "", None, None),
    ):
        if key in rows:
            return rows[key]
    tiered = _setting(settings.RISK_TIER_LIMITS.get(tier, {}), name, target)
    if tiered is not None:
        return tiered
    if default is not None:
        return Decimal(default)
    return _setting(settings.RISK_LIMITS, name, target)


def tier_of(user) -> int:
    """The trader's KYC tier: as read with the user when it was (an API request), else cached."""
    loaded = kyc_tier_loaded(user=user)
    if loaded is not None:
        return loaded
    return _cached(f"tier:{user.pk}", lambda: kyc_tier(user=user))


def limits_of(
    user, names, *, symbol: str = "", asset: str = "", underlying: str = "", defaults=None, tier: int | None = None
) -> core.Limits:
    """The limits ``names`` that apply to ``user``, each resolved for its own scope (a
    symbol's, an asset's, an underlying's or the account's). ``tier``: the KYC tier when the
    caller has just read it (else the cached one, at most RISK_CACHE_SECONDS old)."""
    targets = {"symbol": symbol, "asset": asset, "underlying": underlying, "user": ""}
    defaults = defaults or {}
    tier = tier_of(user) if tier is None else tier
    return core.Limits(
        {
            name: limit_value(
                name, target=targets[core.LIMITS[name].scope], tier=tier, user_id=user.pk, default=defaults.get(name)
            )
            for name in names
        }
    )


def exempt(user) -> bool:
    """System traders (the market maker) are not held to per-trader limits on order counts,
    rates and positions; trading states and price bands apply to them as to everyone."""
    return getattr(user, "email", "") in settings.RISK_EXEMPT_EMAILS


# --- trading states ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StateView:
    state: str
    scope: str  # where the strictest state is set
    target: str
    reason: str
    held: bool = False  # read under the state lock, which this transaction still holds

    @property
    def where(self) -> str:
        if self.scope == core.PLATFORM:
            return "platform-wide"
        if self.scope == core.USER:
            return "on your account"
        return f"on {self.target}"


def _states() -> dict[tuple[str, str], tuple[str, str]]:
    rows = TradingState.objects.values_list("scope", "target", "state", "reason")
    return {(scope, target): (state, reason) for scope, target, state, reason in rows}


# the advisory lock of trading-state changes: order entry holds it shared, a change exclusive
STATE_LOCK = 0x5249534B  # "RISK"

_SAFE_TARGET = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,39}")


def state_read(*, symbols, user_id: int) -> Read:
    """The trading state that applies to one order (the platform's, ``symbols``' and the
    user's), read after taking ``STATE_LOCK`` shared until the transaction ends: a change
    waits for the order's transaction, and the order for a change in flight. Lock and read
    are two statements (so the read's snapshot is taken after the lock), sent with the
    caller's other reads in one round trip (``trading.db.read_together``). Symbols are
    listed instruments' names, checked against a strict pattern; the user is an integer."""
    symbols = tuple(symbols)
    listed = [symbol for symbol in symbols if _SAFE_TARGET.fullmatch(symbol)] or ["-"]
    query = (
        f"SELECT scope, target, state, reason FROM {TradingState._meta.db_table} "
        f"WHERE scope = '{core.PLATFORM}' OR (scope = '{core.SYMBOL}' AND target IN "
        f"({', '.join(repr(symbol) for symbol in listed)})) "
        f"OR (scope = '{core.USER}' AND target = '{int(user_id)}')"
    )
    lock = (f"SELECT pg_advisory_xact_lock_shared({STATE_LOCK})",) if connection.vendor == "postgresql" else ()

    def parse(rows) -> StateView:
        states = {(scope, target): (state, reason) for scope, target, state, reason in rows}
        return state_from(states, symbols=symbols, user_id=user_id, held=True)

    return Read((*lock, query), parse)


def state_of(*, symbols=(), user_id: int | None = None) -> StateView:
    """The strictest state over the platform, ``symbols`` (a pair and its underlying, or an
    option series' underlying) and the user, from the per-process cache (quotes, the engine
    runner, pages). Order entry reads it under the lock instead (``state_read``)."""
    return state_from(_cached("states", _states), symbols=symbols, user_id=user_id)


def state_from(states: dict, *, symbols=(), user_id: int | None = None, held: bool = False) -> StateView:
    keys = [(core.PLATFORM, "")] + [(core.SYMBOL, symbol) for symbol in symbols]
    if user_id is not None:
        keys.append((core.USER, str(user_id)))
    found = StateView(core.ACTIVE, core.PLATFORM, "", "", held)
    for scope, target in keys:
        hit = states.get((scope, target))
        if hit is not None and core.STATES.index(hit[0]) > core.STATES.index(found.state):
            found = StateView(hit[0], scope, target, hit[1], held)
    return found


def trading_states():
    return TradingState.objects.select_related("set_by").order_by("scope", "target")


# --- usage -------------------------------------------------------------------------------------

# Figures that live above this app (open orders, option positions) come from the app that
# owns them: it registers a function ``user -> {target: used}`` per limit name at start-up.
_usage: dict[str, Callable] = {}


def usage_register(name: str, read: Callable) -> None:
    _usage[name] = read


def usage_of(name: str, *, user) -> dict[str, Decimal]:
    read = _usage.get(name)
    return read(user) if read is not None else {}


def holdings(*, user) -> dict[str, Decimal]:
    return {balance.asset: balance.total for balance in balances_for(user=user)}


def withdrawn_today(*, user, asset: str) -> Decimal:
    """Withdrawals of the last 24 hours that were not rejected or cancelled (the daily limit's usage)."""
    since = timezone.now() - timedelta(hours=24)
    total = (
        Withdrawal.objects.filter(user=user, asset=asset, created_at__gte=since)
        .exclude(status__in=[WithdrawalStatus.REJECTED, WithdrawalStatus.CANCELLED])
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or Decimal(0)


# --- the trader's view -------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitLine:
    name: str
    scope: str  # the symbol, underlying or asset it is set for; "account" for the trader's own
    limit: Decimal
    used: Decimal | None  # None: a limit on each order, not on what the trader has
    unit: str
    summary: str

    @property
    def used_percent(self) -> Decimal | None:
        if self.used is None or not self.limit:
            return None
        return (self.used * 100 / self.limit).quantize(Decimal("0.1"))


def limits_overview(*, user) -> tuple[StateView, list[LimitLine]]:
    """Every limit that can refuse this trader's orders and withdrawals, with what they use of
    it (``GET /api/v1/risk/limits`` and the account page's Limits panel)."""
    lines: list[LimitLine] = []

    def add(name, scope, value, used=None, unit=None):
        if value is not None:
            spec = core.LIMITS[name]
            lines.append(LimitLine(name, scope, value, used, unit or spec.unit, spec.summary))

    spot = list(Instrument.objects.filter(kind=InstrumentKind.SPOT, active=True).order_by("symbol"))
    per_order = [name for name in core.LIMITS if core.LIMITS[name].scope == "symbol"]
    for instrument in spot:
        found = limits_of(user, per_order, symbol=instrument.symbol, defaults={"min_notional": instrument.min_notional})
        for name in per_order:
            unit = instrument.base if core.LIMITS[name].unit == "base" else None
            add(name, instrument.symbol, found[name], unit=unit)
    if not exempt(user):
        add(
            "max_open_orders",
            "account",
            limits_of(user, ("max_open_orders",))["max_open_orders"],
            usage_of("max_open_orders", user=user).get("", Decimal(0)),
        )
        held = holdings(user=user)
        for asset in sorted({instrument.base for instrument in spot}):
            add(
                "max_position",
                asset,
                limits_of(user, ("max_position",), asset=asset)["max_position"],
                held.get(asset, Decimal(0)),
                unit=asset,
            )
        rates = limits_of(user, ("order_rate", "order_burst"))
        add("order_rate", "account", rates["order_rate"])
        add("order_burst", "account", rates["order_burst"])
    contracts = usage_of("max_series_contracts", user=user)
    for underlying in UNDERLYINGS:
        value = limits_of(user, ("max_series_contracts",), underlying=underlying)["max_series_contracts"]
        add("max_series_contracts", underlying, value, contracts.get(underlying, Decimal(0)))
    add(
        "max_option_premium",
        "account",
        limits_of(user, ("max_option_premium",))["max_option_premium"],
        usage_of("max_option_premium", user=user).get("", Decimal(0)),
        unit="USDT",
    )
    for asset in ASSETS:
        value = limits_of(user, ("daily_withdrawal",), asset=asset)["daily_withdrawal"]
        add("daily_withdrawal", asset, value, withdrawn_today(user=user, asset=asset), unit=asset)
    return state_of(user_id=user.pk), lines
