"""Realized volatility of a price series: plain Python, no Django (the analytics dashboard
feeds it the index's candle closes)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise

SECONDS_PER_YEAR = 365 * 24 * 3600


def realized_volatility(closes: Sequence[Decimal], *, period_seconds: float) -> float | None:
    """The annualized standard deviation of the log returns between consecutive closes taken
    ``period_seconds`` apart (sample deviation, crypto's 365-day year), as a fraction
    (0.55 is 55 %). None with fewer than three closes (two returns) or a close that is not
    positive: no figure beats a made-up one."""
    if len(closes) < 3 or any(c is None or c <= 0 for c in closes):
        return None
    returns = [math.log(b / a) for a, b in pairwise(closes)]
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(variance * SECONDS_PER_YEAR / period_seconds)
