"""The engine runner as a real process (``manage.py run_engine``) killed with ``kill -9``
while orders stream in through ``spot_order_place``: a standby takes over, restarted runners
rebuild from the database, and at the end no order is lost or matched twice and every hold
matches its order.

The runners are child processes on pytest's database, so the test runs with
``transaction=True``: they only see what this process has committed."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Sum

from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from orders.models import FINAL_STATUSES, LIVE_STATUSES, SpotOrder, SpotStatus, SpotTrade
from orders.spot.runner import lease_name
from orders.spot.services import order_request, spot_order_cancel, spot_order_place
from tests.orders.conftest import INDEX, print_index
from tests.processes import ROOT, Child, test_database_url
from trading.errors import Conflict
from trading.models import Lease

from .conftest import funded_trader

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

D = Decimal
SYMBOL = "BTC-USDT"
MID = D("65000")
ORDERS = 2100  # stream items: orders and cancels
TRADERS = 24
THREADS = 3
TTL = 2.0  # the runners' lease: a dead leader's lease lapses after this


class Runners:
    """``run_engine`` processes, each in its own session so ``kill -9`` is a real crash."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "DEBUG": "0",
            "HTTPS": "0",
            "PYTHONUNBUFFERED": "1",
            "ENGINE_POLL_SECONDS": "0.05",
        }
        self.children: list[Child] = []
        self.kills = 0

    def start(self, name: str) -> Child:
        child = Child(
            name,
            [sys.executable, "manage.py", "run_engine", "--symbol", SYMBOL, "--ttl", str(TTL)],
            self.env,
            self.log_dir,
        ).start()
        self.children.append(child)
        return child

    def live(self) -> list[Child]:
        return [child for child in self.children if child.alive]

    def leader(self, timeout: float = 15.0) -> Child:
        """The running child that holds the lease now (waits for a takeover in progress)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lease = Lease.objects.filter(name=lease_name(SYMBOL)).values("holder", "expires_at").first()
            if lease and lease["holder"]:
                pid = int(lease["holder"].split(":")[1])
                for child in self.live():
                    if child.proc.pid == pid and any("LEADER" in line for line in child.lines):
                        return child
            time.sleep(0.05)
        logs = "\n".join(f"--- {c.name}\n{''.join(c.lines[-20:])}" for c in self.children)
        raise AssertionError(f"no live runner took the lease within {timeout}s\n{logs}")

    def kill_leader(self) -> Child:
        victim = self.leader()
        victim.kill9()
        self.kills += 1
        return victim

    def shutdown(self) -> None:
        for child in self.children:
            child.stop()


@pytest.fixture
def runners(tmp_path, markets):
    group = Runners(tmp_path)
    try:
        yield group
    finally:
        group.shutdown()
        connection.close()


def _quantity(rng) -> str:
    return str(D(rng.randint(20, 2000)) / 100000)  # 0.0002 - 0.02 BTC: 13 - 1,300 USDT


def _order(rng) -> dict:
    """A realistic mix: resting limits on both sides of the mid, crossing GTC limits, IOC,
    FOK, post-only, market orders by quantity and (buys) by amount."""
    side = rng.choice(("buy", "sell"))
    sign = 1 if side == "buy" else -1
    r = rng.random()
    if r < 0.62:
        away = D(rng.randint(1, 400)) / 2
        return {"side": side, "type": "limit", "price": str(MID - sign * away), "quantity": _quantity(rng)}
    if r < 0.64:
        away = D(rng.randint(0, 20)) / 2
        return {
            "side": side,
            "type": "limit",
            "price": str(MID - sign * away),
            "quantity": _quantity(rng),
            "post_only": True,
        }
    through = D(rng.randint(0, 300)) / 2
    crossing = {"side": side, "type": "limit", "price": str(MID + sign * through), "quantity": _quantity(rng)}
    if r < 0.78:
        return crossing
    if r < 0.88:
        return {**crossing, "time_in_force": "IOC"}
    if r < 0.90:
        return {**crossing, "time_in_force": "FOK"}
    if side == "buy" and r < 0.94:
        return {"side": "buy", "type": "market", "quote_quantity": str(rng.randint(20, 1000))}
    return {"side": side, "type": "market", "quantity": _quantity(rng)}


def _wait_drained(timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        waiting = SpotOrder.objects.filter(status=SpotStatus.NEW).count()
        cancels = SpotOrder.objects.filter(status__in=LIVE_STATUSES, cancel_requested_at__isnull=False).count()
        if not waiting and not cancels:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"after {timeout}s still {waiting} new orders and {cancels} cancel requests pending")


class Stream:
    """Order entry from several threads (each its own connection and traders), as web
    processes would place them: ``spot_order_place`` and ``spot_order_cancel``."""

    def __init__(self, traders, threads: int, per_thread: int):
        self.placed: list[int] = []
        self.done = 0
        self.cancels = self.refused_cancels = 0
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(
                target=self._run, args=(traders[i::threads], per_thread, random.Random(1000 + i)), daemon=True
            )
            for i in range(threads)
        ]

    def start(self) -> Stream:
        for thread in self.threads:
            thread.start()
        return self

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def _run(self, traders, n: int, rng: random.Random) -> None:
        resting: dict[int, list[int]] = defaultdict(list)  # user -> ids that may still be live
        try:
            for _ in range(n):
                self.done += 1
                user = rng.choice(traders)
                if rng.random() < 0.15 and resting[user.pk]:
                    order_id = resting[user.pk].pop(rng.randrange(len(resting[user.pk])))
                    try:
                        spot_order_cancel(user=user, order_id=order_id, wait=0)
                        self.cancels += 1
                    except Conflict:
                        self.refused_cancels += 1  # filled or cancelled by the engine already
                    continue
                try:
                    order, replayed = spot_order_place(
                        user=user, request=order_request(**{"symbol": SYMBOL, **_order(rng)})
                    )
                except Conflict as exc:
                    assert exc.code == "max_open_orders", exc
                    continue
                assert not replayed
                self.placed.append(order.pk)
                if order.type == "limit" and order.time_in_force == "GTC":
                    resting[user.pk].append(order.pk)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connection.close()


def test_kill_9_of_the_runner_mid_stream_loses_no_order_and_matches_none_twice(runners):
    traders = [funded_trader(usdt="3000000", btc="100") for _ in range(TRADERS)]
    first = runners.start("a")
    first.wait_for("LEADER", timeout=30)

    took_over_from_standby = False

    def crash(step: int) -> None:
        nonlocal took_over_from_standby
        if step == 0:
            # a standby waits; the leader dies; the standby must take over on its own
            standby = runners.start("b")
            standby.wait_for("STANDBY", timeout=30)
            victim = runners.kill_leader()
            took_over_from_standby = runners.leader() is standby
            runners.start(victim.name + "2")
        elif step in (1, 2):
            # the leader dies with a standby running; it comes back as the new standby
            victim = runners.kill_leader()
            runners.start(f"{victim.name}{step + 2}")
        elif step == 3:
            # both die: one fresh runner rebuilds alone once the dead lease lapses
            runners.kill_leader()
            for child in runners.live():
                child.kill9()
                runners.kills += 1
            runners.start("c")
        else:
            runners.kill_leader()
            runners.start(f"z{step}")

    stream = Stream(traders, THREADS, ORDERS // THREADS).start()
    started = last_index = time.monotonic()
    # crash the leader at these points of the stream, and once more while it drains
    thresholds = [int(ORDERS * f) for f in (0.1, 0.3, 0.5, 0.7, 0.85)]
    step = 0
    while stream.running:
        if time.monotonic() - last_index > 3:  # market orders need a fresh index
            print_index("BTC", INDEX["BTC"])
            last_index = time.monotonic()
        if step < len(thresholds) and stream.done >= thresholds[step]:
            crash(step)
            step += 1
        time.sleep(0.02)
    placing = time.monotonic() - started
    assert not stream.errors, stream.errors
    while step <= len(thresholds):
        crash(step)
        step += 1
    placed, cancels, refused_cancels = stream.placed, stream.cancels, stream.refused_cancels

    drained = _wait_drained(timeout=60)
    for child in runners.live():
        child.stop()

    orders = {row["id"]: row for row in SpotOrder.objects.filter(symbol=SYMBOL).values()}
    # no order lost: every order placed is there, and the engine decided each of them
    assert set(orders) == set(placed) and len(placed) > ORDERS * 0.7
    assert not [o for o in orders.values() if o["status"] == SpotStatus.NEW]
    assert not [o for o in orders.values() if o["status"] in LIVE_STATUSES and o["cancel_requested_at"]]

    # none matched twice: the trades of each order add up to what the order says it filled
    trades = SpotTrade.objects.filter(symbol=SYMBOL)
    assert trades.count() == trades.values("seq").distinct().count() > 100
    fills = defaultdict(lambda: [D(0), D(0)])
    for column in ("maker_order_id", "taker_order_id"):
        for row in trades.values(column).annotate(qty=Sum("quantity"), quote=Sum("quote_amount")):
            fills[row[column]][0] += row["qty"]
            fills[row[column]][1] += row["quote"]
    for order_id, order in orders.items():
        qty, quote = fills.get(order_id, (D(0), D(0)))
        assert (order["filled_quantity"], order["filled_quote"]) == (qty, quote), order
        if order["quantity"] is not None:
            assert order["filled_quantity"] <= order["quantity"], order
            if order["status"] == SpotStatus.FILLED:
                assert order["filled_quantity"] == order["quantity"], order
        else:
            assert order["filled_quote"] <= order["quote_quantity"], order
        if order["status"] == SpotStatus.PARTIALLY_FILLED:
            assert 0 < order["filled_quantity"] < order["quantity"], order

    # every hold matches its order: one open hold per live order, of exactly hold_amount,
    # under its current hold_seq; none for a final order
    open_holds = defaultdict(dict)
    resolved = Transfer.objects.filter(pending=OuterRef("pk"))
    for transfer_id, amount in (
        Transfer.objects.filter(kind=TransferKind.PENDING, reference__startswith="spot_order:")
        .exclude(Exists(resolved))
        .values_list("id", "amount")
    ):
        _, order_id, _, seq = transfer_id.split(":")
        open_holds[int(order_id)][int(seq)] = amount
    held = defaultdict(D)
    for order_id, order in orders.items():
        if order["status"] in FINAL_STATUSES:
            assert order["hold_amount"] == 0 and not open_holds.get(order_id), order
        else:
            expected = {order["hold_seq"]: order["hold_amount"]} if order["hold_amount"] else {}
            assert open_holds.get(order_id, {}) == expected, order
            held[(order["user_id"], order["hold_asset"])] += order["hold_amount"]
    assert set(open_holds) <= set(orders)
    for account in LedgerAccount.objects.filter(kind=AccountKind.USER, user__in=traders):
        assert account.debits_pending == held[(account.user_id, account.asset)], account.code

    audit = subprocess.run(
        [sys.executable, "manage.py", "ledger_audit"],
        cwd=ROOT,
        env=runners.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr

    assert took_over_from_standby
    assert runners.kills >= 7
    epoch = Lease.objects.get(name=lease_name(SYMBOL)).epoch
    assert epoch >= 7  # every crash was followed by a new tenure that rebuilt the book
    statuses = dict(SpotOrder.objects.values_list("status").annotate(n=Count("id")))
    print(
        f"\n{len(placed)} orders + {cancels} cancels ({refused_cancels} refused) placed in {placing:.1f}s; "
        f"{runners.kills} kill -9, lease epoch {epoch}; drained {drained:.1f}s after the last; "
        f"{trades.count()} trades; {statuses}"
    )
