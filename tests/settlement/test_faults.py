"""Fault tests with real processes: Celery workers, celery beat and relays on the test
database, a private Redis as broker and venue store, and real ``kill -9``."""

from __future__ import annotations

import os
import random
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from ledger.models import AccountKind, LedgerAccount, SystemRole
from settlement.models import Settlement, State
from venues.config import settlement_venue, venue_cache_clear

from .conftest import emit
from .stack import BackOffice

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAST = {
    "SETTLEMENT_IDLE_SECONDS": 2,
    "SETTLEMENT_CLAIM_SECONDS": 4,
    "SETTLEMENT_RECONCILE_EVERY": 1,
    "SETTLEMENT_RECOVER_EVERY": 1,
    "SETTLEMENT_RECONCILE_AFTER_SECONDS": 2,
    "SETTLEMENT_BATCH_SIZE": 50,
    "SETTLEMENT_VENUE_FAULTS": "latency_ms=2,slippage_bps=5,fee_bps=10,timeout_ms=2000",
    "RELAY_POLL_SECONDS": 0.1,
}


@pytest.fixture
def back_office(tmp_path, index_prints, settings):
    office = BackOffice(tmp_path, **FAST).start_redis()
    settings.REDIS_URL = office.env["REDIS_URL"]
    settings.SETTLEMENT_VENUE_KEY_PREFIX = office.venue_prefix
    venue_cache_clear()
    try:
        yield office
    finally:
        office.shutdown()
        venue_cache_clear()


def write_orders(n: int, rate: float, rng: random.Random, done: threading.Event) -> list[str]:
    keys = []

    def run():
        try:
            for _ in range(n):
                kind = rng.choice(["open", "open", "close", "exercise"])
                topic = "options.exercise" if kind == "exercise" else "options.order"
                usdt = f"{rng.randint(50, 5000)}.{rng.randint(0, 999999):06d}"
                message = emit(kind, usdt=usdt, underlying=rng.choice(["BTC", "ETH"]), topic=topic)
                keys.append(message["key"])
                time.sleep(1 / rate)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return keys


def place_orders(n: int, rate: float, rng: random.Random, done: threading.Event) -> list[str]:
    """Option orders through the counter service, as the API places them: traders buy to
    open and sell to close across a few series while a ticker keeps the index fresh."""
    from orders.models import OptionPosition, PositionStatus
    from orders.options.services import options_order_place, options_quote
    from tests.orders.conftest import INDEX, list_series, pick_series, print_index, trader

    list_series()
    series = [pick_series(u, t, offset=o).symbol for u in ("BTC", "ETH") for t in ("C", "P") for o in (-1, 0, 1)]
    traders = [trader() for _ in range(8)]
    keys: list[str] = []

    def run():
        try:
            last_tick = 0.0
            for _ in range(n):
                if time.monotonic() - last_tick > 2:
                    for underlying, price in INDEX.items():
                        print_index(underlying, price)
                    last_tick = time.monotonic()
                user = rng.choice(traders)
                held = list(OptionPosition.objects.filter(user=user, status=PositionStatus.OPEN, contracts__gt=0))
                if held and rng.random() < 0.4:
                    position = rng.choice(held)
                    side, symbol, contracts = "sell", position.series, min(position.contracts, Decimal("0.05"))
                else:
                    side, symbol, contracts = "buy", rng.choice(series), Decimal(rng.randint(1, 10)) / 100
                quote = options_quote(user=user, series=symbol, side=side, contracts=str(contracts))
                order, _ = options_order_place(user=user, quote_id=str(quote.pk))
                keys.append(f"option_order:{order.pk}")
                time.sleep(1 / rate)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return keys


def wait_settled(expected: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        final = Settlement.objects.filter(state__in=[State.SETTLED, State.MANUAL_REVIEW]).count()
        if final >= expected:
            return time.monotonic() - started
        time.sleep(0.2)
    states = list(Settlement.objects.values_list("state", "step").distinct())
    raise AssertionError(f"only {final}/{expected} settlements final after {timeout}s; states {states}")


def system_balance(role: str, asset: str) -> Decimal:
    return sum(
        (
            a.credits_posted - a.debits_posted
            for a in LedgerAccount.objects.filter(kind=AccountKind.SYSTEM, role=role, asset=asset)
        ),
        Decimal(0),
    )


def test_a_thousand_orders_settle_exactly_once_while_workers_are_killed(back_office):
    rng = random.Random(20261122)
    start = {"w1": back_office.worker, "w2": back_office.worker, "v1": back_office.venue_worker}
    workers = {name: spawn(name) for name, spawn in start.items()}
    back_office.beat()
    back_office.relay()
    for worker in workers.values():
        worker.wait_for("ready.", timeout=60)

    written = threading.Event()
    keys = place_orders(1000, rate=200, rng=rng, done=written)
    kills = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and kills < 20:
        time.sleep(rng.uniform(0.5, 2.5))
        name = rng.choice(sorted(workers))  # intake workers and the venue executor alike
        workers[name].kill9()
        kills += 1
        workers[name] = start[name](name)
        if written.is_set() and kills >= 8:
            break
    assert written.wait(60)
    elapsed = wait_settled(1000, timeout=240)

    settlements = Settlement.objects.all()
    assert settlements.count() == 1000 == len(set(keys))
    assert set(settlements.values_list("ref", flat=True)) == set(keys)
    assert not settlements.exclude(state=State.SETTLED).exists()
    # The traders' orders show the back office's outcome.
    from orders.models import OptionOrder

    assert set(OptionOrder.objects.values_list("settlement_state", flat=True)) == {"settled"}
    venue = settlement_venue()
    assert venue.duplicate_client_order_ids() == []
    assert venue.total_placed() == 1000
    # The system wallet and the venue funding account are flat again: every hedge closed.
    for role in (SystemRole.TREASURY, SystemRole.VENUE_FUNDING):
        for asset in ("USDT", "BTC", "ETH"):
            assert system_balance(role, asset) == 0, (role, asset)
    print(f"\n1000 settlements final {elapsed:.1f}s after the last order; {kills} worker kills")


def test_the_standby_relay_takes_over_within_two_seconds_and_skips_nothing(back_office):
    rng = random.Random(7)
    back_office.worker("w1")
    back_office.venue_worker("v1")
    back_office.beat()
    first = back_office.relay("relay-a")
    first.wait_for("LEADER", timeout=30)
    second = back_office.relay("relay-b")
    second.wait_for("STANDBY", timeout=30)

    written = threading.Event()
    keys = write_orders(300, rate=100, rng=rng, done=written)
    time.sleep(1.0)
    first.kill9()
    killed_at = time.monotonic()
    takeover = second.wait_for("LEADER", timeout=10)
    assert time.monotonic() - killed_at < 2.0 + 0.3, f"took {takeover:.2f}s"
    assert written.wait(30)
    wait_settled(300, timeout=60)
    assert set(Settlement.objects.values_list("ref", flat=True)) == set(keys)
    assert not Settlement.objects.exclude(state=State.SETTLED).exists()
    assert settlement_venue().duplicate_client_order_ids() == []


def test_venue_faults_retry_to_completion_and_fatal_ones_wait_in_review(back_office):
    back_office.env["SETTLEMENT_VENUE_FAULTS"] = (
        "timeout=0.20,rate_limit=0.05,ambiguous=0.02,reject=0.01,latency_ms=2,slippage_bps=5,fee_bps=10,timeout_ms=500"
    )
    back_office.env["SETTLEMENT_MAX_ATTEMPTS"] = "30"
    back_office.env["SETTLEMENT_RETRY_MAX_SECONDS"] = "1"
    for name in ("w1", "w2"):
        back_office.worker(name)
    back_office.venue_worker("v1")
    back_office.beat()
    back_office.relay()
    written = threading.Event()
    keys = write_orders(400, rate=200, rng=random.Random(11), done=written)
    assert written.wait(60)
    wait_settled(400, timeout=180)
    settlements = Settlement.objects.all()
    assert set(settlements.values_list("ref", flat=True)) == set(keys)
    review = list(settlements.filter(state=State.MANUAL_REVIEW).values_list("last_error_code", flat=True))
    # Only the fatal refusals wait for staff; every transient fault was retried through.
    assert set(review) <= {"venue_rejected"}
    assert 0 < len(review) < 20
    assert settlements.filter(state=State.SETTLED).count() == 400 - len(review)
    assert settlements.filter(attempts__gt=0).exists() or settlements.filter(errors__transient=True).exists()
    venue = settlement_venue()
    assert venue.duplicate_client_order_ids() == []
    # A refused order executed nothing; every settled one executed exactly once.
    assert venue.total_placed() == 400 - len(review)


def test_a_broker_outage_loses_and_doubles_nothing(back_office):
    outage = float(os.environ.get("BROKER_OUTAGE_SECONDS", "60"))
    for name in ("w1", "w2"):
        back_office.worker(name).wait_for("ready.", timeout=60)
    back_office.venue_worker("v1").wait_for("ready.", timeout=60)
    back_office.beat()
    back_office.relay()
    before = threading.Event()
    keys = write_orders(100, rate=100, rng=random.Random(3), done=before)
    assert before.wait(30)
    wait_settled(100, timeout=60)

    back_office.redis.kill9()
    during = threading.Event()
    later = write_orders(200, rate=max(200 / outage, 4), rng=random.Random(4), done=during)
    time.sleep(outage)
    assert during.wait(outage + 30)
    # The relay's resident intake takes small batches in without the broker, but Redis was
    # the venue's store too: none of them got past the venue swap meanwhile.
    assert Settlement.objects.filter(state=State.SETTLED).count() == 100
    assert set(Settlement.objects.values_list("ref", flat=True)) <= set(keys) | set(later)
    back_office.start_redis()
    back_in = time.monotonic()
    wait_settled(300, timeout=120)
    cleared = time.monotonic() - back_in
    settlements = Settlement.objects.all()
    assert set(settlements.values_list("ref", flat=True)) == set(keys) | set(later)
    assert not settlements.exclude(state=State.SETTLED).exists()
    venue = settlement_venue()
    # Redis was the venue's store too: the restarted one holds only post-outage orders,
    # none of them twice.
    assert venue.duplicate_client_order_ids() == []
    print(f"\nbacklog of 200 cleared {cleared:.1f}s after the broker came back from a {outage:.0f}s outage")
