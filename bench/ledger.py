"""Ledger throughput: trader -> system transfers from several concurrent connections.

Runs two variants side by side on PostgreSQL, alternating rounds:

* ``bucketed`` -- the product: ``ledger.services.transfers_commit`` crediting the FEES role,
  whose system account is split into LEDGER_SYSTEM_BUCKETS rows picked by the transfer id;
* ``naive``    -- the obvious implementation: one transaction that ``SELECT ... FOR UPDATE``s
  the single FEES row (bucket 0) first, then debits the trader, inserts the Transfer and
  credits the FEES row.

Each connection is its own OS process (spawned, so the GIL does not cap the client side).
Prints a table per round, the median transfers/s of each variant and the ratio
bucketed/naive, then runs ``manage.py ledger_audit`` on the benchmark database.

    .venv/bin/python bench/ledger.py [--connections 8] [--seconds 8] [--rounds 3] [--buckets 16]

Uses DATABASE_URL (default postgres://root@127.0.0.1:5432/trading_bench), creating that
database if needed and migrating it. It refuses to run on the ``trading``/``test_trading``
databases (nor any ``test_*`` one).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = str(Path(__file__).resolve().parent)
# This file is called ledger.py: keep its folder off sys.path so ``import ledger`` is the app.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != BENCH_DIR]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/trading_bench"
FORBIDDEN_DATABASES = {"trading", "test_trading", "postgres", "template0", "template1"}
ASSET = "USDT"
AMOUNT = Decimal("0.01")
FUNDING = Decimal("1000000000")  # per trader; enough for 10^11 transfers of AMOUNT
VARIANTS = ("bucketed", "naive")


# --- setup ------------------------------------------------------------------------------------------


def _environment(args) -> None:
    """Environment shared by the parent and (inherited by) the spawned workers."""
    from bench.common import stack_secret

    stack_secret()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "trading.settings"
    os.environ["LEDGER_SYSTEM_BUCKETS"] = str(args.buckets)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # REDIS_URL is left as the caller gave it (unset: local-memory cache, eager Celery).


def _db_params(url: str) -> dict:
    import environ

    config = environ.Env.db_url_config(url)
    if "postgres" not in config["ENGINE"]:
        sys.exit(f"bench/ledger.py needs PostgreSQL, DATABASE_URL is {url!r}")
    name = config["NAME"]
    if name in FORBIDDEN_DATABASES or name.startswith("test_"):
        sys.exit(f"refusing to benchmark on database {name!r}: use a dedicated one (default trading_bench)")
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
    }
    if config.get("PASSWORD"):
        params["password"] = config["PASSWORD"]
    return {"name": name, "connect": {k: v for k, v in params.items() if v is not None}}


def _ensure_database(db: dict, *, fresh: bool) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **db["connect"]) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [db["name"]]).fetchone()
        if exists and fresh:
            print(f"==> dropping database {db['name']} (--fresh)", flush=True)
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(db["name"])))
            exists = None
        if not exists:
            print(f"==> creating database {db['name']}", flush=True)
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(db["name"])))


def _prepare(connections: int, buckets: int) -> dict:
    """Migrated database, one funded trader per connection, the FEES buckets."""
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from ledger.models import AccountKind, LedgerAccount, SystemRole
    from ledger.services import deposit_credit, system_account, user_account
    from ledger.services import transfers as transfers_module

    print("==> migrating the benchmark database", flush=True)
    call_command("migrate", interactive=False, verbosity=0)
    if buckets != transfers_module.SYSTEM_BUCKETS:
        sys.exit(f"ledger SYSTEM_BUCKETS is {transfers_module.SYSTEM_BUCKETS}, expected {buckets}")

    traders = []
    for index in range(connections):
        email = f"bench-trader-{index}@bench.invalid"
        user = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password=None)
        account = user_account(user_id=user.pk, asset=ASSET)
        account.refresh_from_db()
        if account.available < FUNDING / 2:
            deposit_credit(user=user, asset=ASSET, amount=FUNDING, txid=f"bench-funding-{uuid.uuid4().hex}")
        traders.append(account.pk)

    fees = {}
    for bucket in range(buckets):
        account, _ = LedgerAccount.objects.get_or_create(
            kind=AccountKind.SYSTEM,
            role=SystemRole.FEES,
            asset=ASSET,
            bucket=bucket,
            defaults={"code": f"sys:{SystemRole.FEES}:{ASSET}:{bucket}"},
        )
        fees[bucket] = account.pk
    # The workers pick the bucket themselves; check that they pick what the product would.
    for probe in ("bench:probe:a", "bench:probe:b", "bench:probe:c", "bench:probe:d"):
        chosen = system_account(role=SystemRole.FEES, asset=ASSET, key=probe).pk
        if chosen != fees[zlib.crc32(probe.encode()) % buckets]:
            sys.exit("bench bucket choice differs from ledger.services.transfers.system_account")
    with connection.cursor() as cursor:
        cursor.execute("select version(), current_setting('synchronous_commit'), current_setting('max_connections')")
        version, sync_commit, max_conn = cursor.fetchone()
    connection.close()
    return {
        "traders": traders,
        "fees": fees,
        "pg_version": version,
        "synchronous_commit": sync_commit,
        "max_connections": max_conn,
    }


# --- workers ----------------------------------------------------------------------------------------


def _worker(index: int, trader_pk: int, fee_pks: dict, pipe, synchronous_commit: str | None) -> None:
    """One connection: a separate process with its own Django setup and DB connection."""
    import django

    django.setup()
    from django.db import connection, transaction
    from django.db.models import F, Value

    from ledger.models import LedgerAccount, Transfer, TransferKind
    from ledger.services import TransferRequest, transfers_commit
    from ledger.services.transfers import SYSTEM_BUCKETS, _payload_hash
    from trading.fields import ExactDecimalField

    trader = LedgerAccount.objects.get(pk=trader_pk)
    fees = {bucket: LedgerAccount.objects.get(pk=pk) for bucket, pk in fee_pks.items()}
    hot = fees[0]
    if synchronous_commit:
        with connection.cursor() as cursor:
            cursor.execute("select set_config('synchronous_commit', %s, false)", [synchronous_commit])

    def bucketed(transfer_id: str) -> None:
        # system_account(role="fees", asset="USDT", key=transfer_id), without its get_or_create.
        credit = fees[zlib.crc32(transfer_id.encode()) % SYSTEM_BUCKETS]
        transfers_commit(
            [TransferRequest(id=transfer_id, code="bench", asset=ASSET, amount=AMOUNT, debit=trader, credit=credit)]
        )

    # the amount as a value of the counters' own column type (an expression may only add those)
    amount = Value(AMOUNT, output_field=ExactDecimalField())

    def naive(transfer_id: str) -> None:
        request = TransferRequest(id=transfer_id, code="bench", asset=ASSET, amount=AMOUNT, debit=trader, credit=hot)
        with transaction.atomic(durable=True):
            # Lock the one system row first: every transfer queues here until the holder commits.
            LedgerAccount.objects.select_for_update().only("pk").get(pk=hot.pk)
            debited = LedgerAccount.objects.filter(
                pk=trader.pk, credits_posted__gte=F("debits_posted") + F("debits_pending") + amount
            ).update(debits_posted=F("debits_posted") + amount)
            if not debited:
                raise RuntimeError("insufficient funds")
            Transfer.objects.create(
                id=transfer_id,
                kind=TransferKind.POSTED,
                asset=ASSET,
                amount=AMOUNT,
                debit_account_id=trader.pk,
                credit_account_id=hot.pk,
                code="bench",
                payload_hash=_payload_hash(request, AMOUNT),
            )
            LedgerAccount.objects.filter(pk=hot.pk).update(credits_posted=F("credits_posted") + amount)

    run = {"bucketed": bucketed, "naive": naive}
    pipe.send(("ready", os.getpid()))
    while True:
        command = pipe.recv()
        if command is None:
            break
        variant, tag, start_at, seconds = command
        transfer = run[variant]
        latencies, errors, first_error = [], 0, ""
        while time.monotonic() < start_at:
            time.sleep(min(0.01, max(0.0, start_at - time.monotonic())))
        deadline = start_at + seconds
        seq = 0
        cpu_started = time.process_time()
        now = time.monotonic()
        while now < deadline:
            seq += 1
            transfer_id = f"bench:{tag}:{index}:{seq}"
            try:
                transfer(transfer_id)
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:200]
                if errors > 50:
                    break
            else:
                latencies.append(time.monotonic() - now)
            now = time.monotonic()
        cpu = time.process_time() - cpu_started
        pipe.send({"latencies": latencies, "errors": errors, "first_error": first_error, "finished": now, "cpu": cpu})
    connection.close()


# --- wait-event sampling ----------------------------------------------------------------------------


class WaitSampler:
    """Samples pg_stat_activity of the benchmark's backends while a round runs."""

    def __init__(self, db: dict, interval: float = 0.05):
        self.db, self.interval = db, interval
        self.counts: Counter = Counter()
        self.other_active = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        import psycopg

        with psycopg.connect(dbname=self.db["name"], autocommit=True, **self.db["connect"]) as conn:
            while not self._stop.wait(self.interval):
                rows = conn.execute(
                    "select datname, state, wait_event_type, wait_event from pg_stat_activity "
                    "where backend_type = 'client backend' and pid <> pg_backend_pid()"
                ).fetchall()
                self.samples += 1
                for datname, state, wait_type, wait_event in rows:
                    if datname != self.db["name"]:
                        self.other_active += state == "active"
                    elif state == "active":
                        self.counts[f"{wait_type}:{wait_event}" if wait_type else "active(CPU)"] += 1
                    elif state == "idle in transaction":
                        self.counts["client, in tx"] += 1
                    elif state == "idle":
                        self.counts["client, no tx"] += 1

    def summary(self, top: int = 4) -> str:
        total = sum(self.counts.values()) or 1
        parts = [f"{name} {100 * n / total:.0f}%" for name, n in self.counts.most_common(top)]
        return ", ".join(parts)


# --- SQL ceiling (optional): the same statements from pgbench, no Python client ------------------------

_TRANSFER_INSERT = (
    "INSERT INTO ledger_transfer (id, kind, asset, amount, debit_account_id, credit_account_id, code, reference, "
    "pending_id, linked_to, payload_hash, created_at) VALUES ({tid}, 'posted', '{asset}', {amount}, :t, :{credit}, "
    "'bench-sql', '', NULL, '', encode(sha256(convert_to(concat_ws(E'\\x1f', 'posted', '{asset}', '{amount}', "
    ":t, :{credit}, 'bench-sql', '', ''), 'UTF8')), 'hex'), now());"
)
_DEBIT_TRADER = (
    "UPDATE ledger_ledgeraccount SET debits_posted = debits_posted + {amount}, credits_posted = credits_posted + 0, "
    "debits_pending = debits_pending + 0, credits_pending = credits_pending + 0 "
    "WHERE id = :t AND credits_posted >= debits_posted + debits_pending + {amount};"
)
# What the naive ORM variant sends (it updates only the counter it changes).
_NAIVE_DEBIT_TRADER = (
    "UPDATE ledger_ledgeraccount SET debits_posted = debits_posted + {amount} "
    "WHERE id = :t AND credits_posted >= debits_posted + debits_pending + {amount};"
)
_NAIVE_CREDIT_SYSTEM = "UPDATE ledger_ledgeraccount SET credits_posted = credits_posted + {amount} WHERE id = :h;"
_CREDIT_SYSTEM = (
    "UPDATE ledger_ledgeraccount SET debits_posted = debits_posted + 0, credits_posted = credits_posted + {amount}, "
    "debits_pending = debits_pending + 0, credits_pending = credits_pending + 0 WHERE id = :{credit};"
)


def _pgbench_scripts(prepared: dict, tag: str) -> dict[str, str]:
    """pgbench scripts issuing the statements each variant sends (captured from Django), with
    the same accounts, amounts and payload hash, so the ledger stays consistent."""
    fmt = {"asset": ASSET, "amount": f"{AMOUNT.normalize():f}"}
    traders = " ".join(f"when :client_id = {i} then {pk}" for i, pk in enumerate(prepared["traders"]))
    fees = [prepared["fees"][b] for b in sorted(prepared["fees"])]
    buckets = " ".join(f"when :k = {i} then {pk}" for i, pk in enumerate(fees))
    head = [
        f"\\set t case {traders} else {prepared['traders'][0]} end",
    ]
    # A unique id per transaction without an extra round trip: the transaction's own xid.
    tid = {v: f"('bench-sql:{tag}:{v[0]}:' || pg_current_xact_id()::text)" for v in VARIANTS}
    naive = [
        *head,
        f"\\set h {fees[0]}",
        "BEGIN;",
        "SELECT id FROM ledger_ledgeraccount WHERE id = :h LIMIT 21 FOR UPDATE;",
        _NAIVE_DEBIT_TRADER.format(**fmt),
        _TRANSFER_INSERT.format(credit="h", tid=tid["naive"], **fmt),
        _NAIVE_CREDIT_SYSTEM.format(**fmt),
        "COMMIT;",
    ]
    bucketed = head + [
        f"\\set k random(0, {len(fees) - 1})",
        f"\\set b case {buckets} else {fees[0]} end",
        "BEGIN;",
        "SELECT id, kind, asset, amount, debit_account_id, credit_account_id, code, reference, pending_id, linked_to, "
        f"payload_hash, created_at FROM ledger_transfer WHERE id IN ({tid['bucketed']}) ORDER BY created_at DESC, id DESC;",
        f"SELECT id, payload_hash, error_code, message, created_at FROM ledger_transferrejection WHERE id IN ({tid['bucketed']});",
        "SAVEPOINT s1;",
        _TRANSFER_INSERT.format(credit="b", tid=tid["bucketed"], **fmt),
        "\\if :t < :b",  # account rows in primary-key order, as transfers_execute does
        _DEBIT_TRADER.format(**fmt),
        _CREDIT_SYSTEM.format(credit="b", **fmt),
        "\\else",
        _CREDIT_SYSTEM.format(credit="b", **fmt),
        _DEBIT_TRADER.format(**fmt),
        "\\endif",
        "RELEASE SAVEPOINT s1;",
        "COMMIT;",
    ]
    return {"bucketed": "\n".join(bucketed) + "\n", "naive": "\n".join(naive) + "\n"}


def _pgbench_path() -> str | None:
    import glob
    import shutil

    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _sql_ceiling(args, prepared: dict, db: dict) -> dict[str, float] | None:
    import re
    import tempfile

    pgbench = _pgbench_path()
    if not pgbench:
        print("sql ceiling: pgbench not found, skipped")
        return None
    tag = uuid.uuid4().hex[:10]
    scripts = _pgbench_scripts(prepared, tag)
    connect = db["connect"]
    env = dict(os.environ)
    if "password" in connect:
        env["PGPASSWORD"] = str(connect["password"])
    base = [
        pgbench,
        "-n",
        "-c",
        str(args.connections),
        "-j",
        str(min(args.connections, os.cpu_count() or 1)),
        "-T",
        str(max(1, round(args.seconds))),
    ]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if key in connect:
            base += [flag, str(connect[key])]
    if args.synchronous_commit:
        env["PGOPTIONS"] = f"-c synchronous_commit={args.synchronous_commit}"
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    print()
    print(
        f"==> SQL ceiling: the same statements from pgbench ({pgbench}), no Python client, "
        f"{args.connections} clients x {args.seconds:g} s x {args.rounds} rounds"
    )
    print(f"{'round':>5}  {'variant':8}  {'transactions':>12}  {'transfers/s':>11}  {'avg lat ms':>10}  {'failed':>6}")
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        for variant, text in scripts.items():
            Path(tmp, f"{variant}.sql").write_text(text)
        for round_no in range(1, args.rounds + 1):
            for variant in VARIANTS:
                sampler = WaitSampler(db) if not args.no_waits else None
                if sampler:
                    sampler.__enter__()
                out = subprocess.run(
                    [*base, "-f", str(Path(tmp, f"{variant}.sql")), db["name"]], capture_output=True, text=True, env=env
                )
                if sampler:
                    sampler.__exit__(None, None, None)
                text = out.stdout + out.stderr
                tps = re.search(r"^tps = ([0-9.]+)", text, re.M)
                lat = re.search(r"^latency average = ([0-9.]+) ms", text, re.M)
                done = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
                failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
                if out.returncode != 0 or not tps:
                    print(f"sql ceiling: pgbench failed ({variant}):\n{text[-1500:]}")
                    return None
                results[variant].append(float(tps.group(1)))
                print(
                    f"{round_no:>5}  {variant:8}  {done.group(1) if done else '?':>12}  {float(tps.group(1)):>11.1f}  "
                    f"{float(lat.group(1)) if lat else float('nan'):>10.2f}  {failed.group(1) if failed else '0':>6}"
                )
                print(
                    f"       load avg (1 min) {os.getloadavg()[0]:.2f}"
                    + (f"; backends: {sampler.summary()}" if sampler else "")
                    + (
                        f"; other databases' active backends: {sampler.other_active / max(1, sampler.samples):.2f} on average"
                        if sampler and sampler.other_active
                        else ""
                    ),
                    flush=True,
                )
    medians = {v: statistics.median(results[v]) for v in VARIANTS}
    for variant in VARIANTS:
        print(f"median sql {variant:8}: {medians[variant]:8.1f} transfers/s")
    print(f"ratio sql bucketed/naive: {medians['bucketed'] / medians['naive']:.2f}x")
    return medians


# --- main -------------------------------------------------------------------------------------------


def _machine(prepared: dict) -> list[str]:
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"machine:    nproc {nproc}, CPU {model}, {platform.system()} {platform.release()}",
        f"postgresql: {prepared['pg_version'].split(' on ')[0]} (synchronous_commit={prepared['synchronous_commit']}, "
        f"max_connections={prepared['max_connections']})",
        f"python:     {platform.python_version()} ({sys.executable})",
    ]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (one process each)")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each round of each variant")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs bucketed then naive")
    parser.add_argument(
        "--buckets",
        type=int,
        default=int(os.environ.get("LEDGER_SYSTEM_BUCKETS", 16)),
        help="LEDGER_SYSTEM_BUCKETS for the product variant (default: env or 16)",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--synchronous-commit",
        choices=["on", "off", "local", "remote_write", "remote_apply"],
        help="set synchronous_commit for the worker sessions (default: the server's)",
    )
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the benchmark database first")
    parser.add_argument("--no-waits", action="store_true", help="do not sample pg_stat_activity wait events")
    parser.add_argument(
        "--sql-ceiling",
        action="store_true",
        help="afterwards, run the same statements from pgbench (C client, no Django) for comparison",
    )
    args = parser.parse_args()
    if args.connections < 1 or args.rounds < 1 or args.buckets < 1 or args.seconds <= 0:
        parser.error("--connections, --rounds, --buckets and --seconds must be positive")

    db = _db_params(args.database_url)
    _environment(args)
    _ensure_database(db, fresh=args.fresh)

    import django

    django.setup()
    prepared = _prepare(args.connections, args.buckets)
    for line in _machine(prepared):
        print(line)
    print(
        f"database:   {db['name']}; {args.connections} connections x {args.seconds:g} s x {args.rounds} rounds; "
        f"{args.buckets} FEES buckets; transfer {AMOUNT} {ASSET} trader -> FEES, one durable transaction each"
    )
    print(f"load avg before start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    ctx = mp.get_context("spawn")
    workers = []
    print(f"==> starting {args.connections} worker processes", flush=True)
    for index, trader_pk in enumerate(prepared["traders"]):
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_worker, args=(index, trader_pk, prepared["fees"], child, args.synchronous_commit), daemon=True
        )
        process.start()
        workers.append((process, parent))
    for _process, pipe in workers:
        if not pipe.poll(120):
            sys.exit("a worker did not start within 120 s")
        pipe.recv()

    tag = uuid.uuid4().hex[:10]
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    header = f"{'round':>5}  {'variant':8}  {'transfers':>9}  {'elapsed s':>9}  {'transfers/s':>11}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}"
    try:
        for round_no in range(1, args.rounds + 1):
            for variant in VARIANTS:
                print(
                    f"--> round {round_no}/{args.rounds}: {variant} ({args.connections} connections, {args.seconds:g} s)",
                    flush=True,
                )
                start_at = time.monotonic() + 0.3
                sampler = WaitSampler(db) if not args.no_waits else None
                if sampler:
                    sampler.__enter__()
                for _, pipe in workers:
                    pipe.send((variant, f"{tag}:{variant[0]}{round_no}", start_at, args.seconds))
                replies = [pipe.recv() for _, pipe in workers]
                if sampler:
                    sampler.__exit__(None, None, None)
                latencies = sorted(x for r in replies for x in r["latencies"])
                elapsed = max(r["finished"] for r in replies) - start_at
                row = {
                    "round": round_no,
                    "variant": variant,
                    "transfers": len(latencies),
                    "elapsed": elapsed,
                    "tps": len(latencies) / elapsed,
                    "p50": 1000 * _percentile(latencies, 0.50),
                    "p99": 1000 * _percentile(latencies, 0.99),
                    "errors": sum(r["errors"] for r in replies),
                    "client_cpu_ms": 1000 * sum(r["cpu"] for r in replies) / max(1, len(latencies)),
                    "load": os.getloadavg()[0],
                    "first_error": next((r["first_error"] for r in replies if r["first_error"]), ""),
                    "waits": sampler.summary() if sampler else "",
                    "other_active": (sampler.other_active / max(1, sampler.samples)) if sampler else 0.0,
                }
                results[variant].append(row)
                print(header)
                print(
                    f"{row['round']:>5}  {row['variant']:8}  {row['transfers']:>9}  {row['elapsed']:>9.2f}  {row['tps']:>11.1f}  "
                    f"{row['p50']:>7.2f}  {row['p99']:>7.2f}  {row['errors']:>6}"
                )
                print(f"       client CPU {row['client_cpu_ms']:.2f} ms/transfer; load avg (1 min) {row['load']:.2f}")
                if row["waits"]:
                    print(
                        f"       backends: {row['waits']}"
                        + (
                            f"; other databases' active backends: {row['other_active']:.2f} on average"
                            if row["other_active"]
                            else ""
                        )
                    )
                if row["first_error"]:
                    print(f"       first error: {row['first_error']}")
                sys.stdout.flush()
    finally:
        for _process, pipe in workers:
            with contextlib.suppress(BrokenPipeError, OSError):
                pipe.send(None)
        for process, _ in workers:
            process.join(10)

    print()
    print(
        f"summary ({args.rounds} rounds, {args.connections} connections, {args.seconds:g} s each, {args.buckets} buckets):"
    )
    print(header)
    for variant in VARIANTS:
        for row in results[variant]:
            print(
                f"{row['round']:>5}  {row['variant']:8}  {row['transfers']:>9}  {row['elapsed']:>9.2f}  {row['tps']:>11.1f}  "
                f"{row['p50']:>7.2f}  {row['p99']:>7.2f}  {row['errors']:>6}"
            )
    medians = {v: statistics.median(r["tps"] for r in results[v]) for v in VARIANTS}
    p50s = {v: statistics.median(r["p50"] for r in results[v]) for v in VARIANTS}
    p99s = {v: statistics.median(r["p99"] for r in results[v]) for v in VARIANTS}
    for variant in VARIANTS:
        print(
            f"median {variant:8}: {medians[variant]:8.1f} transfers/s  (p50 {p50s[variant]:.2f} ms, p99 {p99s[variant]:.2f} ms)"
        )
    ratio = medians["bucketed"] / medians["naive"] if medians["naive"] else float("inf")
    print(f"ratio bucketed/naive: {ratio:.2f}x")
    errors = sum(r["errors"] for v in VARIANTS for r in results[v])
    if args.sql_ceiling:
        _sql_ceiling(args, prepared, db)

    from django.core.management import call_command
    from django.core.management.base import CommandError

    print()
    try:
        call_command("ledger_audit")
        audit_ok = True
    except CommandError as exc:
        print(f"ledger_audit: {exc}")
        audit_ok = False
    print(f"ledger_audit verdict: {'OK' if audit_ok else 'FAILED'}")
    return 0 if audit_ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
