"""The index feed singleton: in process (sources -> index prints -> candles -> instruments,
fenced by the ``feed`` lease), and as real ``manage.py run_feed`` processes: two start, one
leads; ``kill -9`` the leader and the other takes over and continues the price path."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from marketdata.candles import bucket_start
from marketdata.feed import DEFAULT_UNDERLYINGS
from marketdata.feed_runner import LEASE, FeedRunner
from marketdata.models import Candle, CandleSource, IndexPrint, Instrument
from marketdata.services import instruments_sync
from tests.processes import test_database_url
from trading.leases import LeaseLost, lease_acquire, lease_release
from trading.models import Lease

ROOT = Path(__file__).resolve().parents[2]
UTC = UTC
SPOT = {"BTC": "BTC-USDT", "ETH": "ETH-USDT"}
TTL = 1.5


@pytest.fixture
def no_exchanges(settings):
    """Only the simulated exchanges: no network in the tests."""
    settings.FEED_CCXT_EXCHANGES = []


# --- in process ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ticks_write_index_prints_candles_and_instruments(no_exchanges):
    holder = f"test-{uuid.uuid4().hex[:6]}"
    epoch = lease_acquire(name=LEASE, holder=holder, ttl=30)
    assert epoch is not None
    runner = FeedRunner()
    runner.holder = holder
    runner.on_lead(epoch)
    ticks = 4
    for _ in range(ticks):
        runner.tick(epoch)
        time.sleep(0.02)

    for underlying, symbol in SPOT.items():
        prints = list(IndexPrint.objects.filter(underlying=underlying).order_by("ts"))
        assert len(prints) == ticks
        assert [p.ts for p in prints] == sorted({p.ts for p in prints})
        for p in prints:
            assert p.stale is False and p.price is not None and p.price > 0
            assert len(p.sources["used"]) >= 2, p.sources
            assert set(p.sources["used"]).isdisjoint(p.sources["excluded"])
        # the prints sit close together: one market, a fraction of a second apart
        assert max(p.price for p in prints) / min(p.price for p in prints) < Decimal("1.01")
        last = prints[-1]
        for interval in Candle.INTERVALS:
            candle = Candle.objects.get(
                symbol=symbol, source=CandleSource.INDEX, interval=interval, open_time=bucket_start(last.ts, interval)
            )
            assert candle.close == last.price
            assert candle.low <= min(candle.open, candle.close) and candle.high >= max(candle.open, candle.close)
            # every print of the bucket went into it
            inside = [p.price for p in prints if bucket_start(p.ts, interval) == candle.open_time]
            assert candle.high == max(inside) and candle.low == min(inside)
    # the default start prices: BTC near 65 000, ETH near 3 400
    assert Decimal("60000") < IndexPrint.objects.filter(underlying="BTC").first().price < Decimal("70000")
    assert Decimal("3000") < IndexPrint.objects.filter(underlying="ETH").first().price < Decimal("3800")

    # The first tick listed the instruments at the index prices.
    assert set(Instrument.objects.filter(kind="spot").values_list("symbol", flat=True)) == {"BTC-USDT", "ETH-USDT"}
    for underlying in SPOT:
        strikes = Instrument.objects.filter(kind="option", base=underlying, active=True).values_list(
            "strike", flat=True
        )
        price = IndexPrint.objects.filter(underlying=underlying).first().price
        assert strikes and min(strikes) < price < max(strikes)


@pytest.mark.django_db
def test_a_tick_after_losing_the_lease_raises_and_writes_nothing(no_exchanges):
    holder = f"test-{uuid.uuid4().hex[:6]}"
    epoch = lease_acquire(name=LEASE, holder=holder, ttl=30)
    runner = FeedRunner(holder=holder)
    runner.on_lead(epoch)
    runner.tick(epoch)
    runner.tick(epoch)

    def snapshot():
        return (
            sorted(IndexPrint.objects.values_list("underlying", "ts", "price")),
            sorted(Candle.objects.values_list("symbol", "interval", "open_time", "open", "high", "low", "close")),
            Instrument.objects.count(),
        )

    before = snapshot()
    assert lease_release(name=LEASE, holder=holder, epoch=epoch)
    assert lease_acquire(name=LEASE, holder="someone-else", ttl=30) == epoch + 1
    time.sleep(0.02)  # the next tick falls on a later instant (and maybe a new minute)
    with pytest.raises(LeaseLost):
        runner.tick(epoch)
    assert snapshot() == before
    # Nor can it write under the new epoch: it is not the holder.
    with pytest.raises(LeaseLost):
        runner.tick(epoch + 1)
    assert snapshot() == before


@pytest.mark.django_db
def test_a_new_leader_continues_from_the_stored_market(no_exchanges):
    IndexPrint.objects.create(underlying="BTC", ts=datetime.now(UTC), price=Decimal("80000.00"), sources={})
    IndexPrint.objects.create(underlying="ETH", ts=datetime.now(UTC), price=Decimal("2000.00"), sources={})
    holder = f"test-{uuid.uuid4().hex[:6]}"
    epoch = lease_acquire(name=LEASE, holder=holder, ttl=30)
    runner = FeedRunner(holder=holder)
    runner.on_lead(epoch)
    runner.tick(epoch)
    btc = IndexPrint.objects.filter(underlying="BTC").order_by("-ts").first()
    eth = IndexPrint.objects.filter(underlying="ETH").order_by("-ts").first()
    assert abs(btc.price / Decimal("80000") - 1) < Decimal("0.005")
    assert abs(eth.price / Decimal("2000") - 1) < Decimal("0.005")


# --- real processes ---------------------------------------------------------------------------


class FeedProcess:
    """``manage.py run_feed`` as a child process; stdout lines are collected by a thread."""

    def __init__(self, label: str, env: dict, log_dir: Path):
        self.label = label
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue = queue.Queue()
        self.stderr_path = log_dir / f"{label}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_feed", "--ttl", str(TTL)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            item = (time.monotonic(), line.rstrip("\n"))
            self.lines.append(item)
            self._queue.put(item)

    def leader_lines(self, after: float = 0.0) -> list[str]:
        return [line for at, line in list(self.lines) if at >= after and line.startswith("LEADER")]

    def wait_for(self, pattern: str, timeout: float, after: float = 0.0) -> tuple[float, re.Match]:
        regex = re.compile(pattern)
        for at, line in list(self.lines):
            if at >= after and (match := regex.search(line)):
                return at, match
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if at >= after and (match := regex.search(line)):
                return at, match
        raise AssertionError(f"{self.label}: no line matching {pattern!r} within {timeout}s\n{self.report()}")

    def report(self) -> str:
        err = self.stderr_path.read_text(errors="replace")[-3000:] if self.stderr_path.exists() else ""
        out = "\n".join(f"[{at - self.started:6.2f}s] {line}" for at, line in list(self.lines))
        return (
            f"--- {self.label} (pid {self.proc.pid}, exit {self.proc.poll()}) stdout:\n{out}\n--- stderr (tail):\n{err}"
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        try:
            self.proc.wait(5)
        finally:
            self._stderr.close()
            self._reader.join(2)


def feed_env() -> dict:
    """The children run on this test's database (the pytest test database) and Redis."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "LOG_JSON": "0",
        "FEED_INTERVAL_SECONDS": "0.2",
    }
    env["DATABASE_URL"] = test_database_url()
    if django_settings.REDIS_URL:
        env["REDIS_URL"] = django_settings.REDIS_URL
    env.pop("FEED_CCXT_EXCHANGES", None)  # simulated exchanges only: no network
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def prints_since(ts: datetime | None = None) -> list[tuple[str, datetime, Decimal]]:
    qs = IndexPrint.objects.filter(stale=False)
    if ts is not None:
        qs = qs.filter(ts__gt=ts)
    return list(qs.order_by("ts").values_list("underlying", "ts", "price"))


def wait_until(predicate, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.05)


class Stalled(Exception):
    """A leader stepped down before anything was killed: on a busy shared machine, a process
    or a commit paused for longer than the 1.5 s TTL (the renew came too late, or the fence
    found the lease expired). A correct handover, but not the quiet start this test checks."""


def start_leader_and_standby(env: dict, tmp_path: Path, feeds: list, attempt: int):
    """Start two feeds; return both once one leads, the other stands by and index prints
    accumulate. The second starts once the first is past its
    cold first ticks, so the two do not compete for the CPU right then."""
    a = FeedProcess(f"feed-a{attempt}", env, tmp_path)
    feeds.append(a)
    b = None
    deadline = time.monotonic() + 30
    while b is None:
        assert time.monotonic() < deadline, "the first feed did not get going\n" + a.report()
        if a.leader_lines() and len(prints_since()) >= 2 * 3:
            b = FeedProcess(f"feed-b{attempt}", env, tmp_path)
            feeds.append(b)
        time.sleep(0.05)
    b.wait_for(r"^STANDBY role=feed", timeout=30)
    before = len(prints_since())
    wait_until(lambda: len(prints_since()) >= before + 2 * 5, 10, lambda: "too few prints\n" + a.report() + b.report())
    time.sleep(0.5)
    if any("STEPPED DOWN" in line for feed in (a, b) for _, line in list(feed.lines)):
        raise Stalled(a.report() + "\n" + b.report())
    return a, b


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, available_apps=["trading", "marketdata"])
def test_two_feeds_one_leads_and_a_kill_9_hands_over(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("stack mode: the feed processes share the PostgreSQL test database")
    env = feed_env()
    # List the instruments first, as any deployment past its first minute has them: the
    # first leader's first tick then does not insert ~1,300 series inside a 1.5 s lease
    # (cold, that takes about as long as the TTL).
    instruments_sync(index_prices={name: params.start for name, params in DEFAULT_UNDERLYINGS.items()})
    feeds: list[FeedProcess] = []

    def reports() -> str:
        return "\n".join(feed.report() for feed in feeds)

    try:
        try:
            a, b = start_leader_and_standby(env, tmp_path, feeds, 1)
        except Stalled as stalled:
            # The lease rightly moved after a stall; start over once, on a fresh pair (a
            # real fault would show again).
            print(f"\nthe machine stalled longer than the TTL; starting over\n{stalled}")
            for feed in feeds:
                feed.kill()
            feeds.clear()
            a, b = start_leader_and_standby(env, tmp_path, feeds, 2)

        # Exactly one of them leads.
        leaders = [feed for feed in (a, b) if feed.leader_lines()]
        assert len(leaders) == 1, reports()
        leader = leaders[0]
        standby = b if leader is a else a
        assert len(leader.leader_lines()) == 1 and standby.leader_lines() == [], reports()
        for feed in (a, b):
            assert not any("STEPPED DOWN" in line for _, line in list(feed.lines)), reports()
        match = re.search(r"epoch=(\d+) holder=(\S+)", leader.leader_lines()[0])
        epoch, holder = int(match.group(1)), match.group(2)
        assert Lease.objects.filter(name="feed", holder=holder, epoch=epoch).exists()
        assert {u for u, _, _ in prints_since()} == {"BTC", "ETH"}
        assert Candle.objects.filter(symbol="BTC-USDT", interval="1m").exists()

        # kill -9 the leader: the standby takes over with the next epoch within the TTL or so.
        killed_wall = datetime.now(UTC)
        killed_at = time.monotonic()
        os.kill(leader.proc.pid, signal.SIGKILL)
        leader.proc.wait(5)
        last_old = {
            u: IndexPrint.objects.filter(underlying=u, stale=False).order_by("-ts").values_list("ts", "price").first()
            for u in SPOT
        }
        at, match = standby.wait_for(r"^LEADER role=feed epoch=(\d+) holder=(\S+)", timeout=TTL + 3, after=killed_at)
        took = at - killed_at
        new_epoch, new_holder = int(match.group(1)), match.group(2)
        assert new_epoch == epoch + 1 and new_holder != holder
        assert took < 2.5, f"takeover took {took:.2f}s\n{reports()}"

        # The prints continue, written by the new leader, from where the old one left off.
        wait_until(
            lambda: len(prints_since(killed_wall)) >= 2 * 5, 5, lambda: "no prints after the takeover\n" + reports()
        )
        lease = Lease.objects.get(name="feed")
        # (a stall after the takeover may have made it re-acquire: the epoch then moved on)
        assert lease.holder == new_holder and lease.epoch >= new_epoch, (lease.holder, lease.epoch, reports())
        for underlying in SPOT:
            old_ts, old_price = last_old[underlying]
            new = [(ts, price) for u, ts, price in prints_since(killed_wall) if u == underlying]
            assert new and new[0][0] > old_ts
            assert abs(new[0][1] / old_price - 1) < Decimal("0.03"), (underlying, old_price, new[0])
            # one continuous path: no step between consecutive new prints either
            assert all(abs(b / a - 1) < Decimal("0.03") for (_, a), (_, b) in itertools.pairwise(new))
        assert standby.proc.poll() is None, reports()
        for feed in (a, b):
            assert not any("DATABASE ERROR" in line for _, line in list(feed.lines)), reports()
            assert "Traceback" not in feed.stderr_path.read_text(errors="replace"), reports()
        print(f"feed takeover after kill -9: {took:.2f}s (ttl {TTL}s)")
    finally:
        for feed in feeds:
            feed.kill()
