"""Candle aggregation (pure: no Django). Prices and volumes are Decimals; times are
timezone-aware UTC datetimes; an interval's bucket starts at a multiple of its length
since the Unix epoch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

INTERVALS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}


def bucket_start(ts: datetime, interval: str) -> datetime:
    seconds = INTERVALS[interval]
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


@dataclass(frozen=True)
class Bar:
    symbol: str
    interval: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)

    def add(self, price: Decimal, volume: Decimal = Decimal(0)) -> Bar:
        return replace(
            self, high=max(self.high, price), low=min(self.low, price), close=price, volume=self.volume + volume
        )


class CandleBuilder:
    """Folds a stream of prints into the open bar of every interval. ``update`` returns the
    bars that changed (to be upserted) — the open ones, plus any it just closed."""

    def __init__(self, symbol: str, intervals=tuple(INTERVALS)):
        self.symbol = symbol
        self.intervals = intervals
        self.open_bars: dict[str, Bar] = {}
        self.last_ts: datetime | None = None

    def seed(self, bars: list[Bar]) -> None:
        """Continue the bars that were open when the previous builder stopped."""
        for bar in bars:
            self.open_bars[bar.interval] = bar

    def update(self, ts: datetime, price: Decimal, volume: Decimal = Decimal(0)) -> list[Bar]:
        starts = {interval: bucket_start(ts, interval) for interval in self.intervals}
        # A late print (older than the last one, or than any open bar) is ignored in every
        # interval alike: folding it into the coarser bars only would make them disagree
        # with the finer ones (a 5m close that is no 1m close).
        if self.last_ts is not None and ts < self.last_ts:
            return []
        if any(
            interval in self.open_bars and start < self.open_bars[interval].open_time
            for interval, start in starts.items()
        ):
            return []
        self.last_ts = ts
        changed = []
        for interval, start in starts.items():
            bar = self.open_bars.get(interval)
            if bar is None or start > bar.open_time:
                bar = Bar(self.symbol, interval, start, price, price, price, price, volume)
            else:
                bar = bar.add(price, volume)
            self.open_bars[interval] = bar
            changed.append(bar)
        return changed


def aggregate(bars: list[Bar], interval: str) -> list[Bar]:
    """Roll finer bars (sorted by time) up into ``interval`` bars."""
    out: list[Bar] = []
    for bar in bars:
        start = bucket_start(bar.open_time, interval)
        if out and out[-1].open_time == start:
            last = out[-1]
            out[-1] = replace(
                last,
                high=max(last.high, bar.high),
                low=min(last.low, bar.low),
                close=bar.close,
                volume=last.volume + bar.volume,
            )
        else:
            out.append(Bar(bar.symbol, interval, start, bar.open, bar.high, bar.low, bar.close, bar.volume))
    return out
