"""The index price: a robust median over several sources, as Deribit builds its indices.

The rule, exactly (``compute_index``):

1. A source with no quote is excluded as ``missing``; a quote older than ``max_age_s``
   (``now - ts > max_age_s``), or dated more than ``max_age_s`` in the future (a broken
   clock), is excluded as ``stale``.
2. If fewer than ``min_sources`` fresh quotes remain, the index is **stale**: ``price`` is
   ``None`` and the fresh ones are excluded as ``insufficient``.
3. ``m0`` = the median of the fresh prices (the mean of the middle two for an even count).
   A quote with ``|price - m0| > clip_pct * m0`` is excluded as ``outlier``; a quote exactly
   at the boundary is kept.
4. If fewer than ``min_sources`` quotes survive, the index is stale as in step 2 (two
   sources that disagree by more than the band cannot both be believed).
5. ``price`` = the median of the kept quotes, quantized to 0.01 half-even.

If three or more sources agree within half the band, one wild print among them can move the
index by no more than their own spread, and cannot make it stale. The result is independent of the order of the
quotes. Trading code calls ``IndexResult.require_price()``, which raises
``IndexStaleError`` instead of handing out a price that is not there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from .sources import PRICE_QUANTUM, Quote

MISSING = "missing"
STALE = "stale"
OUTLIER = "outlier"
INSUFFICIENT = "insufficient"

DEFAULT_MAX_AGE_S = 10.0
DEFAULT_CLIP_PCT = Decimal("0.02")
DEFAULT_MIN_SOURCES = 2


class IndexStaleError(Exception):
    """The index has no trustworthy price; anything priced off it must refuse."""

    def __init__(self, underlying: str, ts: float, excluded: Mapping[str, str]):
        reasons = ", ".join(f"{name}: {why}" for name, why in sorted(excluded.items())) or "no sources"
        super().__init__(f"The {underlying} index price is stale (too few fresh, agreeing sources: {reasons}).")
        self.underlying = underlying
        self.ts = ts
        self.excluded = dict(excluded)


@dataclass(frozen=True)
class IndexResult:
    underlying: str
    price: Decimal | None  # USDT, 0.01; None exactly when stale
    stale: bool
    used: list[str] = field(default_factory=list)  # sources in the final median, sorted by name
    excluded: dict[str, str] = field(default_factory=dict)  # source -> missing|stale|outlier|insufficient
    ts: float = 0.0  # the ``now`` it was computed for

    def require_price(self) -> Decimal:
        if self.stale or self.price is None:
            raise IndexStaleError(self.underlying, self.ts, self.excluded)
        return self.price


def median(values: list[Decimal]) -> Decimal:
    """Exact median of Decimals (not quantized)."""
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def compute_index(
    quotes: Mapping[str, Quote | None] | Iterable[Quote | None],
    now: float,
    *,
    underlying: str | None = None,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    clip_pct: Decimal = DEFAULT_CLIP_PCT,
    min_sources: int = DEFAULT_MIN_SOURCES,
) -> IndexResult:
    """The index for one underlying from its sources' quotes (rule in the module docstring).

    ``quotes`` is best a mapping ``source name -> Quote | None`` (``collect_quotes`` makes
    one), so a missing source is reported by name; in a plain sequence a ``None`` can only be
    reported as ``#<position>``. ``underlying`` defaults to the quotes' own; quotes for
    another underlying are a programming error (ValueError)."""
    if min_sources < 1:
        raise ValueError("min_sources must be at least 1")
    clip_pct = Decimal(clip_pct)
    if clip_pct < 0:
        raise ValueError("clip_pct must not be negative")

    named = _named(quotes)
    for quote in named.values():
        if quote is None:
            continue
        if underlying is None:
            underlying = quote.underlying
        elif quote.underlying != underlying:
            raise ValueError(f"quote from {quote.source} is for {quote.underlying}, not {underlying}")
    underlying = underlying or ""

    excluded: dict[str, str] = {}
    fresh: dict[str, Decimal] = {}
    for name, quote in named.items():
        if quote is None:
            excluded[name] = MISSING
        elif abs(now - quote.ts) > max_age_s:
            excluded[name] = STALE
        else:
            fresh[name] = quote.price

    def stale_result(candidates) -> IndexResult:
        for name in candidates:
            excluded[name] = INSUFFICIENT
        return IndexResult(underlying, None, True, [], excluded, now)

    if len(fresh) < min_sources:
        return stale_result(fresh)

    m0 = median(list(fresh.values()))
    band = clip_pct * m0
    kept: dict[str, Decimal] = {}
    for name, price in fresh.items():
        if abs(price - m0) > band:
            excluded[name] = OUTLIER
        else:
            kept[name] = price
    if len(kept) < min_sources:
        return stale_result(kept)

    price = median(list(kept.values())).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
    return IndexResult(underlying, price, False, sorted(kept), excluded, now)


def _named(quotes) -> dict[str, Quote | None]:
    if isinstance(quotes, Mapping):
        named = dict(quotes)
        for name, quote in named.items():
            if quote is not None and quote.source != name:
                raise ValueError(f"quote from {quote.source} filed under {name}")
        return named
    named = {}
    for position, quote in enumerate(quotes):
        name = f"#{position}" if quote is None else quote.source
        if name in named:
            raise ValueError(f"two quotes from {name}")
        named[name] = quote
    return named
