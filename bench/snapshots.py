"""The nightly portfolio snapshot of every trader: the product's one set-based statement for
all traders (``portfolio.snapshots.snapshots_write``) against the obvious per-trader loop
(each trader's accounts, the transfers after the close per account, their option orders and
the day's deposits and withdrawals read one trader at a time, then one row saved), side by
side on the same database and day.

The database holds ``--traders`` traders (100,000 by default), built once with set-based
SQL and kept for later runs: each has a USDT account, every second one BTC and every third
one ETH, with deposits and trading transfers over the last weeks, one in ten a deposit
yesterday (one in twenty of BTC), one in five transfers after midnight (what the close has to take back off
today's balances), and one in a hundred an open option position. Counters are the sums of
the transfers, so ``manage.py ledger_audit`` passes on it.

Each round deletes yesterday's rows, runs the product for every trader, keeps a sample of
its rows, deletes them, runs the per-trader loop on the sample (``--sample`` traders; the
loop over 100,000 would take minutes, so its time is extrapolated linearly, and said so) and
checks that the loop wrote exactly the rows the product wrote. Figures: seconds per run,
traders per second, the goal (< 30 s for 100,000 traders), the ratio loop / product, and
the load average.

    .venv/bin/python bench/snapshots.py [--traders 100000] [--sample 2000] [--rounds 3]
                                        [--backfill-days 0] [--database-url URL]

Needs PostgreSQL; uses a dedicated database (default trading_bench_snapshots), created and
migrated if missing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://meridian:meridian-local@127.0.0.1:5432/trading_bench_snapshots"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
GOAL_SECONDS = 30.0
GOAL_TRADERS = 100_000
EMAIL = "bench-snap-{}@example.test"
INDEX = {"BTC": Decimal("65000.12"), "ETH": Decimal("3400.55")}


def _setup(args):
    from bench.common import django_on

    django_on(args.database_url, args.redis_url)


def _execute(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _populate(traders: int) -> None:
    """The traders and their history, once (set-based: a minute, not hours)."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from bench.common import log
    from ledger.models import SystemRole
    from ledger.services.transfers import system_account
    from marketdata.models import IndexPrint
    from marketdata.services import instruments_sync

    have = User.objects.filter(email__startswith="bench-snap-").count()
    if have == traders:
        log(f"==> {traders} traders already in the database")
        return
    if have:
        raise SystemExit(
            f"the database has {have} bench traders, not {traders}: use another database or --traders {have}"
        )
    log(f"==> creating {traders} traders and their history (set-based SQL)")
    started = time.perf_counter()
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for underlying, price in INDEX.items():
        IndexPrint.objects.create(underlying=underlying, ts=now, price=price, stale=False, sources={})
    instruments_sync(index_prices=INDEX)
    with transaction.atomic():
        external = {a: system_account(role=SystemRole.EXTERNAL, asset=a).pk for a in ("USDT", "BTC", "ETH")}
        fees = {a: system_account(role=SystemRole.FEES, asset=a).pk for a in ("USDT", "BTC", "ETH")}
        clearing = system_account(role=SystemRole.OPTION_CLEARING, asset="USDT").pk
        _execute(
            """
            INSERT INTO accounts_user (password, is_superuser, first_name, last_name, email, is_staff, is_active,
                                       date_joined)
            SELECT '!', false, '', '', replace(%s, '{}', g::text), false, true, %s
            FROM generate_series(1, %s) g
            """,
            [EMAIL, midnight - timedelta(days=40), traders],
        )
        for asset, every in (("USDT", 1), ("BTC", 2), ("ETH", 3)):
            _execute(
                f"""
                INSERT INTO ledger_ledgeraccount (code, asset, kind, user_id, role, bucket, debits_posted,
                    credits_posted, debits_pending, credits_pending, created_at)
                SELECT 'user:' || u.id || ':{asset}', '{asset}', 'user', u.id, '', 0, 0, 0, 0, 0, %s
                FROM accounts_user u WHERE u.email LIKE 'bench-snap-%%' AND u.id %% {every} = 0
                """,
                [midnight - timedelta(days=40)],
            )
        # (code, asset, amount in units of the asset's scale per trader, from external?, every n-th, when)
        scale = {"USDT": Decimal("0.000001"), "BTC": Decimal("0.00000001"), "ETH": Decimal("0.00000001")}
        legs = [
            ("deposit", "USDT", "1000 + (a.user_id %% 997) * 10", True, 1, midnight - timedelta(days=30)),
            ("deposit", "BTC", "0.01 + (a.user_id %% 89) * 0.001", True, 1, midnight - timedelta(days=29)),
            ("deposit", "ETH", "0.1 + (a.user_id %% 83) * 0.01", True, 1, midnight - timedelta(days=28)),
            ("spot_fee", "USDT", "0.5 + (a.user_id %% 7) * 0.1", False, 1, midnight - timedelta(days=10)),
            ("spot_fee", "BTC", "0.00001", False, 1, midnight - timedelta(days=5)),
            ("spot_fee", "USDT", "0.25", False, 1, midnight - timedelta(hours=12)),
            ("deposit", "USDT", "100 + (a.user_id %% 13)", True, 10, midnight - timedelta(hours=6)),
            ("deposit", "BTC", "0.005", True, 20, midnight - timedelta(hours=6)),
            ("spot_fee", "USDT", "0.1", False, 5, midnight + min(timedelta(minutes=1), (now - midnight) / 2)),
        ]
        for n, (code, asset, amount, inbound, every, when) in enumerate(legs):
            system = external[asset] if inbound else fees[asset]
            debit, credit = ("%s", "a.id") if inbound else ("a.id", "%s")
            _execute(
                f"""
                INSERT INTO ledger_transfer (id, kind, asset, amount, debit_account_id, credit_account_id, code,
                    reference, linked_to, payload_hash, created_at)
                SELECT 'bench:{n}:' || a.id, 'posted', '{asset}', round({amount}, {abs(scale[asset].as_tuple().exponent)}),
                       {debit}, {credit}, '{code}', 'bench', '', '', %s
                FROM ledger_ledgeraccount a
                WHERE a.kind = 'user' AND a.asset = '{asset}' AND a.user_id %% {every} = 0
                """,
                [system, when],
            )
        # one in a hundred bought one contract of a series that expires after today
        from marketdata.models import Instrument
        from orders.options.models import OptionOrder

        series = (
            Instrument.objects.filter(kind="option", base="BTC", option_type="C", expiry__gt=now + timedelta(days=2))
            .order_by("expiry", "strike")
            .first()
        )
        bought = midnight - timedelta(hours=14)
        _execute(
            """
            INSERT INTO orders_optionorder (user_id, instrument_id, series, underlying, side, contracts, price_usdt,
                total_usdt, underlying_qty, index_price, mark_usdt, iv, status, client_order_id, request_hash,
                settlement_state, created_at)
            SELECT u.id, %s, %s, 'BTC', 'buy', 0.2, 2500, 500, 0.00769228, %s, 2450, 0.55, 'filled', '', '',
                   'settled', %s
            FROM accounts_user u WHERE u.email LIKE 'bench-snap-%%' AND u.id %% 100 = 0
            """,
            [series.pk, series.symbol, INDEX["BTC"], bought],
        )
        _execute(
            f"""
            INSERT INTO ledger_transfer (id, kind, asset, amount, debit_account_id, credit_account_id, code,
                reference, linked_to, payload_hash, created_at)
            SELECT 'optord:' || o.id || ':premium', 'posted', 'USDT', o.total_usdt, a.id, %s, 'option_open',
                   'option_order:' || o.id, '', '', o.created_at
            FROM {OptionOrder._meta.db_table} o
            JOIN ledger_ledgeraccount a ON a.user_id = o.user_id AND a.kind = 'user' AND a.asset = 'USDT'
            """,
            [clearing],
        )
        _execute(
            """
            UPDATE ledger_ledgeraccount a SET credits_posted = s.credits, debits_posted = s.debits
            FROM (
                SELECT account_id, SUM(credit) AS credits, SUM(debit) AS debits FROM (
                    SELECT credit_account_id AS account_id, amount AS credit, 0 AS debit FROM ledger_transfer
                    UNION ALL
                    SELECT debit_account_id, 0, amount FROM ledger_transfer
                ) m GROUP BY account_id
            ) s
            WHERE a.id = s.account_id
            """
        )
    _execute("ANALYZE")
    log(f"    done in {time.perf_counter() - started:.1f} s")


def _prices(days) -> None:
    """Index candles for each day's close and for the minute before its deposits (at 18:00)."""
    from marketdata.models import Candle, CandleSource
    from portfolio.snapshots import day_end

    for day, asset in ((d, a) for d in days for a in INDEX):
        close, price = day_end(day), INDEX[asset]
        for opened, value in (
            (close - timedelta(minutes=1), price),
            (close - timedelta(hours=6, minutes=1), price - 100),
        ):
            Candle.objects.update_or_create(
                symbol=f"{asset}-USDT",
                source=CandleSource.INDEX,
                interval="1m",
                open_time=opened,
                defaults={"open": value, "high": value, "low": value, "close": value},
            )


def per_trader_loop(user_ids, day) -> int:
    """The baseline: the same snapshot, one trader at a time, with the ORM."""
    from django.db.models import Q, Sum

    from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
    from orders.options.models import OptionOrder
    from portfolio.models import DailySnapshot
    from portfolio.snapshots import SNAPSHOT_PLACES, close_prices, day_end, day_start, option_marks, price_at

    close, opened = day_end(day), day_start(day)
    prices = close_prices([day])[day]
    marks = option_marks([day], {day: prices})
    posted = [TransferKind.POSTED, TransferKind.POST_PENDING]
    written = 0
    for user_id in user_ids:
        value = flows = Decimal(0)
        accounts = list(LedgerAccount.objects.filter(kind=AccountKind.USER, user_id=user_id, created_at__lt=close))
        if not accounts:
            continue
        for account in accounts:
            later = Transfer.objects.filter(kind__in=posted, created_at__gte=close)
            credited = later.filter(credit_account=account).aggregate(s=Sum("amount"))["s"] or 0
            debited = later.filter(debit_account=account).aggregate(s=Sum("amount"))["s"] or 0
            value += (account.balance - credited + debited) * prices[account.asset]
            edge = Transfer.objects.filter(
                Q(credit_account=account, debit_account__kind=AccountKind.EXTERNAL)
                | Q(debit_account=account, credit_account__kind=AccountKind.EXTERNAL),
                kind__in=posted,
                created_at__gte=opened,
                created_at__lt=close,
            )
            for transfer in edge:
                sign = 1 if transfer.credit_account_id == account.pk else -1
                flows += sign * transfer.amount * price_at(asset=account.asset, at=transfer.created_at)
        held: dict[int, Decimal] = {}
        for order in OptionOrder.objects.filter(user_id=user_id, created_at__lt=close, instrument__expiry__gt=close):
            held[order.instrument_id] = held.get(order.instrument_id, 0) + (
                order.contracts if order.side == "buy" else -order.contracts
            )
        for instrument_id, contracts in held.items():
            value += contracts * marks[(day, instrument_id)]
        _, created = DailySnapshot.objects.get_or_create(
            user_id=user_id,
            date=day,
            defaults={"value_usdt": value.quantize(SNAPSHOT_PLACES), "net_flows_usdt": flows.quantize(SNAPSHOT_PLACES)},
        )
        written += created
    return written


def _clear(day) -> None:
    from django.db import connection

    _execute("DELETE FROM portfolio_dailysnapshot WHERE date >= %s", [day])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE portfolio_dailysnapshot")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traders", type=int, default=GOAL_TRADERS)
    parser.add_argument("--sample", type=int, default=2000, help="traders the per-trader loop runs on per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backfill-days", type=int, default=0, help="also time a backfill of this many days")
    parser.add_argument("--database-url", default=os.environ.get("SNAPSHOT_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args()
    _setup(args)

    from django.utils import timezone

    from accounts.models import User
    from bench.common import load, log, machine_lines
    from portfolio.models import DailySnapshot
    from portfolio.snapshots import last_closed_day, snapshots_write

    _populate(args.traders)
    day = last_closed_day()
    _prices([day])
    ids = list(User.objects.filter(email__startswith="bench-snap-").order_by("pk").values_list("pk", flat=True))
    step = max(1, len(ids) // args.sample)
    sample = ids[::step][: args.sample]
    for line in machine_lines():
        log(line)
    log(f"load avg before start: {load()}")
    log(f"{len(ids)} traders, snapshot of {day} (close {day + timedelta(days=1)} 00:00 UTC); loop sample {len(sample)}")
    product_s, loop_s = [], []
    for round_no in range(1, args.rounds + 1):
        _clear(day)
        started = time.perf_counter()
        run = snapshots_write(days=[day])
        seconds = time.perf_counter() - started
        product_s.append(seconds)
        expected = {
            row[0]: row[1:]
            for row in DailySnapshot.objects.filter(date=day, user_id__in=sample).values_list(
                "user_id", "value_usdt", "net_flows_usdt"
            )
        }
        log(
            f"round {round_no} product    {run.written:7d} rows in {seconds:7.2f} s  "
            f"{run.written / seconds:9.0f} traders/s   load {load()}"
        )
        _clear(day)
        started = time.perf_counter()
        written = per_trader_loop(sample, day)
        seconds = time.perf_counter() - started
        got = {
            row[0]: row[1:]
            for row in DailySnapshot.objects.filter(date=day, user_id__in=sample).values_list(
                "user_id", "value_usdt", "net_flows_usdt"
            )
        }
        same = "same rows as the product" if got == expected else f"DIFFERENT rows ({len(got)} vs {len(expected)})"
        per = seconds / max(1, written)
        loop_s.append(per * len(ids))
        log(
            f"round {round_no} loop       {written:7d} rows in {seconds:7.2f} s  {written / seconds:9.0f} traders/s "
            f"({per * 1000:.2f} ms per trader; {same})   load {load()}"
        )
        if got != expected:
            return 1
    product = statistics.median(product_s)
    loop = statistics.median(loop_s)
    log("")
    log(f"{'':10s} {'median s':>10s} {'traders/s':>10s}")
    log(f"{'product':10s} {product:10.2f} {len(ids) / product:10.0f}")
    log(f"{'loop':10s} {loop:10.2f} {len(ids) / loop:10.0f}   (extrapolated from {len(sample)} traders per round)")
    log(f"ratio loop / product: {loop / product:.1f}x")
    scaled = product * GOAL_TRADERS / len(ids)
    log(
        f"goal: the snapshot of {GOAL_TRADERS:,} traders < {GOAL_SECONDS:.0f} s: {product:.2f} s for {len(ids):,} "
        f"traders ({'met' if scaled < GOAL_SECONDS else 'NOT met'})"
    )
    if args.backfill_days:
        _clear(day - timedelta(days=args.backfill_days - 1))
        days = [day - timedelta(days=n) for n in range(args.backfill_days - 1, -1, -1)]
        _prices(days)
        started = time.perf_counter()
        run = snapshots_write(days=days)
        seconds = time.perf_counter() - started
        log(
            f"backfill of {len(days)} days: {run.written} rows in {seconds:.2f} s "
            f"({run.written / seconds:.0f} rows/s)   load {load()}"
        )
        _clear(day - timedelta(days=args.backfill_days - 1))
    log(f"load avg at end: {load()} (at {timezone.now():%Y-%m-%d %H:%M} UTC)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
