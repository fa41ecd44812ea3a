"""What every price source hands the index: a ``Quote``, or ``None`` when it has nothing.

Plain Python, no Django. Prices are ``Decimal`` in the quote currency (USDT) quantized to
``PRICE_QUANTUM`` (0.01 USDT); times are float seconds on the caller's clock (epoch seconds
in the live feed, any monotone clock in simulations and tests).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)

PRICE_QUANTUM = Decimal("0.01")  # USDT prices: two decimals are enough for BTC and ETH


def to_price(value, rounding=ROUND_HALF_EVEN) -> Decimal:
    """``value`` as a positive, finite price quantized to 0.01 (half-even unless told).

    Floats are refused on purpose: an adapter that receives floats from a library converts
    them explicitly with ``to_price(str(x))``, so no binary fraction leaks into a price."""
    if isinstance(value, float):
        raise TypeError("prices are Decimal, int or str, never float; convert with str() at the boundary")
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise TypeError(f"not a price: {value!r}")
    try:
        price = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"a price must be positive and finite, got {value!r}")
    quantized = price.quantize(PRICE_QUANTUM, rounding=rounding)
    if quantized <= 0:
        raise ValueError(f"price {value!r} rounds to zero")
    return quantized


@dataclass(frozen=True, slots=True)
class Quote:
    """One source's view of one underlying at time ``ts``.

    ``price`` is what the index uses (the mid of bid/ask where the source has both, else its
    last trade); ``bid``/``ask`` are informational and may be ``None``. The constructor
    quantizes: ``price`` half-even, ``bid`` down and ``ask`` up, so the quoted spread never
    narrows through rounding. ``ts`` is when the price was observed (for adapters: when it
    was fetched), not when it reached the caller, so a cached quote ages correctly."""

    source: str
    underlying: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    ts: float

    def __post_init__(self):
        if not self.source or not self.underlying:
            raise ValueError("a quote needs a source and an underlying")
        object.__setattr__(self, "price", to_price(self.price))
        if self.bid is not None:
            object.__setattr__(self, "bid", to_price(self.bid, ROUND_FLOOR))
        if self.ask is not None:
            object.__setattr__(self, "ask", to_price(self.ask, ROUND_CEILING))
        object.__setattr__(self, "ts", float(self.ts))

    def age(self, now: float) -> float:
        return now - self.ts


@dataclass(frozen=True, slots=True)
class SourceError:
    """Why a source's last fetch returned nothing. ``kind`` is one of: ``timeout``,
    ``network``, ``rate_limit``, ``bad_symbol``, ``exchange``, ``config``, ``bad_data``."""

    kind: str
    message: str
    at: float


@runtime_checkable
class Source(Protocol):
    """A price source. ``fetch`` returns the source's current quote for ``underlying`` at
    time ``now``, or ``None`` when it has none (down, timed out, unknown underlying). It must
    not raise for operational failures; ``collect_quotes`` still guards against bugs."""

    name: str

    def fetch(self, underlying: str, now: float) -> Quote | None: ...


def collect_quotes(sources: Iterable[Source], underlying: str, now: float) -> dict[str, Quote | None]:
    """Ask every source once, keyed by source name, ready for ``compute_index``.

    A source that raises, or answers for a different underlying, counts as missing: one
    broken adapter must not stop the index."""
    quotes: dict[str, Quote | None] = {}
    for source in sources:
        if source.name in quotes:
            raise ValueError(f"two sources are named {source.name!r}")
        try:
            quote = source.fetch(underlying, now)
        except Exception:
            logger.exception("price source %s failed for %s", source.name, underlying)
            quote = None
        if quote is not None and (quote.underlying != underlying or quote.source != source.name):
            logger.error(
                "price source %s answered %s/%s for %s", source.name, quote.source, quote.underlying, underlying
            )
            quote = None
        quotes[source.name] = quote
    return quotes
