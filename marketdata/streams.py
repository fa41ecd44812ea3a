"""What the feed publishes to ``/ws/market/`` after each commit: one ``publish_many`` per
tick (one channel-layer message, one dispatch in each web process), whatever the number of
channels that moved."""

from __future__ import annotations

from datetime import datetime

from trading.formatting import decimal_string, utc_string
from trading.realtime import publish_many


def index_payload(underlying: str, price, stale: bool, ts: datetime) -> dict:
    return {"underlying": underlying, "price": decimal_string(price), "stale": stale, "time": utc_string(ts)}


def candle_payload(bar) -> dict:
    return {
        "time": utc_string(bar.open_time),
        "open": decimal_string(bar.open),
        "high": decimal_string(bar.high),
        "low": decimal_string(bar.low),
        "close": decimal_string(bar.close),
        "volume": decimal_string(bar.volume),
    }


def tick_updates(*, prints, bars, tickers: dict[str, dict]) -> list[tuple[str, dict]]:
    """The ``(channel, payload)`` updates of one feed tick: index prints, candles, tickers."""
    updates = [(f"index:{p.underlying}", {"data": index_payload(p.underlying, p.price, p.stale, p.ts)}) for p in prints]
    updates += [(f"candles:{bar.symbol}:{bar.interval}", {"data": candle_payload(bar)}) for bar in bars]
    updates += [(f"ticker:{symbol}", {"data": ticker}) for symbol, ticker in tickers.items()]
    return updates


def publish_tick(*, prints, bars, tickers: dict[str, dict]) -> None:
    publish_many(tick_updates(prints=prints, bars=bars, tickers=tickers))
