"""Market data writes: the instrument list, index prints and candles."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from trading.errors import NotFound

from .candles import INTERVALS, Bar, bucket_start
from .models import Candle, CandleSource, Instrument, InstrumentKind, WatchlistItem
from .series import series_for

SPOT_MARKETS = {
    # symbol: (base, tick size, lot size, min notional in USDT)
    "BTC-USDT": ("BTC", Decimal("0.01"), Decimal("0.00001"), Decimal("10")),
    "ETH-USDT": ("ETH", Decimal("0.01"), Decimal("0.0001"), Decimal("10")),
}
OPTION_TICK = Decimal("0.01")  # USDT per contract
OPTION_LOT = Decimal("0.01")  # contracts; one contract is one unit of the underlying
UNDERLYINGS = ("BTC", "ETH")


def instruments_sync(*, now: datetime | None = None, index_prices: dict[str, Decimal]) -> dict[str, int]:
    """List the spot pairs and every option series the calendar calls for at ``now``;
    retire expired series. Idempotent: run it on a schedule."""
    now = now or timezone.now()
    created = 0
    with transaction.atomic(durable=True):
        for symbol, (base, tick, lot, notional) in SPOT_MARKETS.items():
            _, was_created = Instrument.objects.get_or_create(
                symbol=symbol,
                defaults={
                    "kind": InstrumentKind.SPOT,
                    "base": base,
                    "tick_size": tick,
                    "lot_size": lot,
                    "min_notional": notional,
                },
            )
            created += was_created
        existing = set(
            Instrument.objects.filter(kind=InstrumentKind.OPTION, expiry__gt=now).values_list("symbol", flat=True)
        )
        new = []
        for underlying in UNDERLYINGS:
            index = index_prices.get(underlying)
            if index is None:
                continue
            for spec in series_for(underlying, index, now):
                if spec.symbol not in existing:
                    new.append(
                        Instrument(
                            symbol=spec.symbol,
                            kind=InstrumentKind.OPTION,
                            base=underlying,
                            tick_size=OPTION_TICK,
                            lot_size=OPTION_LOT,
                            min_notional=Decimal(0),
                            expiry=spec.expiry,
                            strike=spec.strike,
                            option_type=spec.option_type,
                        )
                    )
        Instrument.objects.bulk_create(new, ignore_conflicts=True)
        retired = Instrument.objects.filter(kind=InstrumentKind.OPTION, active=True, expiry__lte=now).update(
            active=False
        )
    return {"created": created + len(new), "retired": retired}


def watchlist_add(*, user, symbol: str):
    from .selectors import instrument_get

    instrument = instrument_get(symbol=symbol)
    with transaction.atomic(durable=True):
        item, _ = WatchlistItem.objects.get_or_create(user=user, symbol=instrument.symbol)
    return item


def watchlist_remove(*, user, symbol: str) -> None:
    with transaction.atomic(durable=True):
        deleted, _ = WatchlistItem.objects.filter(user=user, symbol=symbol.upper()).delete()
    if not deleted:
        raise NotFound("This symbol is not on your watchlist.")


def trade_candles_record(*, symbol: str, prints: list[tuple[datetime, Decimal, Decimal]]) -> None:
    """Fold trades (time, price, quantity), in the order they printed, into the symbol's
    ``source=trades`` candles of every interval: the volume the charts and the 24 h ticker
    show. Called by the symbol's engine runner, its only writer, in the batch's transaction."""
    if not prints:
        return
    keys = {(interval, bucket_start(ts, interval)) for ts, _, _ in prints for interval in INTERVALS}
    bars: dict[tuple[str, datetime], Bar] = {}
    for row in Candle.objects.filter(
        symbol=symbol,
        source=CandleSource.TRADES,
        interval__in=list(INTERVALS),
        open_time__in=sorted({start for _, start in keys}),
    ):
        if (row.interval, row.open_time) in keys:
            bars[(row.interval, row.open_time)] = Bar(
                symbol, row.interval, row.open_time, row.open, row.high, row.low, row.close, row.volume
            )
    for ts, price, quantity in prints:
        for interval in INTERVALS:
            key = (interval, bucket_start(ts, interval))
            bar = bars.get(key)
            bars[key] = (
                Bar(symbol, interval, key[1], price, price, price, price, quantity)
                if bar is None
                else bar.add(price, quantity)
            )
    Candle.objects.bulk_create(
        [
            Candle(
                symbol=symbol,
                source=CandleSource.TRADES,
                interval=b.interval,
                open_time=b.open_time,
                open=b.open,
                high=b.high,
                low=b.low,
                close=b.close,
                volume=b.volume,
            )
            for b in bars.values()
        ],
        update_conflicts=True,
        unique_fields=["symbol", "source", "interval", "open_time"],
        update_fields=["open", "high", "low", "close", "volume"],
    )
