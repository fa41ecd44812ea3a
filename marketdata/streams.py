"""What the feed publishes to ``/ws/market/`` after each commit."""

from __future__ import annotations

from datetime import datetime

from trading.realtime import publish


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


def publish_tick(*, prints, bars, tickers: dict[str, dict]) -> None:
    for index_print in prints:
        publish(f"index:{index_print.underlying}", {"data": index_payload(index_print.underlying, index_print.price, index_print.stale, index_print.ts)})
    for bar in bars:
        publish(f"candles:{bar.symbol}:{bar.interval}", {"data": candle_payload(bar)})
    for symbol, ticker in tickers.items():
        publish(f"ticker:{symbol}", {"data": ticker})
