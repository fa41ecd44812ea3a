"""Which venues there are, built from settings once per process.

* ``SPOT_VENUES`` — the venues smart routing and the aggregated book use, by name: each a
  dict with ``"class": "simulated"`` (the default: the simulated venue's settings, e.g.
  ``offset_bps``, ``spread_bps``, ``fee``, ``latency_ms``, ``ambiguous``) or ``"class": "ccxt"``
  (``exchange``, ``api_key``, ``secret``, ``fee``, ``timeout_ms``, ``sandbox``, ``options``).
  A simulated one builds its book around a *fresh* index (none while the index is stale) and
  keeps its orders under ``spotvenue:<name>``.
* ``SETTLEMENT_VENUE`` — settlement step 3's venue: ``"simulated"`` (its settings from
  ``SETTLEMENT_VENUE_FAULTS``, e.g. ``"timeout=0.2,ambiguous=0.02,latency_ms=5,fee_bps=10"``,
  its orders under ``SETTLEMENT_VENUE_KEY_PREFIX``, its fills at the latest index print, reused
  for ``SETTLEMENT_VENUE_PRICE_TTL_SECONDS``) or ``"ccxt:<exchange id>"`` with
  ``SETTLEMENT_VENUE_API_KEY``/``_SECRET``/``_TIMEOUT_MS``/``_SANDBOX``.
* ``REDIS_URL`` — where simulated venues keep their orders, shared by every worker process
  (empty: in the process's memory, the embedded mode).

A venue is built once per process and name (a forked worker builds its own: connections are
not shared across a fork) and forgotten when one of these settings changes (tests).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from django.conf import settings

from .base import Venue, VenueUnavailable, symbol_assets

SETTINGS = (
    "SPOT_VENUES",
    "SETTLEMENT_VENUE",
    "SETTLEMENT_VENUE_FAULTS",
    "SETTLEMENT_VENUE_KEY_PREFIX",
    "SETTLEMENT_VENUE_PRICE_TTL_SECONDS",
    "SETTLEMENT_VENUE_API_KEY",
    "SETTLEMENT_VENUE_SECRET",
    "SETTLEMENT_VENUE_TIMEOUT_MS",
    "SETTLEMENT_VENUE_SANDBOX",
    "REDIS_URL",
)
# A routing venue answers an IOC within a second or two: it is given up on sooner, and its
# lost requests are ruled out sooner, than a settlement venue's market orders.
ROUTING_DEFAULTS = {"timeout_ms": 2000, "recv_window_ms": 1000}
CCXT_PREFIX = "ccxt:"

_venues: dict[tuple[int, str], Venue] = {}
_lock = threading.Lock()


class UnknownVenue(ValueError):
    """No venue of that name is configured."""


def venue_get(name: str) -> Venue:
    """The venue called ``name``: a ``SPOT_VENUES`` entry, or a settlement venue
    (``"simulated"``, ``"ccxt:<exchange id>"``)."""
    key = (os.getpid(), name)
    venue = _venues.get(key)
    if venue is not None:
        return venue
    with _lock:
        venue = _venues.get(key)
        if venue is None:
            venue = _venues[key] = _build(name)
    return venue


def routing_venues() -> list[Venue]:
    """The venues of smart routing and the aggregated book, by name."""
    return [venue_get(name) for name in routing_venue_names()]


def routing_venue_names() -> list[str]:
    return sorted(settings.SPOT_VENUES)


def settlement_venue() -> Venue:
    """Settlement step 3's venue (``SETTLEMENT_VENUE``)."""
    return venue_get((settings.SETTLEMENT_VENUE or "simulated").strip())


def venue_cache_clear() -> None:
    """Forget the built venues (settings changed)."""
    with _lock:
        _venues.clear()


def _build(name: str) -> Venue:
    if name in settings.SPOT_VENUES:
        return _routing_venue(name, settings.SPOT_VENUES[name])
    if name == "simulated":
        from .simulated import SimulatedVenue, SimulatedVenueConfig

        faults = settings.SETTLEMENT_VENUE_FAULTS or ""
        config = (
            SimulatedVenueConfig.from_mapping(faults)
            if isinstance(faults, Mapping)
            else SimulatedVenueConfig.parse(faults)
        )
        return SimulatedVenue(
            price_source=_recent(index_price, float(settings.SETTLEMENT_VENUE_PRICE_TTL_SECONDS)),
            config=config,
            redis_url=settings.REDIS_URL or None,
            key_prefix=settings.SETTLEMENT_VENUE_KEY_PREFIX or "settlement:venue:sim",
            name=name,
        )
    if name.startswith(CCXT_PREFIX) and name[len(CCXT_PREFIX) :]:
        from .ccxt_venue import DEFAULT_TIMEOUT_MS, CcxtVenue

        return CcxtVenue(
            name[len(CCXT_PREFIX) :],
            api_key=settings.SETTLEMENT_VENUE_API_KEY or "",
            secret=settings.SETTLEMENT_VENUE_SECRET or "",
            timeout_ms=int(settings.SETTLEMENT_VENUE_TIMEOUT_MS or DEFAULT_TIMEOUT_MS),
            sandbox=bool(settings.SETTLEMENT_VENUE_SANDBOX),
            name=name,
        )
    raise UnknownVenue(
        f"unknown venue {name!r}: name one of SPOT_VENUES ({', '.join(sorted(settings.SPOT_VENUES)) or 'none'}), "
        "'simulated' or 'ccxt:<exchange id>' (e.g. 'ccxt:binance')"
    )


def _routing_venue(name: str, spec: Mapping) -> Venue:
    spec = dict(spec)
    kind = spec.pop("class", "simulated")
    if kind == "ccxt":
        from .ccxt_venue import DEFAULT_TAKER_FEE, DEFAULT_TIMEOUT_MS, CcxtVenue

        unknown = set(spec) - {"exchange", "api_key", "secret", "password", "fee", "timeout_ms", "sandbox", "options"}
        if unknown:
            raise ValueError(f"venue {name}: unknown settings {sorted(unknown)}")
        return CcxtVenue(
            spec.get("exchange", "binance"),
            api_key=spec.get("api_key", ""),
            secret=spec.get("secret", ""),
            password=spec.get("password"),
            timeout_ms=int(spec.get("timeout_ms", DEFAULT_TIMEOUT_MS)),
            sandbox=bool(spec.get("sandbox", False)),
            exchange_options=spec.get("options"),
            name=name,
            taker_fee=spec.get("fee", DEFAULT_TAKER_FEE),
        )
    if kind != "simulated":
        raise ValueError(f"venue {name}: class must be 'simulated' or 'ccxt', not {kind!r}")
    from .simulated import SimulatedVenue, SimulatedVenueConfig

    try:
        config = SimulatedVenueConfig.from_mapping({**ROUTING_DEFAULTS, **spec})
    except ValueError as exc:
        raise ValueError(f"venue {name}: {exc}") from None
    return SimulatedVenue(
        price_source=fresh_index_price,
        config=config,
        redis_url=settings.REDIS_URL or None,
        key_prefix=f"spotvenue:{name}",
        name=name,
    )


# --- reference prices of the simulated venues ------------------------------------------------


def index_price(symbol: str) -> Decimal:
    """The latest index print of the symbol's base (``BTC-USDT`` -> the BTC index, which is
    quoted in USDT): what settlement's simulated venue fills at."""
    from marketdata.selectors import index_latest

    base, quote = symbol_assets(symbol)
    if quote != "USDT":
        raise VenueUnavailable(f"no index for {symbol}: the index is quoted in USDT")
    latest = index_latest(underlying=base)
    if latest is None or latest.price is None:
        raise VenueUnavailable(f"no {base} index price yet")
    return latest.price


def fresh_index_price(symbol: str) -> Decimal:
    """A fresh index print, or none at all: a routing venue shows no book while the index is
    stale."""
    from marketdata.selectors import index_is_fresh, index_latest

    base, _ = symbol_assets(symbol)
    latest = index_latest(underlying=base)
    if not index_is_fresh(latest):
        raise VenueUnavailable(f"no fresh index for {symbol}: the simulated venue has no book")
    return latest.price


def _recent(price_source: Callable[[str], Decimal], ttl: float) -> Callable[[str], Decimal]:
    """The index, refreshed at most every ``ttl`` seconds (the feed prints about once a
    second): a query per order in step 3's threads cost more than the order itself. Per
    venue, so a rebuilt venue starts fresh."""
    if ttl <= 0:
        return price_source
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
