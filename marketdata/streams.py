"""What the feed publishes to ``/ws/market/`` after each commit: one ``publish_many`` per
tick (one channel-layer message, one dispatch in each web process), whatever the number of
channels that moved."""

from __future__ import annotations

from datetime import datetime

from trading.realtime import publish_many


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _text(value) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def index_payload(underlying: str, price, stale: bool, ts: datetime) -> dict:
    return {"underlying": underlying, "price": _text(price), "stale": stale, "time": _iso(ts)}


def candle_payload(bar) -> dict:
    return {
        "time": _iso(bar.open_time),
        "open": _text(bar.open),
        "high": _text(bar.high),
        "low": _text(bar.low),
        "close": _text(bar.close),
        "volume": _text(bar.volume),
    }


def tick_updates(*, prints, bars, tickers: dict[str, dict]) -> list[tuple[str, dict]]:
    """The ``(channel, payload)`` updates of one feed tick: index prints, candles, tickers."""
    updates = [
        (f"index:{p.underlying}", {"data": index_payload(p.underlying, p.price, p.stale, p.ts)}) for p in prints
    ]
    updates += [(f"candles:{bar.symbol}:{bar.interval}", {"data": candle_payload(bar)}) for bar in bars]
    updates += [(f"ticker:{symbol}", {"data": ticker}) for symbol, ticker in tickers.items()]
    return updates


def publish_tick(*, prints, bars, tickers: dict[str, dict]) -> None:
    publish_many(tick_updates(prints=prints, bars=bars, tickers=tickers))
