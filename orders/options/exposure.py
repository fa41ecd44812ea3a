"""The counter's own exposure per underlying (reads): net greeks of the customers' open
option positions with the counter's sign, what the back office hedged at the venue, and the
venue's balances against the ledger's.

The counter reads ``exposure_of`` on every buy (quote, fill and inside the fill's
transaction). It is computed from the open positions -- one grouped query, then the chain's
pricing per expiry -- and reused per underlying for COUNTER_EXPOSURE_CACHE_SECONDS (1 s): a
fill in this process forgets it at once, fills in other processes are seen within that time.
So a hard limit can be overshot by at most the buys other processes fill in one second
(each one bounded by the per-trader series and rate limits); the soft band in front of it
is there to absorb that. We chose this over an exact figure kept under a lock because an
exact one needs one platform-wide lock per underlying held through every buy's transaction,
which would make the counter fill one order at a time, and the figure moves with the index
between orders anyway (delta and vega are re-priced, not just summed).

The hedge lives in ``settlement``, above this app: settlement registers its reader here at
start-up (``hedge_register``), so nothing here imports upward.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from ledger.models import AccountKind, LedgerAccount, SystemRole
from marketdata.models import Instrument
from marketdata.options import live_index
from marketdata.pricing import year_fraction
from marketdata.selectors import index_is_fresh, index_latest
from marketdata.services import UNDERLYINGS
from risk import core as risk_core
from risk import exposure as core
from risk import selectors as risk_selectors
from venues.config import settlement_venue

from .models import OptionPosition, PositionStatus

_cache: dict[str, tuple[float, core.Exposure]] = {}
_lock = threading.Lock()

# --- the hedge, from settlement ---------------------------------------------------------------------

_hedge_reader: list[Callable[[], dict[str, Decimal]]] = []


def hedge_register(read: Callable[[], dict[str, Decimal]]) -> None:
    """Settlement registers ``read() -> {underlying: quantity}`` at start-up: the underlying it
    bought at the venue for opening buys less what it sold for closes and exercises."""
    _hedge_reader[:] = [read]


def hedge_held() -> dict[str, Decimal] | None:
    """The hedge per underlying, or None when no reader is registered."""
    return _hedge_reader[0]() if _hedge_reader else None


# --- net greeks -------------------------------------------------------------------------------------


def _holdings(underlying: str, *, index: Decimal, now: datetime) -> list[core.Holding]:
    rows = (
        OptionPosition.objects.filter(status=PositionStatus.OPEN, underlying=underlying, contracts__gt=0)
        .values("instrument__symbol", "instrument__strike", "instrument__expiry", "instrument__option_type")
        .annotate(total=Sum("contracts"))
    )
    by_expiry = defaultdict(list)
    for row in rows:
        by_expiry[row["instrument__expiry"]].append(row)
    holdings = []
    for expiry, series in by_expiry.items():
        greeks = core.series_greeks(
            underlying=underlying,
            index=float(index),
            years=year_fraction(now, expiry),
            strikes=[float(row["instrument__strike"]) for row in series],
            calls=[row["instrument__option_type"] == "C" for row in series],
        )
        holdings += [
            core.Holding(row["instrument__symbol"], underlying, row["total"], g)
            for row, g in zip(series, greeks, strict=True)
        ]
    return holdings


def exposure_compute(underlying: str, *, index: Decimal, now: datetime | None = None) -> core.Exposure:
    """The counter's net greeks on ``underlying`` at ``index``, from the open positions now."""
    now = now or timezone.now()
    found = core.net_exposure(_holdings(underlying, index=index, now=now))
    return found.get(underlying) or core.Exposure(underlying)


def exposure_of(underlying: str) -> core.Exposure:
    """The counter's net greeks at the live index, at most COUNTER_EXPOSURE_CACHE_SECONDS old
    (``IndexStale`` without a fresh index)."""
    hit = _cache.get(underlying)
    clock = time.monotonic()
    if hit is not None and clock - hit[0] < settings.COUNTER_EXPOSURE_CACHE_SECONDS:
        return hit[1]
    value = exposure_compute(underlying, index=live_index(underlying))
    with _lock:
        _cache[underlying] = (clock, value)
    return value


def exposure_forget(underlying: str | None = None) -> None:
    """A fill changed the positions: this process computes the figure again next time."""
    with _lock:
        if underlying is None:
            _cache.clear()
        else:
            _cache.pop(underlying, None)


def counter_limits(underlying: str) -> risk_core.Limits:
    """The counter's soft and hard exposure limits on ``underlying``: everyone's override
    rows for it (or for all), else RISK_LIMITS. Not per trader: the book is the platform's."""
    return risk_core.Limits(
        {name: risk_selectors.limit_value(name, target=underlying, tier=None) for name in core.LIMIT_NAMES}
    )


# --- what it does to an order -----------------------------------------------------------------------


def series_greeks_of(instrument: Instrument, *, index: Decimal, now: datetime) -> core.Greeks:
    [greeks] = core.series_greeks(
        underlying=instrument.base,
        index=float(index),
        years=year_fraction(now, instrument.expiry),
        strikes=[float(instrument.strike)],
        calls=[instrument.option_type == "C"],
    )
    return greeks


def counter_decision(
    *, instrument: Instrument, side: str, contracts: Decimal, index: Decimal, now: datetime
) -> core.Decision:
    """Whether the counter widens its ask for this order, or refuses it (sells: neither)."""
    if side != risk_core.BUY:
        return core.Decision()
    return core.order_decision(
        exposure_of(instrument.base),
        side=side,
        contracts=contracts,
        greeks=series_greeks_of(instrument, index=index, now=now),
        limits=counter_limits(instrument.base),
        k=settings.COUNTER_EXPOSURE_WIDENING,
    )


# --- the staff report -------------------------------------------------------------------------------

_venue_seen: list = []  # [(monotonic, balances or None, error)]
VENUE_CACHE_SECONDS = 5.0  # the page polls every few seconds; a real venue's balance call is slow


def venue_balances() -> tuple[str, dict[str, Decimal] | None, str]:
    """The settlement venue's name, its balances (None when it cannot report them) and why
    not. Reused for a few seconds."""
    hit = _venue_seen[0] if _venue_seen else None
    if hit is not None and time.monotonic() - hit[0] < VENUE_CACHE_SECONDS:
        return hit[1:]
    name = (settings.SETTLEMENT_VENUE or "simulated").strip()
    try:
        venue = settlement_venue()
        name = venue.name
        balances, error = venue.balances(), ""
    except Exception as exc:  # an unreachable or unconfigured venue is a figure we lack, not a 500
        balances, error = None, f"{type(exc).__name__}: {exc}"[:300]
    _venue_seen[:] = [(time.monotonic(), name, balances, error)]
    return name, balances, error


def ledger_venue_balances() -> dict[str, Decimal]:
    """What the ledger says is at the venue: the VENUE_FUNDING system accounts, all buckets."""
    found: dict[str, Decimal] = defaultdict(Decimal)
    rows = LedgerAccount.objects.filter(kind=AccountKind.SYSTEM, role=SystemRole.VENUE_FUNDING).values_list(
        "asset", "credits_posted", "debits_posted"
    )
    for asset, credits, debits in rows:
        found[asset] += credits - debits
    return dict(found)


@dataclass(frozen=True)
class UnderlyingExposure:
    underlying: str
    index_price: Decimal | None
    index_stale: bool
    net_delta: Decimal
    net_gamma: Decimal
    net_vega: Decimal
    net_theta: Decimal
    contracts_open: Decimal
    hedge_underlying: Decimal | None
    venue_balance: Decimal | None
    ledger_venue_balance: Decimal
    limits: dict
    usage_percent: Decimal | None


def _figure(value: float, places: int) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places)) + 0  # + 0: no "-0"


def exposure_report(*, now: datetime | None = None) -> dict:
    """Per underlying: the counter's net greeks at the latest index (also a stale one: staff
    still need to see the book), the contracts open, the hedge held, the venue's and the
    ledger's balance of the underlying, the limits and how much of them is used. Fresh
    figures, never the order path's cache."""
    now = now or timezone.now()
    hedge = hedge_held()
    venue, balances, venue_error = venue_balances()
    ledger = ledger_venue_balances()
    rows = []
    for underlying in UNDERLYINGS:
        latest = index_latest(underlying=underlying)
        index = latest.price if latest is not None else None
        exposure = (
            exposure_compute(underlying, index=index, now=now) if index is not None else core.Exposure(underlying)
        )
        limits = counter_limits(underlying)
        rows.append(
            UnderlyingExposure(
                underlying=underlying,
                index_price=index,
                index_stale=not index_is_fresh(latest),
                net_delta=_figure(exposure.delta, 8),
                net_gamma=_figure(exposure.gamma, 10),
                net_vega=_figure(exposure.vega, 4),
                net_theta=_figure(exposure.theta, 4),
                contracts_open=exposure.contracts,
                hedge_underlying=None if hedge is None else hedge.get(underlying, Decimal(0)),
                venue_balance=None if balances is None else balances.get(underlying, Decimal(0)),
                ledger_venue_balance=ledger.get(underlying, Decimal(0)),
                limits={
                    "delta_soft": limits["counter_delta_soft"],
                    "delta_hard": limits["counter_delta"],
                    "vega_soft": limits["counter_vega_soft"],
                    "vega_hard": limits["counter_vega"],
                },
                usage_percent=core.usage_percent(exposure, limits),
            )
        )
    return {
        "time": now,
        "venue": venue,
        "venue_error": venue_error or None,
        "venue_usdt": None if balances is None else balances.get("USDT", Decimal(0)),
        "ledger_venue_usdt": ledger.get("USDT", Decimal(0)),
        "underlyings": rows,
    }
