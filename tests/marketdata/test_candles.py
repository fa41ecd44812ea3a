"""Candles: the builder and the roll-up (pure), the settlement TWAP and the history backfill
(database)."""

from __future__ import annotations

import itertools
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.backfill import backfill
from marketdata.candles import INTERVALS, Bar, CandleBuilder, aggregate, bucket_start
from marketdata.models import Candle, CandleSource, IndexPrint
from marketdata.selectors import index_twap

UTC = UTC
T0 = datetime(2026, 11, 20, 9, 58, 0, tzinfo=UTC)  # two minutes before a 5m, 1h boundary
D = Decimal


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ohlc(bar: Bar) -> tuple:
    return (bar.open, bar.high, bar.low, bar.close)


# --- the builder ------------------------------------------------------------------------


def test_bucket_start_aligns_on_the_unix_epoch():
    ts = datetime(2026, 11, 20, 10, 7, 31, 500000, tzinfo=UTC)
    assert bucket_start(ts, "1m") == datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
    assert bucket_start(ts, "5m") == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    assert bucket_start(ts, "1h") == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert bucket_start(ts, "1d") == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert bucket_start(datetime(2026, 11, 20, 10, 5, tzinfo=UTC), "5m") == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def test_builder_folds_prints_into_ohlc_and_opens_new_bars_at_boundaries():
    builder = CandleBuilder("BTC-USDT")
    changed = builder.update(s(5), D("100"), D("1"))
    assert {bar.interval for bar in changed} == set(INTERVALS)
    for bar in changed:
        assert ohlc(bar) == (D("100"),) * 4 and bar.volume == D("1")
        assert bar.open_time == bucket_start(s(5), bar.interval)

    builder.update(s(20), D("105"), D("2"))
    builder.update(s(40), D("95"))
    changed = builder.update(s(59), D("101"))
    minute = {bar.interval: bar for bar in changed}["1m"]
    assert ohlc(minute) == (D("100"), D("105"), D("95"), D("101")) and minute.volume == D("3")

    # 09:59:00 — a new minute; the 5m, 1h and 1d bars carry on.
    changed = {bar.interval: bar for bar in builder.update(s(60), D("110"))}
    assert changed["1m"].open_time == s(60) and ohlc(changed["1m"]) == (D("110"),) * 4
    assert ohlc(changed["5m"]) == (D("100"), D("110"), D("95"), D("110"))
    assert changed["5m"].open_time == datetime(2026, 11, 20, 9, 55, tzinfo=UTC)

    # 10:00:00 — a new minute, 5 minutes and hour; the day carries on.
    changed = {bar.interval: bar for bar in builder.update(s(120), D("90"))}
    assert changed["1m"].open_time == changed["5m"].open_time == changed["1h"].open_time == s(120)
    assert ohlc(changed["5m"]) == ohlc(changed["1h"]) == (D("90"),) * 4
    assert changed["1d"].open_time == datetime(2026, 11, 20, tzinfo=UTC)
    assert ohlc(changed["1d"]) == (D("100"), D("110"), D("90"), D("90"))
    assert changed["1d"].volume == D("3")


def test_builder_ignores_late_prints_in_every_interval():
    builder = CandleBuilder("BTC-USDT")
    builder.update(s(10), D("100"))
    builder.update(s(70), D("101"))  # a new minute, same 5m bucket
    before = dict(builder.open_bars)
    # Older than the open 1m bar but inside the open 5m bar: still late, for every bar.
    assert builder.update(s(30), D("50")) == []
    # Older than the last print, inside the same minute.
    assert builder.update(s(65), D("500")) == []
    assert builder.open_bars == before
    assert ohlc(builder.open_bars["5m"]) == (D("100"), D("101"), D("100"), D("101"))
    # A print at the same instant as the last one counts.
    assert len(builder.update(s(70), D("102"))) == len(INTERVALS)
    assert builder.open_bars["1m"].close == builder.open_bars["5m"].close == D("102")


def test_seeded_builder_continues_the_open_bars_and_refuses_older_prints():
    seeded = [
        Bar("ETH-USDT", "1m", s(60), D("10"), D("12"), D("9"), D("11"), D("0")),
        Bar("ETH-USDT", "5m", datetime(2026, 11, 20, 9, 55, tzinfo=UTC), D("8"), D("12"), D("7"), D("11"), D("0")),
    ]
    builder = CandleBuilder("ETH-USDT", intervals=("1m", "5m"))
    builder.seed(seeded)
    assert builder.update(s(30), D("1")) == []  # before the open 1m bar
    changed = {bar.interval: bar for bar in builder.update(s(90), D("13"))}
    assert ohlc(changed["1m"]) == (D("10"), D("13"), D("9"), D("13"))
    assert ohlc(changed["5m"]) == (D("8"), D("13"), D("7"), D("13"))


def random_minutes(count: int, *, start: datetime, seed: int = 3) -> list[Bar]:
    rnd = random.Random(seed)
    bars, price = [], D("65000")
    for k in range(count):
        opened = price
        moves = [opened + D(rnd.randint(-300, 300)) for _ in range(4)]
        price = moves[-1]
        bars.append(
            Bar(
                "BTC-USDT",
                "1m",
                start + timedelta(minutes=k),
                opened,
                max([opened, *moves]),
                min([opened, *moves]),
                price,
                D(rnd.randint(0, 5)),
            )
        )
    return bars


def assert_rolled_up(fine: list[Bar], coarse: list[Bar], interval: str) -> None:
    groups: dict[datetime, list[Bar]] = {}
    for bar in fine:
        groups.setdefault(bucket_start(bar.open_time, interval), []).append(bar)
    assert [bar.open_time for bar in coarse] == sorted(groups)
    for bar in coarse:
        members = groups[bar.open_time]
        assert bar.interval == interval
        assert bar.open == members[0].open
        assert bar.close == members[-1].close
        assert bar.high == max(m.high for m in members)
        assert bar.low == min(m.low for m in members)
        assert bar.volume == sum((m.volume for m in members), D(0))


def test_aggregate_rolls_minutes_up_consistently():
    # Starts mid-day, mid-hour and mid-5-minutes: the first coarse bars are partial.
    minutes = random_minutes(3 * 1440 + 17, start=datetime(2026, 11, 20, 13, 37, tzinfo=UTC))
    for interval in ("5m", "1h", "1d"):
        coarse = aggregate(minutes, interval)
        assert_rolled_up(minutes, coarse, interval)
    assert len(aggregate(minutes, "1d")) == 4
    # Rolling up in two stages gives the same bars.
    assert aggregate(aggregate(minutes, "5m"), "1h") == aggregate(minutes, "1h")
    assert aggregate(aggregate(minutes, "1h"), "1d") == aggregate(minutes, "1d")
    assert aggregate([], "1h") == []


def test_builder_and_aggregate_agree():
    """Live 1m bars from the builder, rolled up, equal the builder's own coarser bars."""
    rnd = random.Random(11)
    builder = CandleBuilder("BTC-USDT")
    written: dict[tuple[str, datetime], Bar] = {}
    ts, price = datetime(2026, 11, 20, 22, 50, 3, tzinfo=UTC), D("65000")
    for _ in range(3000):
        ts += timedelta(seconds=rnd.choice([1, 1, 2, 7, 30]))
        price += D(rnd.randint(-50, 50))
        for bar in builder.update(ts, price):
            written[(bar.interval, bar.open_time)] = bar
    by_interval = {
        i: sorted((b for (iv, _), b in written.items() if iv == i), key=lambda b: b.open_time) for i in INTERVALS
    }
    for interval in ("5m", "1h", "1d"):
        assert aggregate(by_interval["1m"], interval) == by_interval[interval]


# --- index TWAP (database) ----------------------------------------------------------------


def add_print(underlying: str, ts: datetime, price: str | None, *, stale: bool = False) -> None:
    IndexPrint.objects.create(underlying=underlying, ts=ts, price=None if price is None else D(price), stale=stale)


END = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
START = END - timedelta(minutes=30)


@pytest.mark.django_db
def test_twap_is_none_without_prints():
    assert index_twap(underlying="BTC", end=END) is None
    add_print("BTC", END + timedelta(seconds=1), "70000")  # after the window
    add_print("ETH", START + timedelta(minutes=5), "3400")  # another underlying
    add_print("BTC", START + timedelta(minutes=5), None, stale=True)  # only a stale one
    assert index_twap(underlying="BTC", end=END) is None


@pytest.mark.django_db
def test_twap_weights_each_print_by_how_long_it_stood():
    add_print("BTC", START + timedelta(minutes=0, seconds=1), "100")  # stands 9:59
    add_print("BTC", START + timedelta(minutes=10), "130")  # stands 20 min
    add_print("BTC", START + timedelta(minutes=10), "130")  # a duplicate changes nothing
    expected = (D("100") * (600 - 1) + D("130") * 1200) / (1800 - 1)
    assert index_twap(underlying="BTC", end=END) == expected.quantize(D("0.01"))
    add_print("BTC", END + timedelta(minutes=1), "999999")  # after the end: not counted
    assert index_twap(underlying="BTC", end=END) == expected.quantize(D("0.01"))


@pytest.mark.django_db
def test_twap_uses_the_print_standing_at_the_window_start():
    add_print("BTC", START - timedelta(hours=1), "50")  # superseded before the window
    add_print("BTC", START - timedelta(minutes=5), "100")  # stands from the start to +10 min
    add_print("BTC", START + timedelta(minutes=10), "130")
    assert index_twap(underlying="BTC", end=END) == D("120.00")  # (100·10 + 130·20) / 30
    # A print exactly at the start replaces the one before it.
    add_print("BTC", START, "160")
    assert index_twap(underlying="BTC", end=END) == D("140.00")  # (160·10 + 130·20) / 30
    # Only a print before the window: it stood the whole time.
    add_print("ETH", START - timedelta(minutes=1), "3400.55")
    assert index_twap(underlying="ETH", end=END) == D("3400.55")


@pytest.mark.django_db
def test_twap_ignores_stale_prints():
    add_print("BTC", START - timedelta(minutes=1), "100")
    add_print("BTC", START + timedelta(minutes=5), None, stale=True)
    add_print("BTC", START + timedelta(minutes=10), "130")
    add_print("BTC", START + timedelta(minutes=20), None, stale=True)
    # The stale marks neither price nor cut the standing print: 100 for 10 min, 130 for 20.
    assert index_twap(underlying="BTC", end=END) == D("120.00")
    # A stale print before the window does not hide the fresh one standing at the start.
    add_print("ETH", START - timedelta(minutes=2), "200")
    add_print("ETH", START - timedelta(minutes=1), None, stale=True)
    add_print("ETH", START + timedelta(minutes=15), "300")
    assert index_twap(underlying="ETH", end=END) == D("250.00")


@pytest.mark.django_db
def test_twap_window_length_is_a_parameter():
    add_print("BTC", END - timedelta(minutes=60), "100")
    add_print("BTC", END - timedelta(minutes=30), "200")
    assert index_twap(underlying="BTC", end=END, minutes=60) == D("150.00")
    assert index_twap(underlying="BTC", end=END, minutes=30) == D("200.00")


# --- backfill (database) ------------------------------------------------------------------


def stored(symbol: str, interval: str) -> list[Bar]:
    return [
        Bar(c.symbol, c.interval, c.open_time, c.open, c.high, c.low, c.close, c.volume)
        for c in Candle.objects.filter(symbol=symbol, interval=interval, source=CandleSource.INDEX).order_by(
            "open_time"
        )
    ]


@pytest.mark.django_db
def test_backfill_one_day_is_continuous_and_ends_now():
    IndexPrint.objects.create(underlying="BTC", ts=datetime.now(UTC), price=D("70123.45"), stale=False)
    before = time.time()
    written = backfill(days=1)
    now_minute = datetime.fromtimestamp(before - before % 60, tz=UTC)
    total = 0
    for symbol in ("BTC-USDT", "ETH-USDT"):
        minutes = stored(symbol, "1m")
        assert len(minutes) == 1440
        assert minutes[-1].open_time + timedelta(minutes=1) in (now_minute, now_minute + timedelta(minutes=1))
        assert minutes[0].open_time == minutes[-1].open_time - timedelta(minutes=1439)
        for prev, bar in itertools.pairwise(minutes):
            assert bar.open_time - prev.open_time == timedelta(minutes=1)
            assert bar.open == prev.close  # one continuous path
        for bar in minutes:
            assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
            assert bar.low > 0
        for interval in ("5m", "1h", "1d"):
            coarse = stored(symbol, interval)
            assert_rolled_up(minutes, coarse, interval)
        total += sum(len(stored(symbol, interval)) for interval in INTERVALS)
    assert written == total == Candle.objects.count()
    # The history ends where the live index stands, so the feed continues it without a jump.
    assert stored("BTC-USDT", "1m")[-1].close == D("70123.45")
    # No print for ETH: it ends at the simulator's default starting price.
    from marketdata.feed import DEFAULT_UNDERLYINGS

    assert stored("ETH-USDT", "1m")[-1].close == DEFAULT_UNDERLYINGS["ETH"].start
    # A plausible day: BTC moved, but not absurdly.
    btc = stored("BTC-USDT", "1m")
    assert btc[0].open != btc[-1].close
    assert D("0.5") < btc[0].open / btc[-1].close < D("2")


@pytest.mark.django_db
def test_backfill_is_idempotent_for_the_same_end():
    end = datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC).timestamp()
    first = backfill(days=0.25, end=end)
    snapshot = sorted(Candle.objects.values_list("symbol", "interval", "open_time", "open", "high", "low", "close"))
    second = backfill(days=0.25, end=end)
    assert first == second == Candle.objects.count()
    assert (
        sorted(Candle.objects.values_list("symbol", "interval", "open_time", "open", "high", "low", "close"))
        == snapshot
    )
    last = Candle.objects.filter(interval="1m").order_by("-open_time").first()
    assert last.open_time == datetime(2026, 11, 20, 11, 59, tzinfo=UTC)
    assert Candle.objects.filter(interval="1m", symbol="BTC-USDT").count() == 360
