"""Demo market data for ``manage.py seed_demo``: instruments and a week of history."""

from .backfill import backfill
from .feed import DEFAULT_UNDERLYINGS
from .feed_runner import last_index_prices
from .models import Candle
from .services import instruments_sync


def seed(out) -> None:
    prices = last_index_prices() or {name: params.start for name, params in DEFAULT_UNDERLYINGS.items()}
    counts = instruments_sync(index_prices=prices)
    out.write(f"    instruments: {counts['created']} listed, {counts['retired']} retired")
    if not Candle.objects.exists():
        written = backfill(days=7, progress=out.write)
        out.write(f"    candles: {written} written (7 days of simulated history)")
