"""History for demo mode: simulated index candles leading up to now, continuous with the
live feed (the simulator draws the path backwards from the current price)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from .candles import Bar, aggregate
from .feed_runner import SPOT_OF, candles_upsert, last_index_prices, simulator_from
from .services import UNDERLYINGS

SUB_STEPS = 6  # prices per minute, for each 1m bar's high and low


def backfill(*, days: float, end: float | None = None, progress: Callable[[str], None] = lambda line: None) -> int:
    end = end or time.time()
    end -= end % 60
    start = end - days * 86400
    simulator = simulator_from(last_index_prices(), now=end)
    written = 0
    for underlying in UNDERLYINGS:
        symbol = SPOT_OF[underlying]
        path = simulator.history(underlying, start, end, 60 / SUB_STEPS)
        minutes: list[Bar] = []
        for offset in range(0, len(path) - 1, SUB_STEPS):
            chunk = [price for _, price in path[offset : offset + SUB_STEPS + 1]]
            opened = datetime.fromtimestamp(path[offset][0], tz=UTC)
            minutes.append(Bar(symbol, "1m", opened, chunk[0], max(chunk), min(chunk), chunk[-1], Decimal(0)))
        progress(f"    {symbol}: {len(minutes)} one-minute bars from {minutes[0].open_time:%Y-%m-%d %H:%M} UTC")
        bars = minutes + aggregate(minutes, "5m") + aggregate(minutes, "1h") + aggregate(minutes, "1d")
        for chunk_start in range(0, len(bars), 5000):
            with transaction.atomic(durable=True):
                candles_upsert(bars[chunk_start : chunk_start + 5000])
        written += len(bars)
    return written
