"""The option series calendar and strike grid (pure: no Django).

Expiries are at 08:00 UTC: daily (the next three), weekly (Fridays, the next four),
monthly (the last Friday of this and the next two months) and quarterly (the last Friday
of March, June, September and December, the next three). The strike grid is centred on
the index and spans about ±2.5 standard deviations of the underlying to expiry, so it
widens with time; its step is the smallest "round" step that keeps the grid to at most
about 30 strikes.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

EXPIRY_TIME = time(8, 0, tzinfo=UTC)
STRIKE_STEPS = {
    "BTC": [Decimal(s) for s in ("100", "250", "500", "1000", "2500", "5000", "10000", "25000")],
    "ETH": [Decimal(s) for s in ("10", "25", "50", "100", "250", "500", "1000")],
}
REFERENCE_VOL = {"BTC": 0.55, "ETH": 0.70}
MAX_STRIKES = 30


@dataclass(frozen=True)
class SeriesSpec:
    underlying: str
    expiry: datetime
    strike: Decimal
    option_type: str  # "C" or "P"

    @property
    def symbol(self) -> str:
        return series_symbol(self.underlying, self.expiry, self.strike, self.option_type)


def series_symbol(underlying: str, expiry: datetime, strike: Decimal, option_type: str) -> str:
    return f"{underlying}-{expiry:%Y%m%d}-{strike.normalize():f}-{option_type}"


def _at_expiry_time(day) -> datetime:
    return datetime.combine(day, EXPIRY_TIME)


def _last_friday(year: int, month: int):
    last_day = calendar.monthrange(year, month)[1]
    day = datetime(year, month, last_day).date()
    return day - timedelta(days=(day.weekday() - calendar.FRIDAY) % 7)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def expiries(now: datetime) -> list[datetime]:
    """Every listed expiry after ``now`` (UTC), sorted, without duplicates."""
    now = now.astimezone(UTC)
    found: set[datetime] = set()
    dailies, day = 0, now.date()
    while dailies < 3:
        if _at_expiry_time(day) > now:
            found.add(_at_expiry_time(day))
            dailies += 1
        day += timedelta(days=1)
    fridays, day = 0, now.date()
    while fridays < 4:
        if day.weekday() == calendar.FRIDAY and _at_expiry_time(day) > now:
            found.add(_at_expiry_time(day))
            fridays += 1
        day += timedelta(days=1)
    months, offset = 0, 0
    while months < 3:
        year, month = _add_months(now.year, now.month, offset)
        candidate = _at_expiry_time(_last_friday(year, month))
        if candidate > now:
            found.add(candidate)
            months += 1
        offset += 1
    quarters, offset = 0, 0
    while quarters < 3:
        year, month = _add_months(now.year, now.month, offset)
        if month in (3, 6, 9, 12):
            candidate = _at_expiry_time(_last_friday(year, month))
            if candidate > now:
                found.add(candidate)
                quarters += 1
        offset += 1
    return sorted(found)


def strike_grid(underlying: str, index: Decimal, years_to_expiry: float) -> list[Decimal]:
    vol = REFERENCE_VOL[underlying]
    spread = max(2.5 * vol * math.sqrt(max(years_to_expiry, 1 / 365)), 0.05)
    low = float(index) * math.exp(-spread)
    high = float(index) * math.exp(spread)
    steps = STRIKE_STEPS[underlying]
    step = next((s for s in steps if (high - low) / float(s) <= MAX_STRIKES), steps[-1])
    first = math.ceil(low / float(step))
    last = math.floor(high / float(step))
    return [step * k for k in range(max(first, 1), last + 1)]


def series_for(underlying: str, index: Decimal, now: datetime) -> list[SeriesSpec]:
    specs = []
    for expiry in expiries(now):
        years = (expiry - now).total_seconds() / (365 * 86400)
        for strike in strike_grid(underlying, index, years):
            for option_type in ("C", "P"):
                specs.append(SeriesSpec(underlying, expiry, strike, option_type))
    return specs


# The canonical form ``series_symbol`` writes: an 8-digit date and a positive plain-decimal
# strike without redundant zeros, so a parsed symbol always writes back to itself.
_SERIES_SYMBOL = re.compile(r"([A-Z][A-Z0-9]{1,9})-(\d{8})-((?:0|[1-9]\d*)(?:\.\d*[1-9])?)-([CP])")


def parse_series_symbol(symbol: str) -> SeriesSpec | None:
    """``BTC-20261225-100000-C`` -> its parts, or None if it is not a series symbol."""
    match = _SERIES_SYMBOL.fullmatch(symbol)
    if match is None:
        return None
    underlying, day, strike_text, option_type = match.groups()
    try:
        expiry = _at_expiry_time(datetime.strptime(day, "%Y%m%d").date())
    except ValueError:
        return None
    strike = Decimal(strike_text)
    if strike <= 0:
        return None
    return SeriesSpec(underlying, expiry, strike, option_type)
