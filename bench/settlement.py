"""Settlement back office: commit -> settled latency, sustained settlements/s and relay lag,
with the real processes (``manage.py run_relay``, a private redis-server as broker and venue
store, ``celery -A trading worker --concurrency 2``) on PostgreSQL.

Variants, alternating round by round, the same processes with different settings:

* ``product`` -- the defaults: micro-batches (``SETTLEMENT_BATCH_SIZE`` 200, ``RELAY_BATCH_SIZE``
  1000), one 4-task chain per micro-batch;
* ``broker`` -- the defaults without the relay's resident intake (``RELAY_TAKE_IN=0``): every
  batch goes through the broker to the intake workers;
* ``literal`` -- the literal design: ``SETTLEMENT_BATCH_SIZE=1``, ``RELAY_BATCH_SIZE=1`` and the
  tasks of ``bench/settlement_literal.py`` (its relay publishes to its own intake task; the
  workers load it with ``--include``), i.e. every order is its own intake task and its own
  4-task chain (one task per step), no batching.

Each round, per variant: reset (truncate the settlement, outbox, lease/checkpoint and ledger
tables, FLUSHALL the private redis), then

0. drain phase: ``--drain`` events (default ``--orders``) written while nothing runs; worker +
   relay start and the backlog is timed from the first settlement accepted to the last settled:
   the back office's own rate, independent of how fast the one writer thread can commit;
1. latency phase: ``--rate`` orders/s for ``--seconds`` (the writer keeps an absolute schedule);
   commit->settled = ``Settlement.settled_at - event_created_at``; relay lag measured two ways;
   p50/p99 per stage (``STAGES``: relay read, relay publish, broker, intake, venue hop, venue
   calls, step 3+4) from the settlements' stage times, and CPU per settlement per process;
2. burst phase: ``--orders`` events written as fast as one writer thread can, timed until all
   are settled (settlements/s = N / (last settled_at - first event_created_at)); bounded by the
   writer's own commit rate.

Events are written exactly as the options counter writes them: ``trading.outbox.outbox_write``
inside ``transaction.atomic()``, payload shaped like ``tests/settlement/conftest.py`` ``emit()``.
Simulated venue with ``latency_ms=2`` and no faults. No celery beat (no reconcile/recover
sweeps; ``--beat`` adds it).

    .venv/bin/python bench/settlement.py [--quick] [--orders 5000] [--rate 200] [--seconds 10] [--rounds 2] [--beat]

``--venue-latency-ms 600`` runs the slow-venue phases instead, with celery beat (the 3-second
reconciliation and the recovery sweep run as in production) and variants ``product`` (step 3
on the venue queue's thread-pool worker), ``inline`` (the previous process model: the intake
worker waits for the venue itself, 8 venue threads per process) and ``literal``:

1. sustained: ``--rate`` orders/s (default 200) for ``--seconds`` (default 30) from
   ``--writers`` threads on one absolute schedule; commit->settled p50/p99/max, per fifth of
   the phase too (does latency rise through the run?), and settlements/s. A variant that
   cannot keep up is cut off ``--baseline-grace`` seconds after the writers stop; its rate is
   then what it settled by the cut-off over the time since the first commit;
2. backlog (``--backlog-variants``, default product): the workers stop (relay and beat keep
   running), ``--backlog-seconds`` (default 60) of orders at ``--rate`` pile up in the broker,
   the workers start again; ``outbox_republished`` counts what the reconciliation sent again,
   against the orders in the backlog, and the backlog's drain rate is timed.

    .venv/bin/python bench/settlement.py --venue-latency-ms 600 [--rate 200] [--seconds 30] [--backlog-seconds 60]

Uses BENCH_SETTLEMENT_DATABASE_URL (default postgres://root@127.0.0.1:5432/trading_bench_settlement;
its own database so that it never truncates under bench/ledger.py), creating and migrating it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import secrets
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
    # With bench/settlement_literal.py's relay and tasks (LITERAL_RELAY, LITERAL_WORKER).
    "literal": {"SETTLEMENT_BATCH_SIZE": "1", "RELAY_BATCH_SIZE": "1"},
    # The previous process model: no venue queue, the intake task waits for the venue on
    # SETTLEMENT_VENUE_CONCURRENCY threads (8, as before) of its worker process.
    "inline": {"SETTLEMENT_VENUE_QUEUE": "", "SETTLEMENT_VENUE_CONCURRENCY": "8"},
    # Without the relay's resident intake: every batch goes through the broker to the
    # intake workers (the process model before it).
    "broker": {"RELAY_TAKE_IN": "0"},
}
SLOW_VARIANTS = "product,inline"
LITERAL_RELAY = [sys.executable, "-m", "bench.settlement_literal", "relay"]
LITERAL_WORKER = ["--include", "bench.settlement_literal"]
VENUE_POOL = "--pool threads --concurrency 8"  # as the Procfile runs the venue worker


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
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
    }
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
    def __init__(
        self,
        database_url: str,
        redis_port: int,
        log_dir: Path,
        variant: str,
        beat: bool,
        venue_faults: str = VENUE_FAULTS,
    ):
        self.log_dir = log_dir
        self.beat = beat
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "SETTLEMENT_VENUE": "simulated",
            "SETTLEMENT_VENUE_FAULTS": venue_faults,
            "SETTLEMENT_VENUE_KEY_PREFIX": f"bench:venue:{uuid.uuid4().hex[:8]}",
            "DEBUG": "0",
            "HTTPS": "0",
            "PYTHONUNBUFFERED": "1",
            **VARIANTS[variant],
        }
        self.children: list[Child] = []
        self.workers: list[Child] = []
        self.starts = 0
        self.venue_pool = VENUE_POOL
        self.literal = variant == "literal"

    def start_workers(self) -> None:
        """As the Procfile runs them: the intake worker (prefork, 2 processes) and, unless
        the variant runs step 3 in the intake, the venue queue's thread-pool worker."""
        self.starts += 1
        queue = self.env["CELERY_QUEUE"]
        self.workers = [Child(f"worker-{self.starts}", [str(BIN / "celery"), "-A", "trading", "worker", "-Q", queue,
                                                        "-n", f"bench@%h-{queue}", "-l", "info", "--concurrency", "2",
                                                        "--without-gossip", "--without-mingle", "--without-heartbeat",
                                                        *(LITERAL_WORKER if self.literal else [])],
                              self.env, self.log_dir).start()]  # fmt: skip
        venue_queue = self.env.get("SETTLEMENT_VENUE_QUEUE", f"{queue}.venue")
        if venue_queue:
            self.workers.append(Child(f"venue-{self.starts}", [str(BIN / "celery"), "-A", "trading", "worker", "-Q", venue_queue,
                                                               "-n", f"venue@%h-{queue}", "-l", "info", *self.venue_pool.split(),
                                                               "--without-gossip", "--without-mingle", "--without-heartbeat"],
                                      self.env, self.log_dir).start())  # fmt: skip
        for worker in self.workers:
            worker.wait_for("ready.", timeout=90)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def start(self) -> None:
        argv = (
            [*LITERAL_RELAY, "--ttl", "3"] if self.literal else [sys.executable, "manage.py", "run_relay", "--ttl", "3"]
        )
        relay = Child("relay", argv, self.env, self.log_dir).start()
        self.children.append(relay)
        if self.beat:
            self.children.append(Child("beat", [str(BIN / "celery"), "-A", "trading", "beat", "-l", "info", "-s",
                                                str(self.log_dir / "beat-schedule")], self.env, self.log_dir).start())  # fmt: skip
        self.start_workers()
        relay.wait_for("LEADER", timeout=60)

    def stop(self) -> None:
        self.stop_workers()
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
    """Outbox events as the options counter writes them (cf. tests/settlement/conftest.py emit).
    Several writer threads may share one ``numbers`` iterator (unique keys), each with its
    own Writer."""

    def __init__(self, seed: int, numbers=None):
        self.rng = random.Random(seed)
        self.numbers = numbers if numbers is not None else itertools.count(1)

    def emit(self) -> None:
        from django.db import transaction
        from django.utils import timezone

        from trading.outbox import outbox_write

        n = next(self.numbers)
        rng = self.rng
        kind = rng.choice(["open", "open", "close", "exercise"])
        topic = "options.exercise" if kind == "exercise" else "options.order"
        underlying = rng.choice(["BTC", "ETH"])
        usdt = Decimal(f"{rng.randint(50, 5000)}.{rng.randint(0, 999999):06d}")
        key = f"option_order:{900000 + n}"
        index = INDEX[underlying]
        payload = {
            "ref": key,
            "kind": kind,
            "order_id": 900000 + n,
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
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


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


# Where commit->settled goes, stage by stage: each as (name, SQL of its end minus its start).
STAGES = (
    ("commit -> relay read", "s.relay_seen_at - s.event_created_at"),
    ("relay batch formation + publish", "s.relay_sent_at - s.relay_seen_at"),
    ("broker -> intake started", "s.intake_started_at - s.relay_sent_at"),
    ("intake started -> accepted", "s.accepted_at - s.intake_started_at"),
    ("intake transaction (steps 1-2)", "two.finished_at - s.accepted_at"),
    ("commit, hand-on, claim for step 3", "three.started_at - two.finished_at"),
    ("venue calls (step 3)", "three.finished_at - three.started_at"),
    ("step 3+4 ledger and state", "s.settled_at - three.finished_at"),
    ("commit -> settled", "s.settled_at - s.event_created_at"),
    ("commit -> venue swap sent", "three.started_at - s.event_created_at"),
)


def _stage_times(since: float) -> dict[str, tuple[float, float, int]]:
    """p50, p99 (ms) and count per stage, over the settled settlements whose event was
    written since. Every stamp is taken before its transaction commits, so each stage ends a
    commit early (the next stage carries it)."""
    from django.db import connection

    columns = ", ".join(f"extract(epoch FROM {expr}) * 1000" for _, expr in STAGES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM settlement_settlement s "
            "JOIN settlement_settlementstep two ON two.settlement_id = s.id AND two.step = 2 "
            "JOIN settlement_settlementstep three ON three.settlement_id = s.id AND three.step = 3 "
            "WHERE s.state = 'settled' AND s.event_created_at >= to_timestamp(%s)",
            [since],
        )
        rows = cursor.fetchall()
    out = {}
    for k, (name, _) in enumerate(STAGES):
        values = [float(r[k]) for r in rows if r[k] is not None]
        out[name] = (_pct(values, 0.5), _pct(values, 0.99), len(values))
    return out


def _log_stages(stages: dict[str, tuple[float, float, int]]) -> None:
    log(f"    {'stage':36} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}")
    for name, (p50, p99, n) in stages.items():
        log(f"    {name:36} {p50:>8.1f} {p99:>8.1f} {n:>6}")


def _counters() -> dict:
    from settlement.models import Counter

    return dict(Counter.objects.values_list("name", "value"))


# --- one run ----------------------------------------------------------------------------------------


def run_variant(variant: str, args, redis_port: int, log_root: Path, round_no: int) -> dict:
    from django.db import connection

    log(
        f"--> round {round_no}/{args.rounds}: {variant} {VARIANTS[variant] or '(defaults: SETTLEMENT_BATCH_SIZE 200, RELAY_BATCH_SIZE 1000)'}"
    )
    log("    reset: truncating settlement/outbox/lease/ledger tables, FLUSHALL redis")
    _reset_tables()
    flush_redis(redis_port)
    log_dir = log_root / f"r{round_no}-{variant}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(args.database_url, redis_port, log_dir, variant, args.beat)
    stack.venue_pool = args.venue_pool
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
            log(
                f"    drain: {n} settled in {float(span or 0):.2f} s (first accepted -> last settled) = "
                f"{row['drain_sps']:.1f} settlements/s; load avg {os.getloadavg()[0]:.2f}"
            )
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
        cpu_before = cpu_snapshot(stack, args.db_name)
        thread = threading.Thread(target=write_paced)
        thread.start()
        thread_done_ok = wait_final(done_before + n_rate, args.timeout, "latency", samples)
        thread.join()
        cpu_after = cpu_snapshot(stack, args.db_name)
        lat = _latencies_ms(since=phase_start)
        row["rate_achieved"] = n_rate / row["rate_write_s"] if row.get("rate_write_s") else float("nan")
        row["p50"], row["p99"], row["max"] = (
            _pct(lat["settle_ms"], 0.5),
            _pct(lat["settle_ms"], 0.99),
            max(lat["settle_ms"] or [0]),
        )
        row["acc_p50"], row["acc_p99"] = _pct(lat["accept_ms"], 0.5), _pct(lat["accept_ms"], 0.99)
        # The relay's own figures (publish time - outbox created_at, per published batch), as
        # sampled from its checkpoint every ~20 ms: p50 of the batches' medians, p99 of their maxima.
        row["relay_batches_sampled"] = len(samples)
        row["relay_p50"] = _pct([s["lag_ms_p50"] for s in samples], 0.5)
        row["relay_p99"] = _pct([s["lag_ms_max"] for s in samples], 0.99)
        row["rate_ok"] = thread_done_ok and lat["not_settled"] == 0 and row["drain_ok"]
        log(
            f"    latency: commit->settled p50 {row['p50']:.1f} ms  p99 {row['p99']:.1f} ms  max {row['max']:.1f} ms; "
            f"relay lag (relay checkpoint) p50 {row['relay_p50']:.2f} ms p99 {row['relay_p99']:.2f} ms "
            f"[{len(samples)} batches sampled]; commit->accepted p50 {row['acc_p50']:.1f} p99 {row['acc_p99']:.1f} ms"
            f"; writer achieved {row['rate_achieved']:.0f}/s"
        )
        # CPU per settlement, which the other sessions' load does not change as it changes latency.
        row["cpu"] = {role: (cpu_after[role] - cpu_before.get(role, 0.0)) * 1000 / n_rate for role in cpu_after}
        log(
            "    CPU per settlement in the latency phase: "
            + ", ".join(f"{role} {ms:.2f}" for role, ms in sorted(row["cpu"].items()))
            + f" = {sum(row['cpu'].values()):.2f} ms"
        )
        row["stages"] = _stage_times(phase_start)
        log(f"    stages at {args.rate:g}/s (settled events of the latency phase):")
        _log_stages(row["stages"])
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
            row["steps"] = "; ".join(
                f"step {s}: {n / max(1, b):.1f}/batch, {float(ms):.0f} ms/batch" for s, n, b, ms in cursor.fetchall()
            )
        log(f"    steps (whole round): {row['steps']}")
        counters = _counters()
        row["counters"] = {k: v for k, v in counters.items() if v}
        row["load_end"] = os.getloadavg()[0]
        log(
            f"    burst: {n} settled in {row['burst_s']:.2f} s (first commit -> last settled) = {row['sps']:.1f} settlements/s; "
            f"writer {row['burst_write_rate']:.0f} events/s; wall {wall:.1f} s; counters {row['counters'] or '{}'}; "
            f"load avg {row['load_end']:.2f}"
        )
    finally:
        stack.stop()
    return row


# --- slow venue ------------------------------------------------------------------------------------


def write_paced(rate: float, seconds: float, writers: int, numbers, seed: int) -> dict:
    """``rate`` events/s for ``seconds`` from ``writers`` threads on one absolute schedule
    (thread k writes slots k, k + writers, ...). Returns what was written and how fast."""
    total = int(rate * seconds)
    start = time.monotonic() + 0.05
    ends: list[float] = []

    def run(k: int) -> None:
        from django.db import connection

        writer = Writer(seed=seed * 100 + k, numbers=numbers)
        try:
            for i in range(k, total, writers):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                writer.emit()
        finally:
            ends.append(time.monotonic())
            connection.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = max(ends) - start
    return {"n": total, "seconds": took, "rate": total / took if took > 0 else float("nan")}


def _phase_rows(since: float) -> list[tuple]:
    """(event_created_at, settled_at or None) as epoch seconds, for events written since."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM event_created_at), extract(epoch FROM settled_at) "
            "FROM settlement_settlement WHERE event_created_at >= to_timestamp(%s) ORDER BY event_created_at",
            [since],
        )
        return [(float(c), None if t is None else float(t)) for c, t in cursor.fetchall()]


def _outbox_since(since: float) -> tuple[int, float, float]:
    """How many events were written since, and when the first and the last were."""
    from django.db import connection

    from trading.models import OutboxEvent

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)) "
            f"FROM {OutboxEvent._meta.db_table} WHERE created_at >= to_timestamp(%s)",
            [since],
        )
        n, first, last = cursor.fetchone()
    return int(n), float(first or 0.0), float(last or 0.0)


def _stages(since: float) -> str:
    """Where commit->settled goes, p50 / p99 per stage, for settled events written since:
    commit -> accepted (relay, broker, intake start), accepted -> steps 1-2 committed (the
    intake), -> step 3 started (venue queue and claim), -> settled (venue round trip and the
    step 3+4 commit)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM s.accepted_at - s.event_created_at), extract(epoch FROM two.finished_at - s.accepted_at), "
            "extract(epoch FROM three.started_at - two.finished_at), extract(epoch FROM s.settled_at - three.started_at) "
            "FROM settlement_settlement s JOIN settlement_settlementstep two ON two.settlement_id = s.id AND two.step = 2 "
            "JOIN settlement_settlementstep three ON three.settlement_id = s.id AND three.step = 3 "
            "WHERE s.state = 'settled' AND s.event_created_at >= to_timestamp(%s)",
            [since],
        )
        rows = cursor.fetchall()
    names = ("commit->accepted", "intake", "venue queue+claim", "venue+commit")
    parts = []
    for k, name in enumerate(names):
        values = sorted(float(r[k]) * 1000 for r in rows)
        parts.append(f"{name} {_pct(values, 0.5):.0f}/{_pct(values, 0.99):.0f}")
    return "; ".join(parts) + " ms (p50/p99)"


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(stack: Stack, database: str) -> dict[str, float]:
    """CPU seconds so far, per role: the stack's processes (each with its process group:
    a prefork worker's pool processes count with it), the PostgreSQL backends serving the
    benchmark database, and this process (the writers)."""
    from django.db import connection

    groups = {}
    for child in [*stack.workers, *stack.children]:
        if child.alive:
            groups[child.proc.pid] = child.name.split("-")[0]
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pgid = os.getpgid(int(entry.name))
        except OSError:
            continue
        if pgid in groups:
            totals[groups[pgid]] = totals.get(groups[pgid], 0.0) + _proc_cpu(int(entry.name))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])
        totals["postgres"] = sum(_proc_cpu(pid) for (pid,) in cursor.fetchall())
    times = os.times()
    totals["writers"] = times.user + times.system
    return totals


def sustained_phase(args, row: dict, numbers, seed: int, cut_off: bool, stack: Stack | None = None) -> None:
    """Orders at --rate for --seconds; commit->settled and settlements/s. ``cut_off``: stop
    waiting --baseline-grace s after the writers (a variant that cannot keep up)."""
    log(f"    sustained phase: {args.rate:g} orders/s x {args.seconds:g} s from {args.writers} writer thread(s)")
    since = time.time()
    done_before = _counts()[2]
    cpu_before = cpu_snapshot(stack, args.db_name) if stack else {}
    written = {}
    thread = threading.Thread(
        target=lambda: written.update(write_paced(args.rate, args.seconds, args.writers, numbers, seed))
    )
    thread.start()
    started = time.monotonic()
    n = int(args.rate * args.seconds)
    while True:
        if not thread.is_alive() and "ended" not in written:
            written["ended"] = time.monotonic()
        final = _counts()[2] - done_before
        if final >= n:
            break
        if time.monotonic() - started > args.timeout or (
            cut_off and "ended" in written and time.monotonic() - written["ended"] > args.baseline_grace
        ):
            break
        time.sleep(0.5)
    thread.join()
    cut_at = time.time()
    cpu_after = cpu_snapshot(stack, args.db_name) if stack else {}
    rows = _phase_rows(since)
    written_n, first_commit, last_commit = _outbox_since(since)
    settled = [(c, t) for c, t in rows if t is not None]
    lat = sorted((t - c) * 1000 for c, t in settled)
    row["offered"] = written["rate"]
    row["written"] = written_n
    row["settled"] = len(settled)
    row["all_settled"] = len(settled) == written_n
    last = max((t for _, t in settled), default=first_commit)
    span = (last if row["all_settled"] else cut_at) - first_commit
    row["sps"] = len(settled) / span if span > 0 else 0.0
    # While orders kept coming, after a 5 s warm-up: does the back office settle as fast as
    # they arrive? (The whole-phase rate above also counts the tail after the last order.)
    window = (first_commit + 5.0, last_commit)
    inside = sum(1 for _, t in settled if window[0] <= t <= window[1])
    row["steady_sps"] = inside / (window[1] - window[0]) if window[1] - window[0] > 1 else float("nan")
    row["p50"], row["p99"], row["max"] = _pct(lat, 0.5), _pct(lat, 0.99), (lat[-1] if lat else float("nan"))
    # Latency per fifth of the phase (by commit time): a queue shows as a rising series.
    fifths = []
    if rows:
        t0, t1 = rows[0][0], rows[-1][0]
        width = max((t1 - t0) / 5, 1e-9)
        for k in range(5):
            part = sorted((t - c) * 1000 for c, t in settled if k == min(4, int((c - t0) / width)))
            fifths.append(_pct(part, 0.5))
    row["fifths"] = fifths
    log(
        f"    sustained: offered {row['offered']:.1f}/s ({written_n} orders); settled {len(settled)}/{written_n}"
        f"{'' if row['all_settled'] else ' by the cut-off'}, {row['sps']:.1f} settlements/s over the phase, "
        f"{row['steady_sps']:.1f}/s while orders came; commit->settled "
        f"p50 {row['p50']:.0f} ms p99 {row['p99']:.0f} ms max {row['max']:.0f} ms; p50 per fifth "
        + " / ".join(f"{x:.0f}" for x in fifths)
        + f" ms; load avg {load_line()}"
    )
    row["stages"] = _stages(since)
    log(f"    stages: {row['stages']}")
    if cpu_after and row["all_settled"]:
        per = {role: (cpu_after[role] - cpu_before.get(role, 0.0)) * 1000 / len(settled) for role in cpu_after}
        row["cpu_ms"] = sum(per.values())
        log(
            "    CPU per settlement: "
            + ", ".join(f"{role} {ms:.2f}" for role, ms in sorted(per.items()))
            + f" = {row['cpu_ms']:.2f} ms: {os.cpu_count()} cores are busy at {os.cpu_count() * 1000 / row['cpu_ms']:.0f} settlements/s "
            "(the others' processes on the machine not counted)"
        )


def backlog_phase(args, row: dict, stack: Stack, numbers, seed: int) -> None:
    """Workers down for --backlog-seconds while orders keep coming (the relay and beat keep
    running); then they return. What did the reconciliation send again?"""
    before = _counters()
    log(
        f"    backlog phase: workers stopped; {args.rate:g} orders/s for {args.backlog_seconds:g} s pile up in the broker"
    )
    stack.stop_workers()
    since = time.time()
    written = write_paced(args.rate, args.backlog_seconds, args.writers, numbers, seed)
    log(f"    backlog: {written['n']} orders written at {written['rate']:.1f}/s; workers start again")
    back = time.time()
    stack.start_workers()
    expected = _counts()[0]
    ok = wait_final(expected, args.timeout, "backlog")
    time.sleep(args.settle_grace)  # sweeps that were due when the last settled have run
    after = _counters()
    rows = _phase_rows(since)
    settled = [t for _, t in rows if t is not None]
    row["backlog_n"] = len(rows)
    row["backlog_ok"] = ok and len(settled) == written["n"]
    row["republished"] = after.get("outbox_republished", 0) - before.get("outbox_republished", 0)
    row["recovered"] = after.get("settlement_recovered", 0) - before.get("settlement_recovered", 0)
    row["backlog_clear_s"] = (max(settled) - back) if settled else float("nan")
    row["backlog_sps"] = len(settled) / row["backlog_clear_s"] if settled and row["backlog_clear_s"] > 0 else 0.0
    row["republished_pct"] = 100.0 * row["republished"] / max(1, written["n"])
    log(
        f"    backlog: {len(settled)}/{written['n']} settled {row['backlog_clear_s']:.1f} s after the workers were started "
        f"again ({row['backlog_sps']:.1f} settlements/s, worker start-up included); outbox_republished {row['republished']} "
        f"= {row['republished_pct']:.2f} % of the backlog; settlement_recovered {row['recovered']}; load avg {load_line()}"
    )


def load_line() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_slow_variant(variant: str, args, redis_port: int, log_root: Path, round_no: int) -> dict:
    faults = f"latency_ms={args.venue_latency_ms:g},slippage_bps=5,fee_bps=10"
    log(f"--> round {round_no}/{args.rounds}: {variant} {VARIANTS[variant] or '(defaults)'}; venue {faults}")
    log("    reset: truncating settlement/outbox/lease/ledger tables, FLUSHALL redis")
    _reset_tables()
    flush_redis(redis_port)
    log_dir = log_root / f"r{round_no}-{variant}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(args.database_url, redis_port, log_dir, variant, beat=True, venue_faults=faults)
    stack.venue_pool = args.venue_pool
    row = {"variant": variant, "round": round_no, "load_start": load_line()}
    numbers = itertools.count(1)
    try:
        stack.start()
        sustained_phase(args, row, numbers, seed=round_no, cut_off=variant != "product", stack=stack)
        if args.backlog_seconds > 0 and variant in args.backlog_variants.split(","):
            backlog_phase(args, row, stack, numbers, seed=round_no + 50)
        row["load_end"] = load_line()
    finally:
        stack.stop()
    return row


def slow_summary(args, results: dict[str, list[dict]]) -> int:
    log("")
    log(
        f"summary: venue latency {args.venue_latency_ms:g} ms; {args.rate:g} orders/s x {args.seconds:g} s; "
        f"backlog {args.backlog_seconds:g} s; {args.rounds} round(s)"
    )
    log(f"{'round':>5}  {'variant':8}  {'offered/s':>9}  {'settled/s':>9}  {'steady/s':>8}  {'settled':>11}  {'p50 ms':>7}  "
        f"{'p99 ms':>8}  {'max ms':>8}  {'republished':>15}  {'backlog/s':>9}  load (1/5/15 min)")  # fmt: skip
    for variant, rows in results.items():
        for r in rows:
            republished = f"{r['republished']} ({r['republished_pct']:.2f}%)" if "republished" in r else "-"
            backlog = f"{r['backlog_sps']:.1f}" if "backlog_sps" in r else "-"
            log(
                f"{r['round']:>5}  {variant:8}  {r['offered']:>9.1f}  {r['sps']:>9.1f}  {r['steady_sps']:>8.1f}  {r['settled']:>5}/{r['written']:<5}  "
                f"{r['p50']:>7.0f}  {r['p99']:>8.0f}  {r['max']:>8.0f}  {republished:>15}  {backlog:>9}  {r['load_end']}"
            )
    med = {
        v: {k: statistics.median(r[k] for r in rows) for k in ("sps", "p50", "p99", "offered")}
        for v, rows in results.items()
        if rows
    }
    for variant, m in med.items():
        log(
            f"median {variant:8}: {m['sps']:.1f} settlements/s at {m['offered']:.1f} offered; commit->settled p50 {m['p50']:.0f} ms p99 {m['p99']:.0f} ms"
        )
    if "product" in med:
        for base in ("inline", "literal"):
            if base not in med:
                continue
            if med[base]["sps"]:
                log(
                    f"ratio product/{base} (settlements/s): {med['product']['sps'] / med[base]['sps']:.1f}x; "
                    f"p99 {med[base]['p99'] / max(med['product']['p99'], 1e-9):.1f}x lower"
                )
            else:
                log(f"ratio product/{base}: {base} settled nothing within the phase and its grace")
        rows = results["product"]
        # Sustained: settled as fast as 200/s arrived while they arrived (2 % slack for the
        # writers' schedule and the window's edges), and everything settled.
        steady = statistics.median(r["steady_sps"] for r in rows)
        sustained = all(r["all_settled"] for r in rows) and steady >= 196
        backlog = [r for r in rows if "republished" in r]
        goals = [
            (f">= 200 orders/s sustained ({steady:.1f}/s settled while 200/s came, all settled)", sustained),
            ("commit->settled p99 < 2 s", med["product"]["p99"] < 2000),
        ]
        if backlog:
            goals.append((f"re-published < 1 % of orders under a {args.backlog_seconds:g} s backlog",
                          all(r["republished_pct"] < 1.0 and r["backlog_ok"] for r in backlog)))  # fmt: skip
        log(
            f"goals (product, venue latency {args.venue_latency_ms:g} ms): "
            + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in goals)
        )
    log(f"load avg at end: {load_line()}")
    product_rows = results.get("product", [])
    return 1 if any(not r["all_settled"] or not r.get("backlog_ok", True) for r in product_rows) else 0


# --- main -------------------------------------------------------------------------------------------


def _machine() -> list[str]:
    redis_version = subprocess.run([shutil.which("redis-server") or "/usr/bin/redis-server", "--version"],
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
    return [
        *machine_lines(),
        f"redis:      {redis_version.split(' sha=')[0]}",
        f"python:     {platform.python_version()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller run: 600-order burst, 3 s latency phase, 3 rounds"
    )
    parser.add_argument("--orders", type=int, help="burst size (default 5000; --quick 600)")
    parser.add_argument(
        "--drain", type=int, help="backlog written before the processes start (default: --orders; 0: none)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="orders/s of the latency phase")
    parser.add_argument("--seconds", type=float, help="duration of the latency phase (default 10; --quick 3)")
    parser.add_argument("--rounds", type=int, help="rounds, each runs product then literal (default 2; --quick 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting for a phase after this many s")
    parser.add_argument("--beat", action="store_true", help="also run celery beat (reconcile/recover sweeps)")
    parser.add_argument(
        "--variants",
        help="comma-separated subset of product,literal,inline (default product,literal; "
        f"with --venue-latency-ms {SLOW_VARIANTS})",
    )
    parser.add_argument(
        "--venue-latency-ms", type=float, help="run the slow-venue phases with this simulated venue round trip"
    )
    parser.add_argument("--writers", type=int, default=2, help="writer threads of the slow-venue phases")
    parser.add_argument(
        "--venue-pool",
        default=VENUE_POOL,
        help=f"the venue worker's pool options (default: {VENUE_POOL!r}, as the Procfile)",
    )
    parser.add_argument(
        "--backlog-seconds", type=float, default=60.0, help="slow venue: how long the workers stay down"
    )
    parser.add_argument("--backlog-variants", default="product", help="slow venue: variants that run the backlog phase")
    parser.add_argument(
        "--baseline-grace",
        type=float,
        default=20.0,
        help="slow venue: stop waiting for a variant that cannot keep up this long after the writers",
    )
    parser.add_argument(
        "--settle-grace",
        type=float,
        default=4.0,
        help="slow venue: after the backlog settled, let due sweeps run this long before counting",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_SETTLEMENT_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    args = parser.parse_args()
    slow = args.venue_latency_ms is not None
    args.orders = args.orders or (600 if args.quick else 5000)
    args.drain = args.orders if args.drain is None else args.drain
    args.seconds = args.seconds or (3.0 if args.quick else 30.0 if slow else 10.0)
    args.rounds = args.rounds or (1 if slow else 3 if args.quick else 2)
    args.variants = args.variants or (SLOW_VARIANTS if slow else "product,literal")
    variants = [v for v in args.variants.split(",") if v]
    if any(v not in VARIANTS for v in variants) or args.orders < 1 or args.rate <= 0 or args.rounds < 1:
        parser.error("bad --variants/--orders/--rate/--rounds")

    db = _db_params(args.database_url)
    args.db_name = db["name"]
    _ensure_database(db)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "trading.settings"
    os.environ.pop("REDIS_URL", None)  # the bench process only writes outbox rows and reads results
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("HTTPS", "0")
    # Stack mode refuses to start without a signing key; the bench's processes sign nothing
    # that outlives the run.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
    import django

    django.setup()
    from django.core.management import call_command

    log("==> migrating the benchmark database")
    call_command("migrate", interactive=False, verbosity=0)
    for line in _machine():
        log(line)
    if slow:
        log(
            f"database:   {db['name']}; slow venue latency_ms={args.venue_latency_ms:g}: sustained {args.rate:g}/s x {args.seconds:g} s "
            f"({args.writers} writers), backlog {args.backlog_seconds:g} s ({args.backlog_variants}); {args.rounds} round(s); "
            "1 worker --concurrency 2 + 1 venue worker --pool threads --concurrency 8 (product) + 1 relay + beat"
        )
    else:
        log(
            f"database:   {db['name']}; latency phase {args.rate:g}/s x {args.seconds:g} s, burst {args.orders}, "
            f"{args.rounds} round(s); venue simulated {VENUE_FAULTS}; 1 worker --concurrency 2 (+ 1 venue worker "
            "--pool threads --concurrency 8 for product) + 1 relay" + (" + beat" if args.beat else "")
        )
    log(f"load avg before start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    log_root = Path(tempfile.mkdtemp(prefix="bench-settlement-"))
    redis_port = free_port()
    redis = start_redis(redis_port, log_root)
    log(f"logs: {log_root}; private redis on port {redis_port}")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    try:
        for round_no in range(1, args.rounds + 1):
            for variant in variants:
                run = run_slow_variant if slow else run_variant
                results[variant].append(run(variant, args, redis_port, log_root, round_no))
    finally:
        redis.stop()
    if slow:
        return slow_summary(args, results)

    log("")
    log(f"summary ({args.rounds} round(s); rate {args.rate:g}/s x {args.seconds:g} s; burst {args.orders}):")
    header = (f"{'round':>5}  {'variant':8}  {'p50 ms':>7}  {'p99 ms':>7}  {'relay p50':>9}  {'relay p99':>9}  "
              f"{'acc p50':>7}  {'acc p99':>7}  {'drain/s':>8}  {'settl/s':>8}  {'burst s':>7}  {'load':>5}  ok")  # fmt: skip
    log(header)
    for variant in variants:
        for r in results[variant]:
            log(
                f"{r['round']:>5}  {variant:8}  {r['p50']:>7.1f}  {r['p99']:>7.1f}  {r['relay_p50']:>9.2f}  {r['relay_p99']:>9.2f}  "
                f"{r['acc_p50']:>7.1f}  {r['acc_p99']:>7.1f}  {r['drain_sps']:>8.1f}  {r['sps']:>8.1f}  {r['burst_s']:>7.2f}  {r['load_end']:>5.2f}  "
                f"{'yes' if r['rate_ok'] and r['burst_ok'] else 'NO'}"
            )
    med = {}
    for variant in variants:
        rows = results[variant]
        med[variant] = {
            k: statistics.median(r[k] for r in rows)
            for k in ("p50", "p99", "relay_p50", "relay_p99", "acc_p50", "acc_p99", "sps", "drain_sps")
        }
        m = med[variant]
        log(
            f"median {variant:8}: {m['drain_sps']:8.1f} settlements/s draining a backlog, {m['sps']:8.1f}/s in the burst (writer-bound); commit->settled at {args.rate:g}/s p50 {m['p50']:.1f} ms "
            f"p99 {m['p99']:.1f} ms; relay lag p50 {m['relay_p50']:.2f} ms p99 {m['relay_p99']:.2f} ms (relay checkpoint), "
            f"commit->accepted p50 {m['acc_p50']:.1f} ms p99 {m['acc_p99']:.1f} ms (upper bound)"
        )
    for variant in variants:
        rows = [r for r in results[variant] if r.get("stages")]
        if rows:
            cpu = {role: statistics.median(r["cpu"].get(role, 0.0) for r in rows) for role in rows[0]["cpu"]}
            log(
                f"CPU per settlement of {variant} at {args.rate:g}/s, median over rounds: "
                + ", ".join(f"{role} {ms:.2f}" for role, ms in sorted(cpu.items()))
                + f" = {sum(cpu.values()):.2f} ms"
            )
            log(f"stages of {variant} at {args.rate:g}/s, median over rounds:")
            _log_stages(
                {
                    name: tuple(statistics.median(r["stages"][name][k] for r in rows) for k in range(3))
                    for name, _ in STAGES
                }
            )
    if "product" in med and "literal" in med and med["literal"]["sps"]:
        log(f"ratio product/literal (burst settlements/s): {med['product']['sps'] / med['literal']['sps']:.2f}x")
        if med["literal"]["drain_sps"]:
            log(
                f"ratio product/literal (drain settlements/s): {med['product']['drain_sps'] / med['literal']['drain_sps']:.2f}x"
            )
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
