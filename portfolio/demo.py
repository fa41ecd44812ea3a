"""A demo investor for ``manage.py seed_demo`` whose Portfolio page has something to show:
deposits, spot buys and sells over the past week, a call bought and closed, a put still
open, and saved target weights it has drifted from.

The history is made by the platform's own services, each step at its moment in the past:
the clock of this process is moved back (time-machine) for the step, an index print is
written at that moment at the demo candles' price (so the index is live then), the market
maker's user rests a quote there, and the investor's market order meets it on a spot engine
runner working in this process (the one ``run_engine`` runs, on the engine's lease for the
few seconds it takes). So every figure reconciles to the ledger as any trader's does, and
the transfers, fills and option orders carry the dates of the story.

Idempotent: an investor that exists is left as it is. Seeded only before the engines run
(``make run`` seeds before it starts them); with an engine holding its lease, nothing is done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import KycProfile, KycStatus, User
from ledger.services import deposit_credit
from marketdata.models import Candle, CandleSource, IndexPrint, Instrument, InstrumentKind
from marketdata.selectors import index_latest
from orders.models import LIVE_STATUSES, SpotOrder
from orders.options import services as options
from orders.spot.runner import EngineRunner, lease_name
from orders.spot.services import order_request, spot_order_cancel, spot_order_place
from trading.leases import lease_acquire, lease_release

DEMO_INVESTOR = "investor@meridian.test"
SYMBOLS = ("BTC-USDT", "ETH-USDT")
HOLDER = "seed-demo-portfolio"
LEASE_SECONDS = 300
MAKER_SPREAD = Decimal("0.0005")  # the maker rests this far from the index
TARGETS = {"BTC": Decimal("0.4"), "ETH": Decimal("0.2"), "USDT": Decimal("0.4")}


@dataclass(frozen=True)
class Step:
    ago: timedelta  # before the seed
    kind: str  # deposit, buy, sell, option_buy, option_sell
    asset: str  # an asset, or "call"/"put" for options
    amount: str


def _ago(days: int, hour: int, minute: int = 0) -> timedelta:
    """``days`` before today at ``hour:minute`` UTC, as a distance back from now."""
    now = timezone.now()
    then = datetime(now.year, now.month, now.day, hour, minute, tzinfo=UTC) - timedelta(days=days)
    return now - then


def story() -> list[Step]:
    return [
        Step(_ago(6, 9), "deposit", "USDT", "20000"),
        Step(_ago(6, 9, 40), "buy", "BTC", "0.15"),
        Step(_ago(5, 14), "buy", "ETH", "2"),
        Step(_ago(4, 11), "deposit", "BTC", "0.05"),
        Step(_ago(3, 10), "option_buy", "call", "0.1"),
        Step(_ago(3, 16), "sell", "BTC", "0.06"),
        Step(_ago(2, 10), "buy", "BTC", "0.04"),
        Step(_ago(2, 15), "sell", "ETH", "0.8"),
        Step(_ago(1, 12), "option_sell", "call", "0.1"),
        Step(_ago(1, 13), "option_buy", "put", "0.05"),
        Step(_ago(1, 18), "deposit", "USDT", "2500"),
        # the last trade is recent, so the book's last price is close to the live index
        Step(timedelta(minutes=20), "buy", "BTC", "0.01"),
    ]


def seed(out) -> None:
    import time_machine  # the demo's clock only: nothing else in the platform moves time

    if User.objects.filter(email=DEMO_INVESTOR).exists():
        out.write(f"    demo investor: {DEMO_INVESTOR} (already seeded)")
        return
    maker = User.objects.filter(email=settings.MARKET_MAKER_EMAIL).first()
    if maker is None or not Candle.objects.filter(source=CandleSource.INDEX, interval="1m").exists():
        out.write("    demo investor: skipped (no market maker or no price history yet)")
        return
    engines = _lead_engines()
    if engines is None:
        out.write("    demo investor: skipped (a spot engine is running; seed before it starts)")
        return
    try:
        investor = _investor()
        series = {}
        for step in sorted(story(), key=lambda s: -s.ago.total_seconds()):
            moment = timezone.now() - step.ago
            with time_machine.travel(moment, tick=True):
                _print_index(moment)
                _play(step, investor=investor, maker=maker, engines=engines, series=series)
    finally:
        _release(engines)
    from . import services, snapshots

    services.rebalance_targets_save(user=investor, targets=TARGETS, tolerance=Decimal("0.02"))
    snapshots.snapshots_catch_up(backfill=True)  # its past days, beside any written already
    password = os.environ.get("DEMO_PASSWORD", "demo-Trader-2026")
    out.write(f"    demo investor: {DEMO_INVESTOR} / {password}   (a week of history: see /portfolio/)")


# --- the investor and the engines ----------------------------------------------------------------


def _investor() -> User:
    with transaction.atomic():
        investor = User.objects.create(email=DEMO_INVESTOR, first_name="Ines", last_name="Investor")
        investor.set_password(os.environ.get("DEMO_PASSWORD", "demo-Trader-2026"))
        investor.save()
        KycProfile.objects.update_or_create(
            user=investor,
            defaults={"status": KycStatus.APPROVED, "full_name": "Ines Investor", "country": "NL"},
        )
    return investor


def _lead_engines() -> dict[str, tuple[EngineRunner, int]] | None:
    engines = {}
    for symbol in SYMBOLS:
        epoch = lease_acquire(name=lease_name(symbol), holder=HOLDER, ttl=LEASE_SECONDS)
        if epoch is None:
            _release(engines)
            return None
        runner = EngineRunner(symbol)
        runner.holder = HOLDER
        runner.on_lead(epoch)
        engines[symbol] = (runner, epoch)
    return engines


def _release(engines: dict) -> None:
    for symbol, (_, epoch) in engines.items():
        lease_release(name=lease_name(symbol), holder=HOLDER, epoch=epoch)


def _match(engines, symbol: str) -> None:
    runner, epoch = engines[symbol]
    while runner.work(epoch):
        pass


# --- one step -----------------------------------------------------------------------------------


def _candle_price(symbol: str, at: datetime) -> Decimal | None:
    return (
        Candle.objects.filter(symbol=symbol, source=CandleSource.INDEX, interval="1m", open_time__lte=at)
        .order_by("-open_time")
        .values_list("close", flat=True)
        .first()
    )


def _print_index(moment: datetime) -> None:
    """The index at ``moment``: the demo history's price then, so that it is live then."""
    for symbol in SYMBOLS:
        price = _candle_price(symbol, moment)
        if price is not None:
            base = symbol.split("-")[0]
            IndexPrint.objects.create(underlying=base, ts=moment, price=price.quantize(Decimal("0.01")), sources={})


def _play(step: Step, *, investor: User, maker: User, engines, series: dict) -> None:
    if step.kind == "deposit":
        txid = f"demo-investor-{step.asset}-{int(timezone.now().timestamp())}"
        deposit_credit(user=investor, asset=step.asset, amount=Decimal(step.amount), txid=txid)
    elif step.kind in ("buy", "sell"):
        _spot(step, investor=investor, maker=maker, engines=engines)
    elif step.kind == "option_buy":
        instrument = _series("C" if step.asset == "call" else "P", weeks=1 if step.asset == "call" else 4)
        series[step.asset] = instrument.symbol
        _option(investor, instrument.symbol, "buy", step.amount)
    else:
        _option(investor, series[step.asset], "sell", step.amount)


def _spot(step: Step, *, investor: User, maker: User, engines) -> None:
    symbol = f"{step.asset}-USDT"
    instrument = Instrument.objects.get(symbol=symbol)
    index = index_latest(underlying=step.asset).price
    # the maker's side of the trade, a little off the index, then the investor's market order
    away = MAKER_SPREAD if step.kind == "buy" else -MAKER_SPREAD
    tick = instrument.tick_size
    price = (index * (1 + away) / tick).to_integral_value(rounding=ROUND_HALF_EVEN) * tick
    quote, _ = spot_order_place(
        user=maker,
        request=order_request(
            symbol=symbol,
            side="sell" if step.kind == "buy" else "buy",
            type="limit",
            price=f"{price:f}",
            quantity=step.amount,
        ),
    )
    _match(engines, symbol)
    spot_order_place(
        user=investor,
        request=order_request(symbol=symbol, side=step.kind, type="market", quantity=step.amount),
    )
    _match(engines, symbol)
    if SpotOrder.objects.filter(pk=quote.pk, status__in=LIVE_STATUSES).exists():
        spot_order_cancel(user=maker, order_id=quote.pk, wait=0)
        _match(engines, symbol)


def _series(option_type: str, *, weeks: int) -> Instrument:
    """A BTC series about ``weeks`` out with the strike nearest the index."""
    now = timezone.now()
    index = index_latest(underlying="BTC").price
    live = Instrument.objects.filter(
        kind=InstrumentKind.OPTION, base="BTC", option_type=option_type, active=True, expiry__gt=now + timedelta(days=2)
    )
    expiries = sorted(set(live.values_list("expiry", flat=True)))
    wanted = now + timedelta(weeks=weeks)
    expiry = min(expiries, key=lambda e: abs(e - wanted))
    return min(live.filter(expiry=expiry), key=lambda i: abs(i.strike - index))


def _option(user: User, series: str, side: str, contracts: str) -> None:
    quote = options.options_quote(user=user, series=series, side=side, contracts=contracts)
    options.options_order_place(user=user, quote_id=str(quote.pk))
