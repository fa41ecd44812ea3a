"""Venue adapters for settlement step 3 (the market swap USDT <-> BTC/ETH).

``get_venue()`` returns this process's venue, built from settings on first use:

* ``SETTLEMENT_VENUE`` — ``"simulated"`` (default) or ``"ccxt:<exchange id>"`` (e.g.
  ``"ccxt:binance"``) with keys from ``SETTLEMENT_VENUE_API_KEY``/``SETTLEMENT_VENUE_SECRET``;
* ``SETTLEMENT_VENUE_FAULTS`` — the simulated venue's faults and behaviour, e.g.
  ``"timeout=0.2,rate_limit=0.05,ambiguous=0.02,reject=0.01,latency_ms=5,fee_bps=10"``;
* ``REDIS_URL`` — where the simulated venue keeps its orders, shared by every worker
  process (empty: in this process's memory, the embedded mode).

Nothing here imports Django at module level: ``base``, ``simulated`` and ``ccxt_venue`` are
plain Python.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from decimal import Decimal

from .base import (
    CANCELLED,
    FILLED,
    OPEN,
    PARTIALLY_FILLED,
    REJECTED,
    STATUSES,
    Venue,
    VenueError,
    VenueInsufficientBalance,
    VenueOrder,
    VenueRateLimited,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)

__all__ = [
    "CANCELLED",
    "FILLED",
    "OPEN",
    "PARTIALLY_FILLED",
    "REJECTED",
    "STATUSES",
    "Venue",
    "VenueError",
    "VenueInsufficientBalance",
    "VenueOrder",
    "VenueRateLimited",
    "VenueRejected",
    "VenueTimeout",
    "VenueUnavailable",
    "clear_venue_cache",
    "get_venue",
    "index_price",
]

DEFAULT_VENUE = "simulated"
DEFAULT_KEY_PREFIX = "settlement:venue:sim"
DEFAULT_TIMEOUT_MS = 10_000

_venues: dict[tuple[int, str], Venue] = {}
_lock = threading.Lock()


def get_venue(name: str | None = None) -> Venue:
    """The venue called ``name`` (default: the ``SETTLEMENT_VENUE`` setting), built once per
    process (a forked worker builds its own: connections are not shared across a fork)."""
    from django.conf import settings

    name = (name or getattr(settings, "SETTLEMENT_VENUE", DEFAULT_VENUE) or DEFAULT_VENUE).strip()
    key = (os.getpid(), name)
    venue = _venues.get(key)
    if venue is not None:
        return venue
    with _lock:
        venue = _venues.get(key)
        if venue is None:
            venue = _venues[key] = _build(name, settings)
    return venue


def clear_venue_cache() -> None:
    """Forget the built venues (tests that change the settings)."""
    with _lock:
        _venues.clear()


def _build(name: str, settings) -> Venue:
    if name == "simulated":
        from .simulated import SimulatedVenue, SimulatedVenueConfig

        faults = getattr(settings, "SETTLEMENT_VENUE_FAULTS", "") or ""
        config = SimulatedVenueConfig.from_mapping(faults) if isinstance(faults, Mapping) else SimulatedVenueConfig.parse(faults)
        return SimulatedVenue(
            price_source=_recent(index_price, float(getattr(settings, "SETTLEMENT_VENUE_PRICE_TTL_SECONDS", 0.5))),
            config=config,
            redis_url=getattr(settings, "REDIS_URL", "") or None,
            key_prefix=getattr(settings, "SETTLEMENT_VENUE_KEY_PREFIX", DEFAULT_KEY_PREFIX) or DEFAULT_KEY_PREFIX,
        )
    if name.startswith("ccxt:") and name[len("ccxt:") :]:
        from .ccxt_venue import CcxtVenue

        return CcxtVenue(
            name[len("ccxt:") :],
            api_key=getattr(settings, "SETTLEMENT_VENUE_API_KEY", "") or "",
            secret=getattr(settings, "SETTLEMENT_VENUE_SECRET", "") or "",
            timeout_ms=int(getattr(settings, "SETTLEMENT_VENUE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS) or DEFAULT_TIMEOUT_MS),
            sandbox=bool(getattr(settings, "SETTLEMENT_VENUE_SANDBOX", False)),
        )
    raise ValueError(f"unknown venue {name!r}: use 'simulated' or 'ccxt:<exchange id>' (e.g. 'ccxt:binance')")


def _recent(price_source, ttl: float):
    """The simulated venue's view of the index, refreshed at most every ``ttl`` seconds
    (the feed prints about once a second): a query per order in step 3's threads cost
    more than the order itself. Per venue, so a rebuilt venue starts fresh."""
    if ttl <= 0:
        return price_source
    import time

    seen: dict[str, tuple[float, Decimal]] = {}
    refreshing = threading.Lock()

    def price(symbol: str) -> Decimal:
        hit = seen.get(symbol)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        # One refresh at a time: when the print ages out under a full batch, hundreds of
        # venue threads would otherwise all query (and connect) at once.
        with refreshing:
            hit = seen.get(symbol)
            now = time.monotonic()
            if hit is not None and now - hit[0] < ttl:
                return hit[1]
            value = price_source(symbol)
            seen[symbol] = (now, value)
            return value

    return price


def index_price(symbol: str) -> Decimal:
    """The simulated venue's reference price: the latest index print of the symbol's base
    (``"BTC/USDT"`` -> the BTC index, which is quoted in USDT)."""
    from marketdata.selectors import index_latest

    base, _, quote = symbol.partition("/")
    if quote != "USDT":
        raise VenueUnavailable(f"no index for {symbol}: the index is quoted in USDT")
    latest = index_latest(underlying=base)
    if latest is None or latest.price is None:
        raise VenueUnavailable(f"no {base} index price yet")
    return latest.price
