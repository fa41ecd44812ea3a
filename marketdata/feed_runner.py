"""The index feed singleton: sources -> index prints -> candles, once a second.

Runs behind the ``feed`` lease (``manage.py run_feed`` in stack mode, a thread in embedded
mode). Every write is fenced by the lease epoch, so a paused former leader cannot write.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from trading.dependencies import REDIS, dependency, unavailable
from trading.leases import Singleton, fenced

from .candles import Bar, CandleBuilder
from .feed import DEFAULT_UNDERLYINGS, CcxtTickerSource, MarketSimulator, collect_quotes, compute_index
from .models import Candle, CandleSource, IndexPrint, Instrument
from .selectors import ticker, with_trade_volume
from .services import UNDERLYINGS, instruments_sync
from .streams import publish_tick

logger = logging.getLogger(__name__)

LEASE = "feed"
SPOT_OF = {"BTC": "BTC-USDT", "ETH": "ETH-USDT"}
INSTRUMENT_SYNC_SECONDS = 600
PRINT_RETENTION = timedelta(days=2)


def last_index_prices() -> dict[str, Decimal]:
    """Where the market stands: the last index print, else the last candle close."""
    prices = {}
    for underlying in UNDERLYINGS:
        row = (
            IndexPrint.objects.filter(underlying=underlying, stale=False)
            .order_by("-ts")
            .values_list("price", flat=True)
            .first()
        )
        if row is None:
            row = (
                Candle.objects.filter(symbol=SPOT_OF[underlying], interval="1m")
                .order_by("-open_time")
                .values_list("close", flat=True)
                .first()
            )
        if row is not None:
            prices[underlying] = row
    return prices


def simulator_from(prices: dict[str, Decimal], *, now: float, seed: int | None = None) -> MarketSimulator:
    params = {
        name: dataclasses.replace(default, start=prices.get(name, default.start))
        for name, default in DEFAULT_UNDERLYINGS.items()
    }
    return MarketSimulator(seed if seed is not None else settings.FEED_SEED, params, start_time=now)


class FeedRunner:
    def __init__(self, *, holder: str | None = None):
        self.holder = holder
        self.simulator: MarketSimulator | None = None
        self.sources: list = []
        self.builders: dict[str, CandleBuilder] = {}
        self.next_sync = 0.0
        self.next_prune = 0.0

    def on_lead(self, epoch: int) -> None:
        """Start from the stored market state: a new leader continues the old one's path."""
        now = time.time()
        self.simulator = simulator_from(last_index_prices(), now=now)
        self.sources = self.simulator.sources() + [
            CcxtTickerSource(exchange_id) for exchange_id in settings.FEED_CCXT_EXCHANGES
        ]
        self.builders = {}
        for underlying in UNDERLYINGS:
            builder = CandleBuilder(SPOT_OF[underlying])
            builder.seed(_open_bars(SPOT_OF[underlying]))
            self.builders[underlying] = builder
        self.next_sync = 0.0

    def tick(self, epoch: int) -> None:
        now = time.time()
        self.simulator.advance_to(now)
        results = {u: compute_index(collect_quotes(self.sources, u, now), now, underlying=u) for u in UNDERLYINGS}
        stamp = datetime.fromtimestamp(now, tz=UTC)
        prints = [
            IndexPrint(
                underlying=u,
                ts=stamp,
                price=r.price,
                stale=r.stale,
                sources={"used": r.used, "excluded": r.excluded},
            )
            for u, r in results.items()
        ]
        bars: list[Bar] = []
        for u, result in results.items():
            if not result.stale:
                bars.extend(self.builders[u].update(stamp, result.price))
        with transaction.atomic(durable=True), fenced(LEASE, epoch, self.holder):
            IndexPrint.objects.bulk_create(prints)
            candles_upsert(bars)
            if now >= self.next_prune:
                IndexPrint.objects.filter(ts__lt=stamp - PRINT_RETENTION).delete()
            transaction.on_commit(lambda: _publish(prints, bars))
        if now >= self.next_prune:
            self.next_prune = now + 3600
        if now >= self.next_sync:
            prices = {u: r.price for u, r in results.items() if not r.stale}
            if prices:
                instruments_sync(index_prices=prices)
                self.next_sync = now + INSTRUMENT_SYNC_SECONDS


def _publish(prints: list[IndexPrint], bars: list[Bar]) -> None:
    """The tick to ``/ws/market/`` (after its commit). With Redis away the tick is dropped:
    the prints are committed, and the first tick after Redis is back carries the current
    index, tickers and candles (each is the whole state of its channel)."""
    redis = dependency(REDIS)
    if not redis.may_try():
        return
    try:
        tickers = {}
        for symbol in SPOT_OF.values():
            instrument = Instrument.objects.filter(symbol=symbol).first()
            if instrument is not None:
                tickers[symbol] = ticker(instrument=instrument)  # reads the engine's book from Redis
        bars = with_trade_volume(bars)  # the volume traded on our book in each bar
    except Exception as exc:
        if unavailable(exc) != REDIS:
            raise
        redis.failed(exc)
        return
    redis.ok()
    publish_tick(prints=prints, bars=bars, tickers=tickers)


def candles_upsert(bars: list[Bar]) -> None:
    """Write whole bars (the builder holds the true OHLC): insert or overwrite."""
    if not bars:
        return
    Candle.objects.bulk_create(
        [
            Candle(
                symbol=b.symbol,
                source=CandleSource.INDEX,
                interval=b.interval,
                open_time=b.open_time,
                open=b.open,
                high=b.high,
                low=b.low,
                close=b.close,
                volume=b.volume,
            )
            for b in bars
        ],
        update_conflicts=True,
        unique_fields=["symbol", "source", "interval", "open_time"],
        update_fields=["open", "high", "low", "close", "volume"],
    )


def _open_bars(symbol: str) -> list[Bar]:
    bars = []
    for interval in Candle.INTERVALS:
        row = (
            Candle.objects.filter(symbol=symbol, source=CandleSource.INDEX, interval=interval)
            .order_by("-open_time")
            .first()
        )
        if row is not None:
            bars.append(Bar(symbol, interval, row.open_time, row.open, row.high, row.low, row.close, row.volume))
    return bars


def feed_singleton(*, ttl: float = 3.0, announce=print) -> Singleton:
    runner = FeedRunner()
    singleton = Singleton(
        LEASE,
        work=runner.tick,
        ttl=ttl,
        interval=settings.FEED_INTERVAL_SECONDS,
        on_lead=runner.on_lead,
        announce=announce,
    )
    runner.holder = singleton.holder
    return singleton
