"""AML monitoring on PostgreSQL, two measurements, each beside its baseline in the same run:

* **real time**: ``compliance.services.aml_evaluate`` of one withdrawal for a trader with a
  year of history (3 deposits, 1 withdrawal and 2 sign-ins a day), the whole service as a
  Celery worker runs it (its transaction, the trader's lock, loading, the eight live rules,
  suppression, the alert writes). Baseline: the same with the trader's records over the
  rules' whole horizon loaded (``selectors.history_for``), as before per-rule reads.
* **scan**: ``compliance.services.aml_scan`` over ``--users`` traders with
  ``--transfers`` deposits in all, spread over 30 days, against a per-transfer loop (one
  ``aml_evaluate`` per deposit, as replaying them one by one would) timed on a sample of
  ``--loop-sample`` deposits and extrapolated.

The history is written with bulk inserts straight into the ledger's tables (the balances
are not kept: the database is the benchmark's own). Alerts raised by a round are removed
before the next, and the case threshold is set out of reach, so each round does the same
work. Figures: p50/p99 in milliseconds; scan seconds and transfers per second; the load
average; and each time less the waits of this process and its PostgreSQL backend for a CPU
(``/proc/<pid>/schedstat``, when readable), what the work takes on a machine not shared.

    .venv/bin/python bench/aml.py [--users 1000] [--transfers 100000] [--requests 200]
                                  [--loop-sample 2000] [--rounds 2] [--fresh]
                                  [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
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

DEFAULT_DATABASE_URL = "postgres://meridian:meridian-local@127.0.0.1:5432/trading_bench_aml"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
GOAL_P99_MS = 5.0
GOAL_SCAN_S_PER_MILLION = 60.0
TRADER = "bench-aml-trader@example.test"
PREFIX = "bench-aml-"


def _setup(args):
    from bench.common import django_on

    django_on(args.database_url, args.redis_url, fresh=args.fresh)
    from django.conf import settings

    settings.AML_CASE_THRESHOLD = 10**9  # alerts only: every round does the same work


def _users(emails):
    from accounts.models import User

    existing = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))
    missing = [User(email=email, date_joined=_now() - timedelta(days=400)) for email in emails if email not in existing]
    User.objects.bulk_create(missing, batch_size=5000)
    return dict(User.objects.filter(email__in=emails).values_list("email", "pk"))


def _now():
    from django.utils import timezone

    return timezone.now()


def _accounts(user_ids):
    from ledger.models import AccountKind, LedgerAccount

    LedgerAccount.objects.bulk_create(
        [LedgerAccount(code=f"user:{pk}:USDT", asset="USDT", kind=AccountKind.USER, user_id=pk) for pk in user_ids],
        batch_size=5000,
        ignore_conflicts=True,
    )
    return dict(LedgerAccount.objects.filter(user_id__in=user_ids, asset="USDT").values_list("user_id", "pk"))


def _deposits(rows, external_id):
    """rows: (transfer id, account id, amount, created_at)."""
    from ledger.models import Transfer, TransferKind

    Transfer.objects.bulk_create(
        [
            Transfer(
                id=pk,
                kind=TransferKind.POSTED,
                asset="USDT",
                amount=amount,
                debit_account_id=external_id,
                credit_account_id=account,
                code="deposit",
                reference=pk,
                payload_hash="bench",
                created_at=at,
            )
            for pk, account, amount, at in rows
        ],
        batch_size=10_000,
        ignore_conflicts=True,
    )


def _backdate(model, field, values):
    """auto_now_add fields take the time of the insert: set the history's times after it."""
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {field} = %s WHERE id = %s", [(at, pk) for pk, at in values])


def prepare_trader() -> tuple[int, int]:
    """The real-time trader: a year of history; returns (user id, the last withdrawal's id)."""
    from compliance.models import AmlSignIn
    from ledger.models import Transfer, Withdrawal
    from ledger.services.transfers import system_account

    user_id = _users([TRADER])[TRADER]
    account = _accounts([user_id])[user_id]
    external = system_account(role="external", asset="USDT").pk
    now = _now()
    rng = random.Random(7)
    if not Transfer.objects.filter(credit_account_id=account).exists():
        rows, withdrawals, signins = [], [], []
        for day in range(365, 0, -1):
            base = now - timedelta(days=day)
            for n in range(3):
                rows.append(
                    (f"{PREFIX}rt-{day}-{n}", account, Decimal(rng.randint(50, 3000)), base + timedelta(hours=n))
                )
            withdrawals.append(Withdrawal(user_id=user_id, asset="USDT", amount=Decimal(rng.randint(50, 2000)), fee=1))
            for n in range(2):
                signins.append(AmlSignIn(user_id=user_id, at=base + timedelta(hours=8 + n), ip=f"10.1.{day % 250}.{n}"))
        _deposits(rows, external)
        _backdate(Transfer, "created_at", [(pk, at) for pk, _, _, at in rows])
        made = Withdrawal.objects.bulk_create(withdrawals, batch_size=5000)
        _backdate(
            Withdrawal, "created_at", [(w.pk, now - timedelta(days=365 - i, hours=-12)) for i, w in enumerate(made)]
        )
        AmlSignIn.objects.bulk_create(signins, batch_size=5000)
    last = Withdrawal.objects.filter(user_id=user_id).order_by("-created_at").values_list("pk", flat=True).first()
    return user_id, last


def prepare_scan(users: int, transfers: int) -> None:
    from ledger.models import Transfer
    from ledger.services.transfers import system_account

    if Transfer.objects.filter(id__startswith=f"{PREFIX}scan-").count() >= transfers:
        return
    emails = [f"{PREFIX}{n}@example.test" for n in range(users)]
    ids = _users(emails)
    accounts = _accounts(list(ids.values()))
    external = system_account(role="external", asset="USDT").pk
    now = _now()
    rng = random.Random(11)
    user_accounts = [accounts[ids[email]] for email in emails]
    done = 0
    while done < transfers:
        batch = []
        for n in range(done, min(done + 50_000, transfers)):
            at = now - timedelta(seconds=rng.randint(60, 30 * 86400))
            batch.append((f"{PREFIX}scan-{n}", user_accounts[n % users], Decimal(rng.randint(10, 20000)), at))
        _deposits(batch, external)
        _backdate(Transfer, "created_at", [(pk, at) for pk, _, _, at in batch])
        done += len(batch)
        print(f"    {done:,} / {transfers:,} transfers written", flush=True)


def _percentiles(samples_ns):
    ordered = sorted(samples_ns)
    p50 = statistics.median(ordered) / 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
    return p50, p99


def _forget_alerts():
    from compliance.models import AmlAlert

    AmlAlert.objects.filter(case__isnull=True).delete()


def realtime_round(user_id, trigger, requests, *, horizon_load):
    """``horizon_load``: the baseline, the trader's records over the rules' whole horizon
    loaded (``selectors.history_for``, six queries and ~700 rows here) instead of what each
    rule reads about this trigger (``selectors.trigger_history``)."""
    from compliance import selectors, services

    narrow = selectors.trigger_history
    if horizon_load:

        def whole(*, user_id, trigger, now, lock=None):
            return selectors.live_rules(), None

        selectors.trigger_history = whole
    try:
        samples, unqueued = [], []
        for _ in range(requests):
            before = _schedstat()
            started = time.perf_counter_ns()
            services.aml_evaluate(user_id=user_id, trigger=trigger)
            elapsed = time.perf_counter_ns() - started
            after = _schedstat()
            samples.append(elapsed)
            if before and after:
                unqueued.append(elapsed - (after[1] - before[1]))
    finally:
        selectors.trigger_history = narrow
    return (*_percentiles(samples), *(_percentiles(unqueued) if unqueued else (None, None)))


def _schedstat():
    """(on-CPU ns, waiting-for-a-CPU ns) so far of this thread and of the PostgreSQL backend
    serving it, together (Linux ``/proc/<pid>/schedstat``; None when the backend's is not
    readable, e.g. a remote server). On a busy machine the waits for a CPU are most of a
    millisecond figure's spread: a time less them is what the work itself takes."""
    from django.db import connection

    global _BACKEND
    if _BACKEND is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            _BACKEND = cursor.fetchone()[0]
    try:
        mine = Path("/proc/thread-self/schedstat").read_text().split()
        theirs = Path(f"/proc/{_BACKEND}/schedstat").read_text().split()
    except OSError:
        return None
    return int(mine[0]) + int(theirs[0]), int(mine[1]) + int(theirs[1])


_BACKEND = None


def scan_round():
    from compliance import services

    _forget_alerts()
    before = _schedstat()
    started = time.perf_counter()
    outcome = services.aml_scan(since=_now() - timedelta(days=31))
    seconds = time.perf_counter() - started
    after = _schedstat()
    unqueued = seconds - (after[1] - before[1]) / 1e9 if before and after else None
    return seconds, unqueued, outcome


def loop_round(sample):
    from compliance import services
    from ledger.models import Transfer

    _forget_alerts()
    rows = list(
        Transfer.objects.filter(id__startswith=f"{PREFIX}scan-")
        .order_by("id")
        .values_list("id", "credit_account__user_id")[:sample]
    )
    started = time.perf_counter()
    for pk, user_id in rows:
        services.aml_evaluate(user_id=user_id, trigger=f"transfer:{pk}", source="scan")
    return (time.perf_counter() - started) / max(1, len(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--loop-sample", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args()
    _setup(args)
    from bench.common import load, log, machine_lines
    from compliance.services import aml_rules_install_defaults

    aml_rules_install_defaults()
    for line in machine_lines():
        log(line)
    log("==> preparing the real-time trader (a year of history)")
    user_id, withdrawal = prepare_trader()
    trigger = f"withdrawal:{withdrawal}"
    log(f"==> preparing {args.transfers:,} deposits of {args.users:,} traders over 30 days")
    prepare_scan(args.users, args.transfers)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the bulk-loaded tables' statistics, as autovacuum would gather them

    log(f"real time: aml_evaluate of one withdrawal, {args.requests} calls per round (goal p99 < {GOAL_P99_MS} ms)")
    log("  (less queued: each time less this process's and its PostgreSQL backend's waits for a CPU)")
    results = {"product": [], "horizon load": []}
    for n in range(args.rounds):
        for name in results:
            p50, p99, q50, q99 = realtime_round(user_id, trigger, args.requests, horizon_load=name == "horizon load")
            results[name].append((p50, p99, q50, q99))
            queued = f"  less queued: p50 {q50:7.2f} ms  p99 {q99:7.2f} ms" if q50 is not None else ""
            log(f"  round {n + 1} {name:>13}: p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{queued}  load {load()}")
    for name, rows in results.items():
        queued = ""
        if rows[0][2] is not None:
            queued = (
                f"  less queued: p50 {statistics.median(r[2] for r in rows):7.2f} ms  "
                f"p99 {statistics.median(r[3] for r in rows):7.2f} ms"
            )
        log(
            f"  median {name:>13}: p50 {statistics.median(r[0] for r in rows):7.2f} ms  "
            f"p99 {statistics.median(r[1] for r in rows):7.2f} ms{queued}"
        )

    log(f"scan: aml_scan of {args.transfers:,} deposits against a per-transfer loop ({args.loop_sample:,} sampled)")
    scans, loops, unqueued = [], [], []
    for n in range(args.rounds):
        seconds, less_queued, outcome = scan_round()
        scans.append(seconds)
        queued = ""
        if less_queued is not None:
            unqueued.append(less_queued)
            queued = f" ({less_queued:.2f} s less queued)"
        log(
            f"  round {n + 1} scan: {seconds:8.2f} s{queued}, {args.transfers / seconds:10,.0f} transfers/s, "
            f"{len(outcome.alerts):,} alerts, {outcome.users:,} traders  load {load()}"
        )
        per = loop_round(args.loop_sample)
        loops.append(per)
        log(
            f"  round {n + 1} loop: {per * 1000:8.2f} ms per transfer -> {per * args.transfers:8.1f} s for all  "
            f"load {load()}"
        )
    scan = statistics.median(scans)
    loop = statistics.median(loops) * args.transfers
    per_million = scan / args.transfers * 1_000_000
    log(
        f"  median scan {scan:.2f} s ({per_million:.1f} s per million, goal {GOAL_SCAN_S_PER_MILLION:.0f} s); "
        f"loop {loop:.1f} s; loop / scan {loop / scan:.1f}x"
    )
    if unqueued:
        less = statistics.median(unqueued)
        log(f"  median scan less queued {less:.2f} s ({less / args.transfers * 1_000_000:.1f} s per million)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
