"""Settlement back office: commit -> settled latency, sustained settlements/s and relay lag,
with the real processes (``manage.py run_relay``, a private redis-server as broker and venue
store, ``celery -A trading worker --concurrency 2``) on PostgreSQL.

Two variants, alternating round by round, the same processes with different settings:

* ``product`` -- the defaults: micro-batches (``SETTLEMENT_BATCH_SIZE`` 200, ``RELAY_BATCH_SIZE``
  1000), one 4-task chain per micro-batch;
* ``literal`` -- the literal design: ``SETTLEMENT_BATCH_SIZE=1``, ``RELAY_BATCH_SIZE=1`` and
  ``SETTLEMENT_STEP_CHAINS=1``, i.e. every order is its own intake task and its own 4-task
  chain (one task per step), no batching.

Each round, per variant: reset (truncate the settlement, outbox, lease/checkpoint and ledger
tables, FLUSHALL the private redis), then

0. drain phase: ``--drain`` events (default ``--orders``) written while nothing runs; worker +
   relay start and the backlog is timed from the first settlement accepted to the last settled:
   the back office's own rate, independent of how fast the one writer thread can commit;
1. latency phase: ``--rate`` orders/s for ``--seconds`` (the writer keeps an absolute schedule);
   commit->settled = ``Settlement.settled_at - event_created_at``; relay lag measured two ways;
2. burst phase: ``--orders`` events written as fast as one writer thread can, timed until all
   are settled (settlements/s = N / (last settled_at - first event_created_at)); bounded by the
   writer's own commit rate.

Events are written exactly as the options counter writes them: ``trading.outbox.outbox_write``
inside ``transaction.atomic()``, payload shaped like ``tests/settlement/conftest.py`` ``emit()``.
Simulated venue with ``latency_ms=2`` and no faults. No celery beat (no reconcile/recover
sweeps; ``--beat`` adds it).

    .venv/bin/python bench/settlement.py [--quick] [--orders 5000] [--rate 200] [--seconds 10] [--rounds 2] [--beat]

Uses BENCH_SETTLEMENT_DATABASE_URL (default postgres://root@127.0.0.1:5432/trading_bench_settlement;
its own database so that it never truncates under bench/ledger.py), creating and migrating it.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != BENCH_DIR]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine_lines  # noqa: E402
from tests.processes import Child as _Child  # noqa: E402
from tests.processes import free_port  # noqa: E402
BIN = Path(sys.executable).parent

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/trading_bench_settlement"
FORBIDDEN_DATABASES = {"trading", "test_trading", "postgres", "template0", "template1"}
INDEX = {"BTC": Decimal("65000"), "ETH": Decimal("3000")}
VENUE_FAULTS = "latency_ms=2,slippage_bps=5,fee_bps=10"
VARIANTS = {
    "product": {},
    "literal": {"SETTLEMENT_BATCH_SIZE": "1", "RELAY_BATCH_SIZE": "1", "SETTLEMENT_STEP_CHAINS": "1"},
}


def log(message: str) -> None:
    print(message, flush=True)


# --- database ---------------------------------------------------------------------------------------


def _db_params(url: str) -> dict:
    import environ

    config = environ.Env.db_url_config(url)
    if "postgres" not in config["ENGINE"]:
        sys.exit(f"bench/settlement.py needs PostgreSQL, not {url!r}")
    name = config["NAME"]
    if name in FORBIDDEN_DATABASES or name.startswith("test_"):
        sys.exit(f"refusing to benchmark on database {name!r}: use a dedicated one")
    params = {"host": config.get("HOST") or None, "port": config.get("PORT") or None, "user": config.get("USER") or None}
    if config.get("PASSWORD"):
        params["password"] = config["PASSWORD"]
    return {"name": name, "connect": {k: v for k, v in params.items() if v is not None}}


def _ensure_database(db: dict) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **db["connect"]) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [db["name"]]).fetchone():
            log(f"==> creating database {db['name']}")
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(db["name"])))


def _reset_tables() -> None:
    """Empty everything the back office writes; then the index prints the venue fills at."""
    from django.db import connection
    from django.utils import timezone

    from ledger.models import LedgerAccount, Transfer, TransferRejection
    from marketdata.models import IndexPrint
    from settlement.models import Counter, Settlement, SettlementError, SettlementStep
    from trading.models import Lease, OutboxEvent, SingletonCheckpoint

    models = [SettlementError, SettlementStep, Settlement, Counter, OutboxEvent, Lease, SingletonCheckpoint,
              Transfer, TransferRejection, LedgerAccount, IndexPrint]  # fmt: skip
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    now = timezone.now()
    for underlying, price in INDEX.items():
        IndexPrint.objects.create(underlying=underlying, ts=now, price=price, sources={})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- processes --------------------------------------------------------------------------------------


def Child(name: str, argv: list[str], env: dict, log_dir: Path) -> _Child:
    """A child process that keeps its first 2,000 lines in memory (a long run logs a lot)."""
    return _Child(name, argv, env, log_dir, keep_lines=2000)


class Stack:
    def __init__(self, database_url: str, redis_port: int, log_dir: Path, variant: str, beat: bool):
        self.log_dir = log_dir
        self.beat = beat
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "SETTLEMENT_VENUE": "simulated",
            "SETTLEMENT_VENUE_FAULTS": VENUE_FAULTS,
            "SETTLEMENT_VENUE_KEY_PREFIX": f"bench:venue:{uuid.uuid4().hex[:8]}",
            "DEBUG": "0",
            "HTTPS": "0",
            "PYTHONUNBUFFERED": "1",
            **VARIANTS[variant],
        }
        self.children: list[Child] = []

    def start(self) -> None:
        worker = Child("worker", [str(BIN / "celery"), "-A", "trading", "worker", "-Q", self.env["CELERY_QUEUE"],
                                  "-n", f"bench@%h-{self.env['CELERY_QUEUE']}", "-l", "info", "--concurrency", "2",
                                  "--without-gossip", "--without-mingle", "--without-heartbeat"],
                       self.env, self.log_dir).start()  # fmt: skip
        self.children.append(worker)
        relay = Child("relay", [sys.executable, "manage.py", "run_relay", "--ttl", "3"], self.env, self.log_dir).start()
        self.children.append(relay)
        if self.beat:
            self.children.append(Child("beat", [str(BIN / "celery"), "-A", "trading", "beat", "-l", "info", "-s",
                                                str(self.log_dir / "beat-schedule")], self.env, self.log_dir).start())  # fmt: skip
        worker.wait_for("ready.", timeout=90)
        relay.wait_for("LEADER", timeout=60)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def start_redis(port: int, log_dir: Path) -> Child:
    redis = Child("redis", [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no"], dict(os.environ), log_dir).start()  # fmt: skip
    redis.wait_for("Ready to accept connections", timeout=30)
    return redis


def flush_redis(port: int) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    client.flushall()
    client.close()


# --- writing events ---------------------------------------------------------------------------------


class Writer:
    """Outbox events as the options counter writes them (cf. tests/settlement/conftest.py emit)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.n = 0

    def emit(self) -> None:
        from django.db import transaction
        from django.utils import timezone

        from trading.outbox import outbox_write

        self.n += 1
        rng = self.rng
        kind = rng.choice(["open", "open", "close", "exercise"])
        topic = "options.exercise" if kind == "exercise" else "options.order"
        underlying = rng.choice(["BTC", "ETH"])
        usdt = Decimal(f"{rng.randint(50, 5000)}.{rng.randint(0, 999999):06d}")
        key = f"option_order:{900000 + self.n}"
        index = INDEX[underlying]
        payload = {
            "ref": key,
            "kind": kind,
            "order_id": 900000 + self.n,
            "user_id": 1,
            "series": f"{underlying}-20261225-65000-C",
            "underlying": underlying,
            "contracts": "1",
            "usdt": f"{usdt:.6f}",
            "underlying_qty": f"{(usdt / index).quantize(Decimal('0.00000001'))}",
            "index_price": f"{index}",
            "created_at": timezone.now().isoformat(),
        }
        with transaction.atomic():
            outbox_write(topic=topic, key=key, payload=payload)


def _counts() -> tuple[int, int, int]:
    from django.db import connection

    from settlement.models import Settlement
    from trading.models import OutboxEvent

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {OutboxEvent._meta.db_table}), count(*), "
            f"count(*) FILTER (WHERE state IN ('settled', 'manual_review', 'resolved')) FROM {Settlement._meta.db_table}"
        )
        return cursor.fetchone()


def _relay_checkpoint() -> dict:
    from trading.models import SingletonCheckpoint

    return SingletonCheckpoint.objects.filter(name="relay").values_list("value", flat=True).first() or {}


def wait_final(expected: int, timeout: float, label: str, samples: list | None = None) -> bool:
    """Poll until ``expected`` settlements are final; progress every 2 s; relay checkpoints sampled
    (not the one already there: it covers an earlier phase)."""
    started = last_print = time.monotonic()
    last_at = _relay_checkpoint().get("at")
    while True:
        written, accepted, final = _counts()
        if samples is not None:
            mark = _relay_checkpoint()
            if mark.get("at") and mark["at"] != last_at:
                last_at = mark["at"]
                samples.append(mark)
        if final >= expected:
            return True
        now = time.monotonic()
        if now - started > timeout:
            log(f"    {label}: TIMEOUT after {timeout:.0f}s: {final}/{expected} final")
            return False
        if now - last_print >= 2.0:
            last_print = now
            log(f"    {label}: {now - started:6.1f}s  written {written}  accepted {accepted}  final {final}/{expected}")
        time.sleep(0.02 if samples is not None else 0.2)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _latencies_ms(since: float = 0.0) -> dict:
    from django.db import connection

    from settlement.models import Settlement

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM settled_at - event_created_at) * 1000, "
            "extract(epoch FROM accepted_at - event_created_at) * 1000, "
            "extract(epoch FROM event_created_at), extract(epoch FROM settled_at), state "
            f"FROM {Settlement._meta.db_table} WHERE event_created_at >= to_timestamp(%s)",
            [since],
        )
        rows = cursor.fetchall()
    settled = [r for r in rows if r[4] == "settled"]
    return {
        "total": len(rows),
        "settled": len(settled),
        "not_settled": len(rows) - len(settled),
        "settle_ms": [float(r[0]) for r in settled],
        "accept_ms": [float(r[1]) for r in rows],
        "first_created": min((float(r[2]) for r in rows), default=0.0),
        "last_settled": max((float(r[3]) for r in settled), default=0.0),
    }


def _counters() -> dict:
    from settlement.models import Counter

    return dict(Counter.objects.values_list("name", "value"))


# --- one run ----------------------------------------------------------------------------------------


def run_variant(variant: str, args, redis_port: int, log_root: Path, round_no: int) -> dict:
    from django.db import connection

    log(f"--> round {round_no}/{args.rounds}: {variant} {VARIANTS[variant] or '(defaults: SETTLEMENT_BATCH_SIZE 200, RELAY_BATCH_SIZE 1000)'}")
    log("    reset: truncating settlement/outbox/lease/ledger tables, FLUSHALL redis")
    _reset_tables()
    flush_redis(redis_port)
    log_dir = log_root / f"r{round_no}-{variant}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(args.database_url, redis_port, log_dir, variant, args.beat)
    row = {"variant": variant, "round": round_no, "load_start": os.getloadavg()[0]}
    writer = Writer(seed=round_no)
    try:
        # 0. drain: a backlog written while nothing runs, then the processes start. Its rate
        # (first accepted -> last settled) is the back office's own, whatever the writer's.
        if args.drain:
            log(f"    drain phase: {args.drain} orders written with the back office stopped")
            start = time.monotonic()
            for _ in range(args.drain):
                writer.emit()
            log(f"    drain: written in {time.monotonic() - start:.1f} s; starting worker and relay")
        stack.start()
        if args.drain:
            row["drain_ok"] = wait_final(args.drain, args.timeout, "drain")
            from django.db import connection as conn

            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FILTER (WHERE state = 'settled'), extract(epoch FROM max(settled_at) - min(accepted_at)), "
                    "count(*) FILTER (WHERE state <> 'settled') FROM settlement_settlement"
                )
                n, span, bad = cursor.fetchone()
            row["drain_sps"] = n / float(span) if n and span else 0.0
            row["drain_ok"] = row["drain_ok"] and not bad
            log(f"    drain: {n} settled in {float(span or 0):.2f} s (first accepted -> last settled) = "
                f"{row['drain_sps']:.1f} settlements/s; load avg {os.getloadavg()[0]:.2f}")
        else:
            row["drain_sps"], row["drain_ok"] = float("nan"), True
        done_before = _counts()[2]
        # 1. latency at a fixed rate
        n_rate = int(args.rate * args.seconds)
        log(f"    latency phase: {n_rate} orders at {args.rate:g}/s")
        samples: list[dict] = []

        def write_paced():
            start = time.monotonic()
            for i in range(n_rate):
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                writer.emit()
            row["rate_write_s"] = time.monotonic() - start
            connection.close()

        phase_start = time.time()
        thread = threading.Thread(target=write_paced)
        thread.start()
        thread_done_ok = wait_final(done_before + n_rate, args.timeout, "latency", samples)
        thread.join()
        lat = _latencies_ms(since=phase_start)
        row["rate_achieved"] = n_rate / row["rate_write_s"] if row.get("rate_write_s") else float("nan")
        row["p50"], row["p99"], row["max"] = _pct(lat["settle_ms"], 0.5), _pct(lat["settle_ms"], 0.99), max(lat["settle_ms"] or [0])
        row["acc_p50"], row["acc_p99"] = _pct(lat["accept_ms"], 0.5), _pct(lat["accept_ms"], 0.99)
        # The relay's own figures (publish time - outbox created_at, per published batch), as
        # sampled from its checkpoint every ~20 ms: p50 of the batches' medians, p99 of their maxima.
        row["relay_batches_sampled"] = len(samples)
        row["relay_p50"] = _pct([s["lag_ms_p50"] for s in samples], 0.5)
        row["relay_p99"] = _pct([s["lag_ms_max"] for s in samples], 0.99)
        row["rate_ok"] = thread_done_ok and lat["not_settled"] == 0 and row["drain_ok"]
        log(f"    latency: commit->settled p50 {row['p50']:.1f} ms  p99 {row['p99']:.1f} ms  max {row['max']:.1f} ms; "
            f"relay lag (relay checkpoint) p50 {row['relay_p50']:.2f} ms p99 {row['relay_p99']:.2f} ms "
            f"[{len(samples)} batches sampled]; commit->accepted p50 {row['acc_p50']:.1f} p99 {row['acc_p99']:.1f} ms"
            f"; writer achieved {row['rate_achieved']:.0f}/s")
        base_total = done_before + lat["total"]
        # 2. burst
        log(f"    burst phase: {args.orders} orders as fast as possible")
        burst_start = time.time()

        def write_burst():
            start = time.monotonic()
            for _ in range(args.orders):
                writer.emit()
            row["burst_write_s"] = time.monotonic() - start
            connection.close()

        thread = threading.Thread(target=write_burst)
        thread.start()
        ok = wait_final(base_total + args.orders, args.timeout, "burst")
        thread.join()
        wall = time.time() - burst_start
        from django.db import connection as conn

        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), extract(epoch FROM min(event_created_at)), extract(epoch FROM max(settled_at)), "
                "count(*) FILTER (WHERE state <> 'settled') FROM settlement_settlement WHERE event_created_at >= to_timestamp(%s)",
                [burst_start],
            )
            n, first, last, bad = cursor.fetchone()
        row["burst_n"] = n
        row["burst_s"] = float(last) - float(first) if n and last else float("nan")
        row["sps"] = n / row["burst_s"] if n and last else 0.0
        row["burst_wall_s"] = wall
        row["burst_write_rate"] = args.orders / row["burst_write_s"]
        row["burst_ok"] = ok and not bad
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT step, count(*), count(DISTINCT started_at), avg(extract(epoch FROM finished_at - started_at)) * 1000 "
                "FROM settlement_settlementstep WHERE status = 'done' GROUP BY step ORDER BY step"
            )
            row["steps"] = "; ".join(f"step {s}: {n / max(1, b):.1f}/batch, {float(ms):.0f} ms/batch" for s, n, b, ms in cursor.fetchall())
        log(f"    steps (whole round): {row['steps']}")
        counters = _counters()
        row["counters"] = {k: v for k, v in counters.items() if v}
        row["load_end"] = os.getloadavg()[0]
        log(f"    burst: {n} settled in {row['burst_s']:.2f} s (first commit -> last settled) = {row['sps']:.1f} settlements/s; "
            f"writer {row['burst_write_rate']:.0f} events/s; wall {wall:.1f} s; counters {row['counters'] or '{}'}; "
            f"load avg {row['load_end']:.2f}")
    finally:
        stack.stop()
    return row


# --- main -------------------------------------------------------------------------------------------


def _machine() -> list[str]:
    redis_version = subprocess.run([shutil.which("redis-server") or "/usr/bin/redis-server", "--version"],
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
    return machine_lines() + [
        f"redis:      {redis_version.split(' sha=')[0]}",
        f"python:     {platform.python_version()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run: 600-order burst, 3 s latency phase, 3 rounds")
    parser.add_argument("--orders", type=int, help="burst size (default 5000; --quick 600)")
    parser.add_argument("--drain", type=int, help="backlog written before the processes start (default: --orders; 0: none)")
    parser.add_argument("--rate", type=float, default=200.0, help="orders/s of the latency phase")
    parser.add_argument("--seconds", type=float, help="duration of the latency phase (default 10; --quick 3)")
    parser.add_argument("--rounds", type=int, help="rounds, each runs product then literal (default 2; --quick 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting for a phase after this many s")
    parser.add_argument("--beat", action="store_true", help="also run celery beat (reconcile/recover sweeps)")
    parser.add_argument("--variants", default="product,literal", help="comma-separated subset of product,literal")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_SETTLEMENT_DATABASE_URL") or DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    args.orders = args.orders or (600 if args.quick else 5000)
    args.drain = args.orders if args.drain is None else args.drain
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.rounds = args.rounds or (3 if args.quick else 2)
    variants = [v for v in args.variants.split(",") if v]
    if any(v not in VARIANTS for v in variants) or args.orders < 1 or args.rate <= 0 or args.rounds < 1:
        parser.error("bad --variants/--orders/--rate/--rounds")

    db = _db_params(args.database_url)
    _ensure_database(db)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "trading.settings"
    os.environ.pop("REDIS_URL", None)  # the bench process only writes outbox rows and reads results
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("HTTPS", "0")
    import django

    django.setup()
    from django.core.management import call_command

    log("==> migrating the benchmark database")
    call_command("migrate", interactive=False, verbosity=0)
    for line in _machine():
        log(line)
    log(f"database:   {db['name']}; latency phase {args.rate:g}/s x {args.seconds:g} s, burst {args.orders}, "
        f"{args.rounds} round(s); venue simulated {VENUE_FAULTS}; 1 worker --concurrency 2 + 1 relay"
        + (" + beat" if args.beat else ""))
    log(f"load avg before start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    log_root = Path(tempfile.mkdtemp(prefix="bench-settlement-"))
    redis_port = free_port()
    redis = start_redis(redis_port, log_root)
    log(f"logs: {log_root}; private redis on port {redis_port}")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    try:
        for round_no in range(1, args.rounds + 1):
            for variant in variants:
                results[variant].append(run_variant(variant, args, redis_port, log_root, round_no))
    finally:
        redis.stop()

    log("")
    log(f"summary ({args.rounds} round(s); rate {args.rate:g}/s x {args.seconds:g} s; burst {args.orders}):")
    header = (f"{'round':>5}  {'variant':8}  {'p50 ms':>7}  {'p99 ms':>7}  {'relay p50':>9}  {'relay p99':>9}  "
              f"{'acc p50':>7}  {'acc p99':>7}  {'drain/s':>8}  {'settl/s':>8}  {'burst s':>7}  {'load':>5}  ok")  # fmt: skip
    log(header)
    for variant in variants:
        for r in results[variant]:
            log(f"{r['round']:>5}  {variant:8}  {r['p50']:>7.1f}  {r['p99']:>7.1f}  {r['relay_p50']:>9.2f}  {r['relay_p99']:>9.2f}  "
                f"{r['acc_p50']:>7.1f}  {r['acc_p99']:>7.1f}  {r['drain_sps']:>8.1f}  {r['sps']:>8.1f}  {r['burst_s']:>7.2f}  {r['load_end']:>5.2f}  "
                f"{'yes' if r['rate_ok'] and r['burst_ok'] else 'NO'}")
    med = {}
    for variant in variants:
        rows = results[variant]
        med[variant] = {k: statistics.median(r[k] for r in rows) for k in ("p50", "p99", "relay_p50", "relay_p99", "acc_p50", "acc_p99", "sps", "drain_sps")}
        m = med[variant]
        log(f"median {variant:8}: {m['drain_sps']:8.1f} settlements/s draining a backlog, {m['sps']:8.1f}/s in the burst (writer-bound); commit->settled at {args.rate:g}/s p50 {m['p50']:.1f} ms "
            f"p99 {m['p99']:.1f} ms; relay lag p50 {m['relay_p50']:.2f} ms p99 {m['relay_p99']:.2f} ms (relay checkpoint), "
            f"commit->accepted p50 {m['acc_p50']:.1f} ms p99 {m['acc_p99']:.1f} ms (upper bound)")
    if "product" in med and "literal" in med and med["literal"]["sps"]:
        log(f"ratio product/literal (burst settlements/s): {med['product']['sps'] / med['literal']['sps']:.2f}x")
        if med["literal"]["drain_sps"]:
            log(f"ratio product/literal (drain settlements/s): {med['product']['drain_sps'] / med['literal']['drain_sps']:.2f}x")
    if "product" in med:
        m = med["product"]
        goals = [
            (">= 2,000 settlements/s (drain)", m["drain_sps"] >= 2000),
            (">= 10x literal (drain)", "literal" in med and med["literal"]["drain_sps"] and m["drain_sps"] / med["literal"]["drain_sps"] >= 10),
            ("p50 < 50 ms", m["p50"] < 50), ("p99 < 150 ms", m["p99"] < 150), ("relay lag p99 < 10 ms", m["relay_p99"] < 10),
        ]  # fmt: skip
        log("goals (product): " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in goals))
    log(f"load avg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failed = any(not (r["rate_ok"] and r["burst_ok"]) for rows in results.values() for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
