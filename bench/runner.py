"""Engine runner throughput with PostgreSQL persistence: orders/s through the real
``orders.spot.runner.EngineRunner`` (its own lease, batches of ``ENGINE_BATCH_SIZE``), against the
same runner committing one order per transaction (batch size 1), side by side.

The stream (fixed seed, BTC-USDT around 65,000): N commands, 70% resting limits on both sides
of the mid, 20% cancels of earlier resting orders, 10% marketable (GTC limits through the
mid, IOC limits, market orders by quantity and by quote amount). The orders and their holds
are inserted before the runner starts, so only the runner is timed:

* the first ``--verify`` orders go through the real ``spot_order_place``;
* the rest through a bulk path that builds each order with the product's own parsing and
  hold functions (``order_request``, ``_protect_and_hold``, ``fingerprint``) and the risk
  core's checks on the order (band, value, quantity, with the trader's limits) and writes the same ``SpotOrder`` row, the same hold
  ``Transfer`` (id ``spot:<id>:hold:0``, same payload hash, same accounts) and the same
  account counters, many orders per statement. The benchmark checks that the bulk path
  builds exactly what ``spot_order_place`` wrote for the ``--verify`` orders, and runs
  ``ledger_audit`` after the last round of each variant.
* a cancel is the order's ``cancel_requested_at`` (what ``spot_order_cancel`` writes); the
  runner acts on it once the order is live, i.e. one batch after it took the order.

That prepared database is the template of every round: each round runs on a fresh copy
(``CREATE DATABASE ... TEMPLATE``). Variants alternate round by round:

* **product**: ``EngineRunner(symbol)`` (batch ``--batch``, default ``ENGINE_BATCH_SIZE``)
  until every order is decided and every cancel done;
* **batch1**: the same runner with ``batch=1``: one order (and at most one cancel) per
  transaction, same engine, same writes. It is ~50x slower, so it runs for
  ``--baseline-seconds`` on the same stream and its rate is taken over that window;
* **nofk** (optional diagnostic): product on a copy without the foreign keys of
  ``ledger_transfer`` (checked, deferred, inside COMMIT; trades have none).

Per round: orders/s and commands/s (orders + cancels), batches, orders per batch, and per
batch the time of its parts: ``pre`` (lease fence, new-order and cancel selects), ``feed``
(the engine), ``write`` (rows, trades, ledger legs; ``ledger`` is the ``transfers_execute``
part of it), ``commit``, ``publish`` (Redis fan-out and book snapshot, after the commit); and the CPU
seconds of the runner process and of its PostgreSQL backend (``/proc/<pid>/stat``), as orders
per CPU-second: on a shared machine that figure moves far less with the load than orders/s.
Publishing goes to Redis (``--redis-url``, default db 9), as in the stack.

    .venv/bin/python bench/runner.py [--orders 50000] [--rounds 3] [--batch N] [--fresh]
                                     [--variants product,batch1,nofk] [--synchronous-commit off]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import db_params, load, log, machine_lines, stack_secret  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/trading_bench_runner"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
SYMBOL = "BTC-USDT"
MID = Decimal("65000")
INDEX = Decimal("65000.12")
STEP = Decimal("0.50")  # price grid of the stream (the tick is 0.01)
STREAM_VERSION = 3  # bump when the stream changes: a prepared database is reused only if it matches


# --- database plumbing ----------------------------------------------------------------------------


def _admin(db: dict):
    import psycopg

    return psycopg.connect(
        host=db["host"],
        port=db["port"],
        user=db["user"],
        password=db["password"] or None,
        dbname="postgres",
        autocommit=True,
    )


def _exists(db: dict, name: str) -> bool:
    with _admin(db) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _recreate(db: dict, name: str, template: str | None = None) -> float:
    """Drop and create ``name`` (as a copy of ``template``); seconds taken."""
    started = time.monotonic()
    with _admin(db) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for attempt in range(50):
            try:
                if template:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
                else:
                    conn.execute(f'CREATE DATABASE "{name}"')
                break
            except Exception as exc:  # the template still has a session (autovacuum): retry
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.2)
    return time.monotonic() - started


def _use_database(name: str) -> None:
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


# --- the stream -----------------------------------------------------------------------------------


def _distance(rnd) -> Decimal:
    return STEP * (1 + min(int(rnd.expovariate(1 / 6)), 200))


def _qty(rnd, low: int, high: int) -> str:
    return str(Decimal(rnd.randint(low, high)) / 100000)


def stream(n: int, seed: int) -> list[tuple]:
    """Commands: ("order", user_index, data) or ("cancel", index of an earlier resting order)."""
    rnd = random.Random(seed)
    out: list[tuple] = []
    resting: list[int] = []  # command indices of resting orders not yet chosen for a cancel
    for _ in range(n):
        r = rnd.random()
        user = rnd.randrange(10**9)
        side = "buy" if rnd.random() < 0.5 else "sell"
        sign = 1 if side == "buy" else -1
        if r < 0.7 or (r < 0.9 and not resting):
            price = MID - sign * _distance(rnd)
            resting.append(len(out))
            out.append(
                ("order", user, {"side": side, "type": "limit", "price": str(price), "quantity": _qty(rnd, 50, 5000)})
            )
        elif r < 0.9:
            i = rnd.randrange(len(resting))
            resting[i], resting[-1] = resting[-1], resting[i]
            out.append(("cancel", resting.pop()))
        else:
            kind = rnd.random()
            price = str(MID + sign * STEP * rnd.randint(1, 20))
            qty = _qty(rnd, 500, 10000)
            if kind < 0.5:
                data = {"side": side, "type": "limit", "price": price, "quantity": qty}
            elif kind < 0.8:
                data = {"side": side, "type": "limit", "price": price, "quantity": qty, "time_in_force": "IOC"}
            elif kind < 0.9 or side == "sell":
                data = {"side": side, "type": "market", "quantity": qty}
            else:
                data = {"side": "buy", "type": "market", "quote_quantity": str(rnd.randint(50, 5000))}
            out.append(("order", user, data))
    return out


# --- preparing the template database --------------------------------------------------------------


class BulkOrders:
    """Orders and holds as ``spot_order_place`` writes them, many per statement."""

    def __init__(self):
        from accounts.models import User
        from ledger.models import SystemRole
        from ledger.services import system_account, user_account
        from orders.spot.services import entry as spot
        from risk import core as risk_core
        from risk import services as risk

        self.spot, self.risk, self.risk_core, self.User = spot, risk, risk_core, User
        # one instrument lookup instead of one per order (the parse reads it by symbol)
        spot.spot_instrument = lru_cache(maxsize=None)(spot.spot_instrument)
        self.user_account = lru_cache(maxsize=None)(lambda user_id, asset: user_account(user_id=user_id, asset=asset))
        self.clearing = lru_cache(maxsize=None)(
            lambda asset, bucket: system_account(role=SystemRole.SPOT_CLEARING, asset=asset, key=self._key_for(bucket))
        )
        self._bucket_keys: dict[int, str] = {}

    def _key_for(self, bucket: int) -> str:
        return self._bucket_keys[bucket]

    def _clearing_for(self, asset: str, order_id: int):
        from ledger.services import system_bucket

        key = str(order_id)
        bucket = system_bucket(key)
        self._bucket_keys.setdefault(bucket, key)
        return self.clearing(asset, bucket)

    def build(self, user_id: int, data: dict):
        """(order row without id, hold asset, hold amount) with the product's own checks."""
        from orders.models import SpotOrder

        spot = self.spot
        request = spot.order_request(**{"symbol": SYMBOL, **data})
        protect, hold, notional = spot._protect_and_hold(request, INDEX)
        facts = spot.risk_facts(request, notional)
        limits = self.risk.spot_limits(self.User(pk=user_id), request.instrument)
        refusal = self.risk_core.band_refusal(facts, limits, INDEX) or self.risk_core.size_refusal(facts, limits)
        if refusal is not None:
            raise SystemExit(f"bench order refused by the risk checks: {refusal.message}")
        hold_asset = "USDT" if request.side == "buy" else request.instrument.base
        order = SpotOrder(
            user_id=user_id,
            symbol=request.instrument.symbol,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            post_only=request.post_only,
            quantity=request.quantity,
            quote_quantity=request.quote_quantity,
            price=request.price,
            protect_price=protect,
            stop_price=request.stop_price,
            trail_amount=request.trail_amount,
            trail_percent=request.trail_percent,
            trail_reference=None,
            display_quantity=request.display_quantity,
            route=request.route,
            hold_asset=hold_asset,
            hold_amount=hold,
            client_order_id=request.client_order_id,
            request_hash=request.fingerprint(),
            parent=None,
        )
        return order

    def hold_transfer(self, order):
        from ledger.models import Transfer, TransferKind
        from ledger.services import TransferRequest
        from ledger.services.transfers import _payload_hash
        from trading.money import parse_amount

        request = TransferRequest(
            id=order.hold_id(),
            kind=TransferKind.PENDING,
            code="spot_hold",
            asset=order.hold_asset,
            amount=order.hold_amount,
            debit=self.user_account(order.user_id, order.hold_asset),
            credit=self._clearing_for(order.hold_asset, order.pk),
            reference=f"spot_order:{order.pk}",
        )
        amount = parse_amount(request.asset, request.amount)
        return Transfer(
            id=request.id,
            kind=request.kind,
            asset=request.asset,
            amount=amount,
            debit_account_id=request.debit.pk,
            credit_account_id=request.credit.pk,
            code=request.code,
            reference=request.reference,
            pending_id=None,
            linked_to="",
            payload_hash=_payload_hash(request, amount),
        )

    def insert(self, orders: list) -> None:
        from collections import defaultdict

        from django.db import connection, transaction

        from ledger.models import LedgerAccount, Transfer
        from orders.models import SpotOrder

        with transaction.atomic(durable=True):
            SpotOrder.objects.bulk_create(orders, batch_size=2000)
            transfers = [self.hold_transfer(order) for order in orders]
            Transfer.objects.bulk_create(transfers, batch_size=2000)
            pending = defaultdict(lambda: [Decimal(0), Decimal(0)])  # account -> [debits, credits] pending
            for transfer in transfers:
                pending[transfer.debit_account_id][0] += transfer.amount
                pending[transfer.credit_account_id][1] += transfer.amount
            with connection.cursor() as cursor:
                for account_id in sorted(pending):
                    debits, credits = pending[account_id]
                    cursor.execute(
                        f"UPDATE {LedgerAccount._meta.db_table} SET debits_pending = debits_pending + %s, "
                        "credits_pending = credits_pending + %s WHERE id = %s "
                        "AND (kind <> 'user' OR credits_posted - debits_posted - debits_pending - %s >= 0)",
                        [debits, credits, account_id, debits],
                    )
                    if cursor.rowcount != 1:
                        raise RuntimeError(f"account {account_id}: insufficient funds for the bulk holds")


_COMPARED = (
    "user_id",
    "symbol",
    "side",
    "type",
    "time_in_force",
    "post_only",
    "quantity",
    "quote_quantity",
    "price",
    "protect_price",
    "stop_price",
    "trail_amount",
    "trail_percent",
    "trail_reference",
    "display_quantity",
    "route",
    "hold_asset",
    "hold_amount",
    "hold_seq",
    "client_order_id",
    "request_hash",
    "parent_id",
    "status",
    "filled_quantity",
    "filled_quote",
    "fees_paid",
    "queue_seq",
    "cancel_requested_at",
)
_TRANSFER_COMPARED = (
    "id",
    "kind",
    "asset",
    "amount",
    "debit_account_id",
    "credit_account_id",
    "code",
    "reference",
    "pending_id",
    "linked_to",
    "payload_hash",
)


def prepare(args, db: dict) -> dict:
    """Build the template database (or reuse it when it holds this stream already)."""
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from ledger.models import Transfer
    from ledger.services import deposit_credit
    from marketdata.models import IndexPrint
    from marketdata.services import instruments_sync
    from orders.models import SpotOrder
    from orders.spot import services as spot
    from trading.models import SingletonCheckpoint

    marker = {
        "version": STREAM_VERSION,
        "orders": args.orders,
        "users": args.users,
        "seed": args.seed,
        "verify": args.verify,
    }
    if not args.fresh and _exists(db, db["name"]):
        _use_database(db["name"])
        try:
            found = SingletonCheckpoint.objects.filter(name="bench_runner").values_list("value", flat=True).first()
        except Exception:
            found = None
        if found and {k: found.get(k) for k in marker} == marker:
            log(
                f"==> reusing the prepared database {db['name']} ({found['placed']} orders, {found['cancels']} cancels)"
            )
            connection.close()
            return found
    log(f"==> preparing {db['name']}: migrate, {args.users} funded traders, {args.orders} commands")
    connection.close()
    _recreate(db, db["name"])
    _use_database(db["name"])
    call_command("migrate", interactive=False, verbosity=0)
    started = time.monotonic()
    for underlying, price in (("BTC", INDEX), ("ETH", Decimal("3400.55"))):
        IndexPrint.objects.create(underlying=underlying, ts=timezone.now(), price=price, stale=False, sources={})
    instruments_sync(index_prices={"BTC": INDEX, "ETH": Decimal("3400.55")})
    users = [User.objects.create_user(email=f"bench-runner-{i}@example.test") for i in range(args.users)]
    for user in users:
        deposit_credit(user=user, asset="USDT", amount=Decimal("50000000"), txid=f"bench-runner-usdt-{user.pk}")
        deposit_credit(user=user, asset="BTC", amount=Decimal("1000"), txid=f"bench-runner-btc-{user.pk}")
    log(f"    traders funded in {time.monotonic() - started:.1f} s")
    # they hold 1,000 BTC each, more than a retail account may: this database lifts the
    # position limit for everyone (an override row, as staff would), so every check still runs
    from risk.models import RiskLimit

    RiskLimit.objects.update_or_create(
        name="max_position", target="BTC", tier=None, user=None, defaults={"value": Decimal(10) ** 9}
    )

    commands = stream(args.orders, args.seed)
    bulk = BulkOrders()
    order_ids: dict[int, int] = {}  # command index -> order id
    cancels = []
    verified = 0
    started = time.monotonic()
    pending_rows: list[tuple[int, object]] = []

    def flush():
        if pending_rows:
            bulk.insert([order for _, order in pending_rows])
            for index, order in pending_rows:
                order_ids[index] = order.pk
            pending_rows.clear()

    fresh_at = 0.0
    for index, command in enumerate(commands):
        if index < 3 * args.verify and time.monotonic() - fresh_at > 5:  # market orders need a fresh index
            IndexPrint.objects.create(underlying="BTC", ts=timezone.now(), price=INDEX, stale=False, sources={})
            fresh_at = time.monotonic()
        if command[0] == "cancel":
            cancels.append(command[1])
            continue
        _, user_pick, data = command
        user = users[user_pick % len(users)]
        if len(order_ids) + len(pending_rows) < args.verify:
            order, _ = spot.spot_order_place(user=user, request=spot.order_request(**{"symbol": SYMBOL, **data}))
            order_ids[index] = order.pk
            # the bulk path must build exactly this order and hold
            stored = SpotOrder.objects.get(pk=order.pk)
            built = bulk.build(user.pk, data)
            built.pk = order.pk
            for field in _COMPARED:
                if getattr(built, field) != getattr(stored, field):
                    raise SystemExit(
                        f"bulk path differs from spot_order_place on {field}: {getattr(built, field)!r} "
                        f"!= {getattr(stored, field)!r} (order {order.pk})"
                    )
            transfer = Transfer.objects.get(pk=order.hold_id())
            expected = bulk.hold_transfer(built)
            for field in _TRANSFER_COMPARED:
                if getattr(expected, field) != getattr(transfer, field):
                    raise SystemExit(
                        f"bulk hold differs from spot_order_place on {field}: {getattr(expected, field)!r} "
                        f"!= {getattr(transfer, field)!r} (order {order.pk})"
                    )
            verified += 1
            continue
        pending_rows.append((index, bulk.build(user.pk, data)))
        if len(pending_rows) >= 5000:
            flush()
    flush()
    cancel_ids = [order_ids[i] for i in cancels]
    SpotOrder.objects.filter(pk__in=cancel_ids).update(cancel_requested_at=timezone.now(), updated_at=timezone.now())
    log(
        f"    {len(order_ids)} orders ({verified} through spot_order_place, checked equal to the bulk path) and "
        f"{len(cancel_ids)} cancel requests written in {time.monotonic() - started:.1f} s"
    )
    info = {**marker, "placed": len(order_ids), "cancels": len(cancel_ids), "verified": verified}
    SingletonCheckpoint.objects.update_or_create(name="bench_runner", defaults={"epoch": 0, "value": info})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    return info


# --- one round ------------------------------------------------------------------------------------


def _pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Timed:
    """Per-batch timing of the runner's parts, by wrapping its methods on the instance
    (the runner's code is unchanged)."""

    def __init__(self, runner):
        from django.db import connections

        import orders.spot.runner as runner_module

        self.runner = runner
        self.batches: list[dict] = []
        self.current: dict = {}
        self._connection = connections["default"]
        self._module = runner_module
        self._saved = {"commit": self._connection.commit, "transfers_execute": runner_module.transfers_execute}
        for name in ("_feed", "_write", "_publish"):
            setattr(runner, name, self._wrap(getattr(runner, name), name.lstrip("_")))
        self._connection.commit = self._wrap(self._connection.commit, "commit")
        runner_module.transfers_execute = self._wrap(runner_module.transfers_execute, "ledger")
        original_feed = runner._feed

        def feed(new, cancels):
            self.current["new"], self.current["cancels"] = len(new), len(cancels)
            self.current["pre"] = time.perf_counter() - self.current["start"]
            return original_feed(new, cancels)

        runner._feed = feed

    def _wrap(self, function, name):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - started

        return timed

    def work(self, epoch: int) -> bool:
        self.current = {"start": time.perf_counter()}
        more = self.runner.work(epoch)
        self.current["total"] = time.perf_counter() - self.current["start"]
        if self.current.get("new") is not None:
            self.batches.append(self.current)
        return more

    def restore(self) -> None:
        self._connection.commit = self._saved["commit"]
        self._module.transfers_execute = self._saved["transfers_execute"]


def drop_hot_foreign_keys() -> None:
    """Diagnostic variant ``nofk``: drop, on the round's copy only, the foreign keys of the
    rows every batch inserts (trades -> orders and users, transfers -> accounts and holds).
    Django creates them DEFERRABLE INITIALLY DEFERRED, so their checks run inside COMMIT;
    the difference to ``product`` is what those checks cost."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid::regclass::text IN ('orders_spottrade', 'ledger_transfer')"
        )
        for table, name in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _remaining() -> int:
    from orders.models import LIVE_STATUSES, SpotOrder, SpotStatus

    return (
        SpotOrder.objects.filter(status=SpotStatus.NEW).count()
        + SpotOrder.objects.filter(status__in=LIVE_STATUSES, cancel_requested_at__isnull=False).count()
    )


def run_round(variant: str, args, db: dict, round_no: int) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from orders.models import SpotOrder, SpotStatus, SpotTrade
    from orders.spot.runner import EngineRunner, lease_name
    from trading.leases import lease_acquire

    copy = f"{db['name']}_round"
    copied = _recreate(db, copy, template=db["name"])
    _use_database(copy)
    row = {"variant": variant, "round": round_no, "load_start": os.getloadavg()[0]}
    batch = 1 if variant == "batch1" else args.batch
    if variant == "nofk":
        drop_hot_foreign_keys()
    if args.synchronous_commit:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('synchronous_commit', %s, false)", [args.synchronous_commit])
    runner = EngineRunner(SYMBOL, batch=batch, guard_gc=True)  # as run_engine builds it
    runner.holder = f"bench-{variant}-{round_no}"
    epoch = lease_acquire(name=lease_name(SYMBOL), holder=runner.holder, ttl=3600)
    runner.on_lead(epoch)
    timed = Timed(runner)
    limit = args.baseline_seconds if variant == "batch1" else float("inf")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu_started, backend_started = time.process_time(), _backend_cpu(backend)
    started = time.perf_counter()
    try:
        while True:
            more = timed.work(epoch)
            elapsed = time.perf_counter() - started
            if elapsed >= limit:
                break
            if not more and not _remaining():
                break
    finally:
        timed.restore()
        if getattr(runner, "gc", None) is not None:
            runner.gc.__exit__(None, None, None)  # each round's runner entered its own guard
    elapsed = time.perf_counter() - started
    cpu_runner, cpu_backend = time.process_time() - cpu_started, _backend_cpu(backend) - backend_started
    batches = timed.batches
    orders = sum(b["new"] for b in batches)
    cancels = SpotOrder.objects.filter(status=SpotStatus.CANCELLED, cancel_reason="user").count()
    row.update(
        elapsed=elapsed,
        orders=orders,
        cancels=cancels,
        ops=orders / elapsed,
        cmds=(orders + cancels) / elapsed,
        batches=len(batches),
        per_batch=statistics.mean(b["new"] + b["cancels"] for b in batches) if batches else 0,
        trades=SpotTrade.objects.count(),
        left=_remaining(),
        load_end=os.getloadavg()[0],
        copy_s=copied,
        cpu_runner=cpu_runner,
        cpu_backend=cpu_backend,
        # orders per second of CPU spent by the runner and its PostgreSQL backend together:
        # what the runner reaches with a core to itself and its backend on the other, less the
        # waits (WAL flush at commit); unlike orders/s it barely moves with the machine's load
        cpu_ops=orders / (cpu_runner + cpu_backend),
    )
    for part in ("total", "pre", "feed", "write", "ledger", "commit", "publish"):
        values = [b.get(part, 0.0) * 1000 for b in batches]
        row[f"{part}_p50"], row[f"{part}_p99"] = _pct(values, 0.5), _pct(values, 0.99)
        row[f"{part}_sum"] = sum(values) / 1000
    if args.audit and round_no == args.rounds:
        from io import StringIO

        out = StringIO()
        try:
            call_command("ledger_audit", stdout=out, stderr=out)
            row["audit"] = "OK"
        except Exception as exc:
            row["audit"] = f"FAILED: {exc}\n{out.getvalue()[-2000:]}"
    connection.close()
    log(
        f"    {variant:7} round {round_no}: {orders} orders + {cancels} cancels in {elapsed:.2f} s = {row['ops']:,.0f} orders/s "
        f"({row['cmds']:,.0f} commands/s); {len(batches)} batches of {row['per_batch']:.0f} commands; {row['trades']} trades; "
        f"{row['left']} left; load {load()}"
    )
    log(
        f"            per batch ms p50/p99: total {row['total_p50']:.1f}/{row['total_p99']:.1f}  pre {row['pre_p50']:.1f}/{row['pre_p99']:.1f}  "
        f"feed {row['feed_p50']:.1f}/{row['feed_p99']:.1f}  write {row['write_p50']:.1f}/{row['write_p99']:.1f} "
        f"(ledger {row['ledger_p50']:.1f}/{row['ledger_p99']:.1f})  commit {row['commit_p50']:.1f}/{row['commit_p99']:.1f}  "
        f"publish {row['publish_p50']:.1f}/{row['publish_p99']:.1f}"
    )
    log(
        f"            CPU: runner {cpu_runner:.2f} s + its PostgreSQL backend {cpu_backend:.2f} s = "
        f"{row['cpu_ops']:,.0f} orders per CPU-second ({(cpu_runner + cpu_backend) / max(1, len(batches)) * 1000:.0f} ms per batch)"
    )
    total = sum(row[f"{p}_sum"] for p in ("pre", "feed", "write", "commit", "publish")) or 1
    log(
        "            share of the time: "
        + "  ".join(
            f"{p} {row[p + '_sum'] / elapsed * 100:.0f}%"
            for p in ("pre", "feed", "write", "ledger", "commit", "publish")
        )
        + f"  (other {max(0.0, elapsed - total) / elapsed * 100:.0f}%)"
    )
    if "audit" in row:
        log(f"            ledger_audit on the round's database: {row['audit']}")
    return row


# --- main -----------------------------------------------------------------------------------------


def _machine() -> list[str]:
    from django.db import connection

    lines = machine_lines()
    connection.close()
    return [*lines, f"python:     {platform.python_version()}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50_000, help="commands in the stream (orders and cancels)")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant, alternating")
    parser.add_argument("--batch", type=int, default=None, help="the product's batch size (default ENGINE_BATCH_SIZE)")
    parser.add_argument("--baseline-seconds", type=float, default=15.0, help="how long each batch1 round runs")
    parser.add_argument("--verify", type=int, default=100, help="orders placed through spot_order_place and compared")
    parser.add_argument(
        "--variants",
        default="product,batch1",
        help="of product, batch1, nofk (product without the transfers' foreign keys)",
    )
    parser.add_argument("--synchronous-commit", choices=("on", "off"), help="for the runner's session (diagnostic)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the prepared database even if it matches")
    parser.add_argument(
        "--no-audit", dest="audit", action="store_false", help="skip ledger_audit after the last rounds"
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_RUNNER_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_RUNNER_REDIS_URL") or DEFAULT_REDIS_URL)
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if any(v not in ("product", "batch1", "nofk") for v in variants) or args.orders < 100 or args.rounds < 1:
        parser.error("bad --variants/--orders/--rounds")

    db = db_params(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "trading.settings"
    stack_secret()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("HTTPS", "0")
    if not _exists(db, db["name"]):
        _recreate(db, db["name"])
    import django

    django.setup()
    from django.conf import settings

    args.batch = args.batch or settings.ENGINE_BATCH_SIZE
    for line in _machine():
        log(line)
    log(f"load avg before start: {load()}")
    info = prepare(args, db)
    log(
        f"stream: {args.orders} commands = {info['placed']} orders + {info['cancels']} cancels, {args.users} traders; "
        f"product batch {args.batch}"
        f"{'; synchronous_commit=' + args.synchronous_commit if args.synchronous_commit else ''}; batch1 runs {args.baseline_seconds:g} s per round; redis {args.redis_url}"
    )

    results: dict[str, list[dict]] = {v: [] for v in variants}
    for round_no in range(1, args.rounds + 1):
        order = variants if round_no % 2 else list(reversed(variants))
        for variant in order:
            results[variant].append(run_round(variant, args, db, round_no))

    log("")
    log(f"summary ({args.rounds} rounds; medians):")
    med = {}
    for variant in variants:
        rows = results[variant]
        med[variant] = {
            k: statistics.median(r[k] for r in rows)
            for k in ("ops", "cmds", "per_batch", "total_p50", "total_p99", "commit_p50", "commit_p99", "cpu_ops")
        }
        m = med[variant]
        rounds = ", ".join(f"{r['ops']:,.0f}" for r in rows)
        log(
            f"  {variant:7}: {m['ops']:>9,.0f} orders/s  {m['cmds']:>9,.0f} commands/s  batch {m['per_batch']:.0f} commands; "
            f"per batch {m['total_p50']:.1f} ms p50 / {m['total_p99']:.1f} ms p99, commit {m['commit_p50']:.1f} / "
            f"{m['commit_p99']:.1f} ms  (rounds: {rounds}); {m['cpu_ops']:,.0f} orders per CPU-second"
        )
    if "product" in med and "batch1" in med:
        ratios = [p["ops"] / b["ops"] for p, b in zip(results["product"], results["batch1"])]
        log(
            f"ratio product/batch1 (orders/s): {med['product']['ops'] / med['batch1']['ops']:.1f}x "
            f"(per round {' '.join(f'{r:.1f}' for r in ratios)})"
        )
    for variant in ("nofk",):
        if "product" in med and variant in med:
            ratios = [v["ops"] / p["ops"] for v, p in zip(results[variant], results["product"])]
            log(
                f"ratio {variant}/product (orders/s): {statistics.median(ratios):.2f}x "
                f"(per round {' '.join(f'{r:.2f}' for r in ratios)})"
            )
    if "product" in med:
        log(f"goal >= 10,000 orders/s: {'met' if med['product']['ops'] >= 10_000 else 'NOT met'}")
    log(f"load avg at end: {load()}")
    audits = [r["audit"] for rows in results.values() for r in rows if "audit" in r]
    left = [r for rows in results.values() for r in rows if r["variant"] == "product" and r["left"]]
    return 1 if left or any(a != "OK" for a in audits) else 0


if __name__ == "__main__":
    sys.exit(main())
