"""Market data reads."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, Sum
from django.utils import timezone

from trading.errors import NotFound, ValidationFailed
from trading.formatting import decimal_string, utc_string

from .models import Candle, CandleSource, IndexPrint, Instrument, InstrumentKind, WatchlistItem

MAX_CANDLES = 1000


def instruments_active(*, kind: str | None = None, underlying: str | None = None):
    qs = Instrument.objects.filter(active=True)
    if kind:
        qs = qs.filter(kind=kind)
    if underlying:
        qs = qs.filter(base=underlying.upper())
    return qs


def instrument_get(*, symbol: str) -> Instrument:
    instrument = Instrument.objects.filter(symbol=symbol.upper()).first()
    if instrument is None:
        raise NotFound(f"Unknown symbol {symbol}.", code="unknown_symbol")
    return instrument


def index_is_fresh(index: IndexPrint | None, *, now: datetime | None = None) -> bool:
    """A usable index: present, not marked stale, and recent (the feed may have died)."""
    if index is None or index.stale or index.price is None:
        return False
    age = ((now or timezone.now()) - index.ts).total_seconds()
    return age <= settings.INDEX_MAX_AGE_SECONDS


def index_latest(*, underlying: str) -> IndexPrint | None:
    return IndexPrint.objects.filter(underlying=underlying).order_by("-ts").first()


def index_twap(*, underlying: str, end: datetime, minutes: int = 30) -> Decimal | None:
    """Time-weighted average of the non-stale index prints in the ``minutes`` before ``end``
    (each print weighted by how long it stood): the options' settlement price."""
    start = end - timedelta(minutes=minutes)
    before = (
        IndexPrint.objects.filter(underlying=underlying, stale=False, ts__lte=start)
        .order_by("-ts")
        .values_list("ts", "price")
        .first()
    )
    prints = list(
        IndexPrint.objects.filter(underlying=underlying, stale=False, ts__gt=start, ts__lte=end)
        .order_by("ts")
        .values_list("ts", "price")
    )
    if before is not None:
        prints.insert(0, (start, before[1]))
    if not prints:
        return None
    weighted, total = Decimal(0), Decimal(0)
    for (ts, price), nxt in zip(prints, [*prints[1:], (end, None)]):
        seconds = Decimal(str((nxt[0] - ts).total_seconds()))
        weighted += price * seconds
        total += seconds
    if total == 0:
        return prints[-1][1]
    return (weighted / total).quantize(Decimal("0.01"))


def candles_for(
    *, symbol: str, interval: str, start: datetime | None = None, end: datetime | None = None, limit: int = 500
):
    if interval not in Candle.INTERVALS:
        raise ValidationFailed(
            f"Unknown interval {interval!r}.", fields={"interval": [f"One of {', '.join(Candle.INTERVALS)}."]}
        )
    if start and end and start > end:
        raise ValidationFailed("start is after end.", fields={"start": ["Must be before end."]})
    limit = max(1, min(int(limit), MAX_CANDLES))
    qs = Candle.objects.filter(symbol=symbol, interval=interval, source=CandleSource.INDEX)
    if start:
        qs = qs.filter(open_time__gte=start)
    if end:
        qs = qs.filter(open_time__lte=end)
    if start and not end:
        bars = list(qs.order_by("open_time")[:limit])
    else:
        bars = list(reversed(qs.order_by("-open_time")[:limit]))
    return with_trade_volume(bars)


def trade_volumes(bars) -> dict[tuple[str, str, datetime], Decimal]:
    """The quantity traded on our book in each of these bars' buckets, keyed by (symbol,
    interval, open time), from the ``source=trades`` candles (a bucket without trades is
    absent). One query, whatever the mix of symbols and intervals."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for bar in bars:
        spans.setdefault((bar.symbol, bar.interval), []).append(bar.open_time)
    if not spans:
        return {}
    match = Q()
    for (symbol, interval), times in spans.items():
        match |= Q(symbol=symbol, interval=interval, open_time__gte=min(times), open_time__lte=max(times))
    rows = Candle.objects.filter(match, source=CandleSource.TRADES)
    return {(s, i, t): v for s, i, t, v in rows.values_list("symbol", "interval", "open_time", "volume")}


def with_trade_volume(bars: list) -> list:
    """Index candles (rows or ``candles.Bar``) with the volume traded on our book in each
    bucket: the index has prices, not volume."""
    volumes = trade_volumes(bars)
    out = []
    for bar in bars:
        volume = volumes.get((bar.symbol, bar.interval, bar.open_time), Decimal(0))
        if isinstance(bar, Candle):
            bar.volume = volume
            out.append(bar)
        else:
            out.append(dataclasses.replace(bar, volume=volume))
    return out


def day_stats(*, symbol: str, now: datetime | None = None) -> dict:
    """24 h open/high/low from the 1h index candles (the ones ``last`` follows; mixing in the
    engine's trade candles would take the open from one series and the high from the other),
    and the 24 h volume: the quantity traded on our book, from its 1m trade candles."""
    now = now or timezone.now()
    bars = list(
        Candle.objects.filter(
            symbol=symbol, source=CandleSource.INDEX, interval="1h", open_time__gt=now - timedelta(hours=24)
        ).order_by("open_time")
    )
    volume = Candle.objects.filter(
        symbol=symbol, source=CandleSource.TRADES, interval="1m", open_time__gt=now - timedelta(hours=24)
    ).aggregate(total=Sum("volume"))["total"] or Decimal(0)
    if not bars:
        return {"open": None, "high": None, "low": None, "volume": volume}
    return {
        "open": bars[0].open,
        "high": max(b.high for b in bars),
        "low": min(b.low for b in bars),
        "volume": volume,
    }


def watchlist_for(*, user):
    return WatchlistItem.objects.filter(user=user)


def spot_symbols() -> list[str]:
    return list(Instrument.objects.filter(kind=InstrumentKind.SPOT, active=True).values_list("symbol", flat=True))


def spot_book_key(symbol: str) -> str:
    """Where a spot symbol's engine runner keeps its top of book and recent trades."""
    return f"spot:market:{symbol}"


def spot_market(symbol: str) -> dict:
    """The engine's latest published state of a spot market: ``sequence``, ``bids``,
    ``asks`` (price/quantity strings, best first), ``last`` and ``trades`` (newest first)."""
    return cache.get(spot_book_key(symbol)) or {"sequence": 0, "bids": [], "asks": [], "last": None, "trades": []}


def ticker(*, instrument: Instrument) -> dict:
    """Last, bid, ask, 24 h change and volume, and the index. ``last`` is the last trade on
    our book, or the index before any trade."""
    index = index_latest(underlying=instrument.base)
    fresh = index_is_fresh(index)
    index_price = index.price if fresh else None
    stats = day_stats(symbol=instrument.symbol)
    market = spot_market(instrument.symbol) if instrument.kind == InstrumentKind.SPOT else {}
    last = Decimal(market["last"]) if market.get("last") else index_price
    change = None
    if last is not None and stats["open"]:
        change = ((last - stats["open"]) / stats["open"] * 100).quantize(Decimal("0.01"))
    return {
        "symbol": instrument.symbol,
        "last": decimal_string(last),
        "bid": market["bids"][0][0] if market.get("bids") else None,
        "ask": market["asks"][0][0] if market.get("asks") else None,
        "change_24h_percent": decimal_string(change),
        "high_24h": decimal_string(stats["high"]),
        "low_24h": decimal_string(stats["low"]),
        "volume_24h": decimal_string(stats["volume"]),
        "index_price": decimal_string(index_price),
        "index_stale": not fresh,
        "time": utc_string(index.ts if index else timezone.now()),
    }


def order_book(*, instrument: Instrument, depth: int) -> dict:
    """The spot book as its engine runner last published it (after each committed batch)."""
    market = spot_market(instrument.symbol)
    return {
        "symbol": instrument.symbol,
        "bids": market["bids"][:depth],
        "asks": market["asks"][:depth],
        "sequence": market["sequence"],
        "depth": depth,
    }


def recent_trades(*, instrument: Instrument, limit: int) -> list:
    """Public trades on our book, newest first."""
    return spot_market(instrument.symbol)["trades"][:limit]
