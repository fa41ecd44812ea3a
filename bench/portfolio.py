"""``GET /api/v1/portfolio`` for a trader with 10,000 fills, in process (URL router, DRF view,
selectors, serializer; the trader signed in), side by side:

* **product**: the replayed book cached per trader and method, checked against the
  trader's ledger counters on every request (nothing new: the cached book as it is);
* **after a fill**: the same, with one new fill of the trader before each timed request (not
  timed itself), so every request books what is new into the cached book;
* **recompute**: the cache off (``PORTFOLIO_BOOK_CACHE = False``): every request replays the
  whole history from the ledger.

The trader's history is made through the real order entry (``spot_order_place``) and the
real engine runner: a counterparty rests a bid and an ask that move in a random walk, and the
trader sends small IOC buys and sells against them, one fill each, plus deposits and an
option bought at the counter. The prepared database is kept (``--fresh`` rebuilds it).
Variants alternate round by round; every request is timed with perf_counter_ns. Figures:
p50 and p99 in milliseconds (median over rounds), the ratio recompute / product, the goal
(p50 < 50 ms) and the load average.

    .venv/bin/python bench/portfolio.py [--fills 10000] [--requests 200] [--rounds 3] [--fresh]
                                        [--database-url URL] [--redis-url URL]

Needs PostgreSQL and Redis; uses a dedicated database (default trading_bench_portfolio),
created and migrated if missing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/trading_bench_portfolio"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
GOAL_P50_MS = 50.0
INDEX = {"BTC": Decimal("65000.12"), "ETH": Decimal("3400.55")}
TRADER = "bench-portfolio@example.test"
COUNTERPARTY = "bench-portfolio-maker@example.test"
SYMBOL = "BTC-USDT"


def _setup(args):
    from bench.common import django_on

    django_on(args.database_url, args.redis_url, fresh=args.fresh)
    from django.conf import settings

    # The bench's two traders trade far faster than any limit allows a person to.
    settings.RISK_EXEMPT_EMAILS = [*settings.RISK_EXEMPT_EMAILS, TRADER, COUNTERPARTY]
    settings.INDEX_MAX_AGE_SECONDS = 24 * 3600


def _print_index():
    from django.utils import timezone

    from marketdata.models import IndexPrint

    for underlying, price in INDEX.items():
        IndexPrint.objects.create(underlying=underlying, ts=timezone.now(), price=price, stale=False, sources={})


class Market:
    """The engine runner of BTC-USDT in this process, holding its lease, and the two traders."""

    def __init__(self):
        from accounts.models import KycProfile, KycStatus, User
        from ledger.services import deposit_credit
        from orders.spot.runner import EngineRunner, lease_name
        from trading.leases import lease_acquire

        self.trader, created = User.objects.get_or_create(email=TRADER)
        self.maker, _ = User.objects.get_or_create(email=COUNTERPARTY)
        if created:
            for user, funds in ((self.trader, ("1000000", "20")), (self.maker, ("100000000", "2000"))):
                KycProfile.objects.update_or_create(user=user, defaults={"status": KycStatus.APPROVED})
                deposit_credit(user=user, asset="USDT", amount=Decimal(funds[0]), txid=f"bench-pf-{user.pk}-usdt")
                deposit_credit(user=user, asset="BTC", amount=Decimal(funds[1]), txid=f"bench-pf-{user.pk}-btc")
        self.runner = EngineRunner(SYMBOL)
        self.runner.holder = "bench-portfolio"
        self.lease = lambda: lease_acquire(name=lease_name(SYMBOL), holder=self.runner.holder, ttl=120)
        self.epoch = None
        for _ in range(100):
            self.epoch = self.lease()
            if self.epoch is not None:
                break
            time.sleep(1)
        assert self.epoch is not None, "another engine runner holds the BTC-USDT lease of this database"
        self.runner.on_lead(self.epoch)
        self.rnd = random.Random(7)
        self.mid = Decimal("65000")
        self.quotes: list[int] = []

    def close(self) -> None:
        from orders.spot.runner import lease_name
        from trading.leases import lease_release

        lease_release(name=lease_name(SYMBOL), holder=self.runner.holder, epoch=self.epoch)

    def place(self, user, **data):
        from orders.spot.services import order_request, spot_order_place

        order, _ = spot_order_place(user=user, request=order_request(symbol=SYMBOL, **data))
        return order

    def run(self) -> None:
        assert self.lease() == self.epoch, "the BTC-USDT lease was lost"
        while self.runner.work(self.epoch):
            pass

    def requote(self) -> None:
        """The counterparty's bid and ask, moved a step of the random walk."""
        from orders.spot.services import spot_order_cancel

        for order_id in self.quotes:
            spot_order_cancel(user=self.maker, order_id=order_id, wait=0)
        self.mid += Decimal(self.rnd.randint(-200, 200))
        bid = self.place(self.maker, side="buy", type="limit", price=str(self.mid - 5), quantity="5")
        ask = self.place(self.maker, side="sell", type="limit", price=str(self.mid + 5), quantity="5")
        self.quotes = [bid.pk, ask.pk]
        self.run()

    def fill(self) -> None:
        """One trader order, filled at once against the counterparty's quote."""
        side = self.rnd.choice(["buy", "sell"])
        price = self.mid + 5 if side == "buy" else self.mid - 5
        quantity = f"{Decimal(self.rnd.randint(10, 300)) / 10000:f}"
        self.place(self.trader, side=side, type="limit", time_in_force="IOC", price=str(price), quantity=quantity)

    def fills(self) -> int:
        from django.db.models import Q

        from orders.models import SpotTrade

        return SpotTrade.objects.filter(Q(taker_user=self.trader) | Q(maker_user=self.trader)).count()


def _prepare(market: Market, fills: int) -> None:
    from bench.common import log

    have = market.fills()
    if have >= fills:
        log(f"trader {TRADER}: {have} fills already in the database")
        return
    log(f"==> making {fills - have} fills through order entry and the engine runner")
    started = time.monotonic()
    while have < fills:
        market.requote()
        batch = min(100, fills - have)
        for _ in range(batch):
            market.fill()
        market.run()
        have = market.fills()
        if have % 1000 < batch:
            log(f"    {have} fills ({time.monotonic() - started:.0f} s)")
    _option(market)


def _option(market: Market) -> None:
    from django.utils import timezone

    from marketdata.models import Instrument, InstrumentKind
    from marketdata.services import instruments_sync
    from orders.options.services import options_order_place, options_quote

    instruments_sync(index_prices=INDEX)
    series = (
        Instrument.objects.filter(kind=InstrumentKind.OPTION, base="BTC", option_type="C", active=True)
        .filter(expiry__gt=timezone.now() + timedelta(days=7))
        .order_by("expiry", "strike")
        .first()
    )
    quote = options_quote(user=market.trader, series=series.symbol, side="buy", contracts="0.5")
    options_order_place(user=market.trader, quote_id=quote.id)


def _check(client, market: Market) -> dict:
    """The answer reconciles to the ledger (the bench measures a correct answer)."""
    from ledger.selectors import balances_for

    body = client.get("/api/v1/portfolio", secure=True).json()
    totals = {b.asset: b.total for b in balances_for(user=market.trader)}
    for line in body["assets"]:
        assert Decimal(line["quantity"]) == totals[line["asset"]], line
    return body


def _time(client, n: int, before=None) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        if before is not None:
            before()
        start = clock()
        response = client.get("/api/v1/portfolio", secure=True)
        samples.append(clock() - start)
        assert response.status_code == 200, response.content[:300]
    return samples


def _pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fills", type=int, default=10_000, help="the trader's fills")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per variant and round")
    parser.add_argument("--recompute-requests", type=int, default=20, help="timed requests of the recompute variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the prepared database")
    parser.add_argument("--database-url", default=os.environ.get("PORTFOLIO_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args()
    _setup(args)

    from marketdata.services import instruments_sync

    _print_index()
    instruments_sync(index_prices=INDEX)
    market = Market()
    try:
        return _measure(args, market)
    finally:
        market.close()


def _measure(args, market: Market) -> int:
    from django.conf import settings
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from bench.common import load, log, machine_lines

    _prepare(market, args.fills)
    market.requote()
    # as a browser on the stack would come: to an allowed host, over HTTPS
    client = APIClient(SERVER_NAME="localhost")
    client.force_authenticate(market.trader)

    def fill_one():
        market.fill()
        market.run()

    for line in machine_lines():
        log(line)
    log(f"trader: {market.fills()} fills")
    log(f"load avg before start: {load()}")
    log(
        f"{args.requests} requests per round (recompute: {args.recompute_requests}) x {args.rounds} rounds, "
        "variants alternating"
    )
    cache.clear()
    body = _check(client, market)
    log(f"portfolio: total {body['total_usdt']} USDT, {len(body['options']['positions'])} option position(s)")
    variants = {
        "product": lambda: _time(client, args.requests),
        "after a fill": lambda: _time(client, args.requests, before=fill_one),
        "recompute": lambda: _time(client, args.recompute_requests),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for round_no in range(1, args.rounds + 1):
        for name, run in variants.items():
            _print_index()
            settings.PORTFOLIO_BOOK_CACHE = name != "recompute"
            _time(client, 3)  # warm: the cached book up to date, connections, code paths
            samples = run()
            p50, p99 = _pct(samples, 0.5), _pct(samples, 0.99)
            results[name].append((p50, p99))
            log(f"round {round_no} {name:13s} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms   load {load()}")
    settings.PORTFOLIO_BOOK_CACHE = True
    _check(client, market)

    log("")
    log(f"{'variant':13s} {'p50':>9s} {'p99':>9s}")
    medians = {}
    for name, rows in results.items():
        medians[name] = (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
        log(f"{name:13s} {medians[name][0]:7.2f}ms {medians[name][1]:7.2f}ms")
    product, recompute = medians["product"][0], medians["recompute"][0]
    log("")
    log(
        f"goal: GET /api/v1/portfolio p50 < {GOAL_P50_MS:.0f} ms for a trader with {market.fills()} fills: "
        f"p50 {product:.2f} ms ({'met' if product < GOAL_P50_MS else 'NOT met'}); after a new fill "
        f"p50 {medians['after a fill'][0]:.2f} ms ({'met' if medians['after a fill'][0] < GOAL_P50_MS else 'NOT met'})"
    )
    log(f"ratio recompute / product (p50): {recompute / product:.1f}x")
    log(f"load avg at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
