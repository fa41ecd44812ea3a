"""Order entry over HTTP: ``POST /api/v1/orders`` under load against the stack's web server
(gunicorn, workers of threads, as the Procfile's ``web`` line runs it), side by side with a
floor endpoint on the same server, and against the old layout (one daphne process serving
HTTP, as the Procfile's web line ran it before websockets moved to a ``ws`` line of their own).

The floor, ``POST /api/v1/bench/floor-orders`` (``bench/api_urls.py``), is a bare DRF view
behind the same middleware, JWT authentication, permission, parser and renderer, that
inserts the request's fields as one ``SpotOrder`` row: no validation, no instrument, index or
open-order lookups, no user lock, no ledger hold, no NOTIFY. Both variants run on one server
started with ``bench/api_settings.py`` (the platform's settings with that URLconf), so the
only difference is the endpoint.

Servers (``--servers``, in this order, one at a time): ``gunicorn`` = ``gunicorn trading.wsgi
-c python:trading.gunicorn_conf --workers N`` (``--workers``, default 2 = the Procfile's
``WEB_WORKERS``; threads per worker: ``WEB_THREADS`` from the environment, default 4, 1 =
sync workers), each thread on one persistent PostgreSQL connection (the settings'
``CONN_MAX_AGE``); ``daphne`` = one ``daphne trading.asgi:application`` with the database
connections of ``--db`` (the old web line: ``pool``). ``--daphne-variants`` (default
``product``) chooses what runs on daphne.

Load comes from this process: asyncio + aiohttp, HTTP/1.1 keep-alive, JWT access tokens for
``--users`` funded traders (each request from a random one), bodies from a fixed-seed mix:
70% resting limits, 20% limits through the mid (GTC and IOC), 10% market orders (by
quantity, and buys by quote amount). A thread prints a fresh BTC index every 2 s, as the
feed does (market orders need one). No engine runs unless ``--engine``: orders stay ``new``.

* **fixed rate** (open loop): request i is sent at t0 + i/rate whatever happened to the
  others; latency is measured from that scheduled time (so a server that falls behind shows
  it, no coordinated omission);
  Requests go over at most ``--connections`` keep-alive connections (a request waits
  for a free one), which bounds the server's concurrent requests (each holds a database
  connection, and the PostgreSQL server is shared);
* **max rate** (closed loop): ``--concurrency`` clients send back to back for the duration.

The web process's database connections (``--db``): ``close`` (default) sets the settings'
``CONN_MAX_AGE=0``; ``pool`` a psycopg pool; ``configured`` keeps the settings' default
``CONN_MAX_AGE=60``, under which daphne (a new thread per request) leaves each request's
connection open: it runs PostgreSQL out of connections within seconds at 250 req/s, so a
guard stops daphne above ``--max-backends`` connections.

Variants alternate (product, floor, floor, product, ...). Per phase: requests/s, latency
p50/p90/p99/max, errors (non-2xx or failed), and the server's CPU (all its processes: share
of one core and ms per request) to see whether the server is CPU-bound, and the PostgreSQL sessions opened per
request on the benchmark database. Then medians over the rounds,
the ratio product/floor on the first server, the product against the old layout, and the
goals (>= 0.8x the floor at max rate; p99 < 30 ms at 250/s), judged on the first server.

``--profile DIR`` runs the gunicorn workers under cProfile (one ``.prof`` file per worker in
DIR, written at exit; ``python -m pstats`` reads them): slower, for finding where the time
goes, not for figures.

    .venv/bin/python bench/api.py [--servers gunicorn,daphne] [--workers 2] [--daphne-variants product]
                                  [--rate 250] [--seconds 4] [--max-seconds 8] [--concurrency 16]
                                  [--rounds 2] [--users 300] [--db close|pool|configured] [--engine] [--fresh]
                                  [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import db_params, load, log, machine_lines, stack_secret  # noqa: E402

BIN = Path(sys.executable).parent

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/trading_bench_api"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
SYMBOL = "BTC-USDT"
MID = Decimal("65000")
INDEX = Decimal("65000.12")
PRODUCT_PATH = "/api/v1/orders"
FLOOR_PATH = "/api/v1/bench/floor-orders"
STREAM_VERSION = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _ensure_database(db: dict, fresh: bool) -> None:
    import psycopg

    with psycopg.connect(
        host=db["host"],
        port=db["port"],
        user=db["user"],
        password=db["password"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{db["name"]}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["name"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["name"]}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- set-up -----------------------------------------------------------------------------------------


def print_index() -> None:
    from django.utils import timezone

    from marketdata.models import IndexPrint

    IndexPrint.objects.create(underlying="BTC", ts=timezone.now(), price=INDEX, stale=False, sources={})


def prepare(args) -> list[str]:
    """Markets, funded traders (reused when present); returns one JWT access token per trader."""
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from ledger.services import deposit_credit
    from marketdata.services import instruments_sync
    from risk.models import RiskLimit

    call_command("migrate", interactive=False, verbosity=0)
    print_index()
    instruments_sync(index_prices={"BTC": INDEX, "ETH": Decimal("3400.55")})
    users = []
    created = 0
    for i in range(args.users):
        user, was_created = User.objects.get_or_create(email=f"bench-api-{i}@example.test")
        if was_created:
            deposit_credit(user=user, asset="USDT", amount=Decimal("10000000"), txid=f"bench-api-usdt-{user.pk}")
            deposit_credit(user=user, asset="BTC", amount=Decimal("1000"), txid=f"bench-api-btc-{user.pk}")
            created += 1
        users.append(user)
    log(f"==> {len(users)} traders ({created} new, funded 10,000,000 USDT and 1,000 BTC each)")
    # the traders hold more BTC than a retail account may: this database lifts the position
    # limit for everyone (an override row, as staff would), so every order runs every check
    RiskLimit.objects.update_or_create(
        name="max_position", target="BTC", tier=None, user=None, defaults={"value": Decimal(10) ** 9}
    )
    return [str(AccessToken.for_user(user)) for user in users]


def bodies(n: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        side = rnd.choice(("buy", "sell"))
        sign = 1 if side == "buy" else -1
        r = rnd.random()
        qty = str(Decimal(rnd.randint(50, 5000)) / 100000)
        if r < 0.7:
            data = {
                "side": side,
                "type": "limit",
                "price": str(MID - sign * Decimal(rnd.randint(1, 400)) / 2),
                "quantity": qty,
            }
        elif r < 0.9:
            data = {
                "side": side,
                "type": "limit",
                "price": str(MID + sign * Decimal(rnd.randint(1, 40)) / 2),
                "quantity": qty,
                "time_in_force": rnd.choice(("GTC", "IOC")),
            }
        elif side == "buy" and r < 0.95:
            data = {"side": "buy", "type": "market", "quote_quantity": str(rnd.randint(20, 2000))}
        else:
            data = {"side": side, "type": "market", "quantity": qty}
        out.append(json.dumps({"symbol": SYMBOL, **data}).encode())
    return out


DB_MODES = {
    "close": "CONN_MAX_AGE=0 (a new PostgreSQL connection per request, closed at its end)",
    "pool": "the Procfile's web settings: a psycopg pool of at most 16 connections (DB_POOL_SIZE=16)",
    "configured": "the settings' CONN_MAX_AGE=60 (one connection per request thread, left open)",
}


class Guard:
    """Stops the web server if it holds more than ``limit`` connections to the benchmark
    database: the PostgreSQL server is shared, and running it out of connections breaks
    everyone else's work (as the ``configured`` mode does within seconds)."""

    def __init__(self, db: dict, server, limit: int):
        self.db, self.server, self.limit = db, server, limit
        self.stop = threading.Event()
        self.tripped = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        import psycopg

        with psycopg.connect(
            host=self.db["host"],
            port=self.db["port"],
            user=self.db["user"],
            password=self.db["password"] or None,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            while not self.stop.wait(0.05):
                count = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.db["name"]]
                ).fetchone()[0]
                if count > self.limit:
                    self.tripped = count
                    log(f"!! {count} connections to {self.db['name']}: stopping {self.server.name}")
                    self.server.kill()
                    return


class Ticker:
    """A fresh index every 2 s (the feed's job in the stack), so market orders are accepted."""

    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        from django.db import connection

        try:
            while not self.stop.wait(2.0):
                print_index()
        finally:
            connection.close()


# --- the server --------------------------------------------------------------------------------------


class Server:
    def __init__(self, argv: list[str], env: dict, log_path: Path, name: str):
        self.argv, self.env, self.log_path, self.name = argv, env, log_path, name
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=open(self.log_path, "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def cpu(self) -> float:
        """User + system CPU seconds so far of the process and its descendants alive now (a
        gunicorn master and its workers), plus those of its children that ended and were
        waited for."""
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        total, frontier = 0, {self.proc.pid}
        while frontier:
            total += sum(stats[pid][1] for pid in frontier if pid in stats)
            frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier}
        return total / CLK_TCK

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def wait_http(port: int, server: Server, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited; see {server.log_path}:\n{server.log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{server.name} did not answer on port {port} within {timeout:.0f}s")


# --- load --------------------------------------------------------------------------------------------


def _pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def _send(session, url, token, body, results, scheduled=None):
    started = time.perf_counter()
    status = 0
    try:
        async with session.post(
            url, data=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        ) as response:
            await response.read()
            status = response.status
    except Exception as exc:  # a refused or dropped connection is an error of the run
        status = f"{type(exc).__name__}"
    done = time.perf_counter()
    results.append(((done - (scheduled if scheduled is not None else started)) * 1000, status))


async def fixed_rate(
    url: str, tokens: list[str], payloads: list[bytes], rate: float, seconds: float, rnd, connections: int
) -> dict:
    import aiohttp

    n = int(rate * seconds)
    results: list = []
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter() + 0.05
        tasks = []
        lag = []
        for i in range(n):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag.append(time.perf_counter() - at)
            tasks.append(
                asyncio.create_task(
                    _send(session, url, rnd.choice(tokens), payloads[i % len(payloads)], results, scheduled=at)
                )
            )
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return _summary(results, elapsed, sender_lag_p99=_pct(lag, 0.99) * 1000)


async def max_rate(url: str, tokens: list[str], payloads: list[bytes], concurrency: int, seconds: float, rnd) -> dict:
    import aiohttp

    results: list = []
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    counter = iter(range(10**9))
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def client():
            while time.perf_counter() < deadline:
                i = next(counter)
                await _send(session, url, rnd.choice(tokens), payloads[i % len(payloads)], results)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return _summary(results, elapsed)


def _summary(results: list, elapsed: float, **extra) -> dict:
    ok = [ms for ms, status in results if isinstance(status, int) and 200 <= status < 300]
    errors: dict = {}
    for _, status in results:
        if not (isinstance(status, int) and 200 <= status < 300):
            errors[status] = errors.get(status, 0) + 1
    latencies = [ms for ms, _ in results]
    return {
        "n": len(results),
        "ok": len(ok),
        "rps": len(ok) / elapsed,
        "elapsed": elapsed,
        "errors": errors,
        "p50": _pct(latencies, 0.5),
        "p90": _pct(latencies, 0.9),
        "p99": _pct(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        **extra,
    }


def db_sessions() -> tuple[int, int]:
    """(sessions ever opened, backends now) on the benchmark database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions, numbackends FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()


def run_phase(kind: str, variant: str, args, port: int, server: Server, tokens, payloads, seed: int) -> dict:
    url = f"http://127.0.0.1:{port}{PRODUCT_PATH if variant == 'product' else FLOOR_PATH}"
    rnd = random.Random(seed)
    sessions0, _ = db_sessions()
    cpu0, wall0 = server.cpu(), time.monotonic()
    if kind == "fixed":
        row = asyncio.run(fixed_rate(url, tokens, payloads, args.rate, args.seconds, rnd, args.connections))
    else:
        row = asyncio.run(max_rate(url, tokens, payloads, args.concurrency, args.max_seconds, rnd))
    cpu, wall = server.cpu() - cpu0, time.monotonic() - wall0
    _, backends = db_sessions()
    time.sleep(1.0)  # the statistics of sessions are flushed about once a second
    sessions, _ = db_sessions()
    row.update(
        db_sessions_per_req=(sessions - sessions0) / max(1, row["n"]),
        db_backends=backends,
        variant=variant,
        kind=kind,
        server_core=cpu / wall,
        server_ms_per_req=cpu / max(1, row["n"]) * 1000,
        load=os.getloadavg()[0],
        server=server.name,
    )
    errors = ", ".join(f"{k}: {v}" for k, v in row["errors"].items()) or "none"
    what = f"{args.rate:g}/s open loop" if kind == "fixed" else f"max, {args.concurrency} clients"
    log(
        f"    {server.name:8} {variant:7} {what:>18}: {row['rps']:7.1f} req/s ok  p50 {row['p50']:6.1f}  "
        f"p90 {row['p90']:6.1f}  p99 {row['p99']:7.1f}  max {row['max']:7.1f} ms  errors {errors}; "
        f"server {row['server_core'] * 100:3.0f}% of a core, "
        f"{row['server_ms_per_req']:.2f} ms CPU/req; new DB sessions/req {row['db_sessions_per_req']:.2f}, "
        f"backends at end {row['db_backends']}; load {load()}"
    )
    return row


# --- main --------------------------------------------------------------------------------------------


def _machine() -> list[str]:
    import aiohttp
    import daphne
    import gunicorn

    return [
        *machine_lines(),
        f"python:     {platform.python_version()}; gunicorn {gunicorn.__version__}; daphne {daphne.__version__}; "
        f"load generator aiohttp {aiohttp.__version__}",
    ]


def start_server(kind: str, args, port: int, env: dict, log_dir: Path) -> Server:
    server_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.api_settings"}
    server_env.pop("DB_POOL_SIZE", None)
    server_env.pop("CONN_MAX_AGE", None)
    if kind == "gunicorn":
        # the Procfile's web line: workers of threads, a persistent connection per thread (CONN_MAX_AGE)
        server_env["DB_POOL_SIZE"] = "0"
        config = "python:bench.api_profile" if args.profile else "python:trading.gunicorn_conf"
        if args.profile:
            server_env["BENCH_PROFILE_DIR"] = str(Path(args.profile).resolve())
        argv = [str(BIN / "gunicorn"), "trading.wsgi", "-c", config, "--bind", f"127.0.0.1:{port}",
                "--workers", str(args.workers)]  # fmt: skip
    else:
        if args.db == "pool":
            server_env["DB_POOL_SIZE"] = "16"
        elif args.db == "close":
            server_env["CONN_MAX_AGE"] = "0"
        argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "trading.asgi:application"]
    return Server(argv, server_env, log_dir / f"{kind}.log", kind).start()


SERVER_LABELS = {
    "gunicorn": "gunicorn, {workers} workers x {threads} threads (the Procfile's web line)",
    "daphne": "one daphne process (the old web line)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="gunicorn,daphne", help="web servers to run, in turn: gunicorn, daphne")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn's workers (the Procfile's WEB_WORKERS)")
    parser.add_argument("--rate", type=float, default=250.0, help="requests/s of the open-loop phase")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of the open-loop phase")
    parser.add_argument("--max-seconds", type=float, default=8.0, help="duration of the max-rate phase")
    parser.add_argument("--concurrency", type=int, default=16, help="clients of the max-rate phase")
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="client connections of the open-loop phase (requests beyond wait for one)",
    )
    parser.add_argument(
        "--db",
        choices=("close", "pool", "configured"),
        default="pool",
        help="daphne's database connections: close = CONN_MAX_AGE=0 (the settings' env knob: "
        "one connection per request, closed at its end), pool = the old web line's psycopg pool (DB_POOL_SIZE=16, "
        "the default), configured = the settings' default CONN_MAX_AGE=60, which leaks a connection per request "
        "thread under ASGI (guarded by --max-backends). gunicorn's threads keep one connection each",
    )
    parser.add_argument(
        "--max-backends",
        type=int,
        default=40,
        help="stop the server if it holds more PostgreSQL connections than this (the server is shared)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--phases", default="fixed,max")
    parser.add_argument("--variants", default="product,floor", help="endpoints on the first server")
    parser.add_argument("--daphne-variants", default="product", help="endpoints on daphne when it is not first")
    parser.add_argument("--engine", action="store_true", help="also run `manage.py run_engine` (orders get matched)")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the benchmark database first")
    parser.add_argument("--profile", metavar="DIR", help="run gunicorn's workers under cProfile, files in DIR")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_API_DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_API_REDIS_URL") or DEFAULT_REDIS_URL)
    args = parser.parse_args()
    servers = [v for v in args.servers.split(",") if v]
    phases = [p for p in args.phases.split(",") if p]
    plan = {}
    for n, kind in enumerate(servers):
        wanted = args.daphne_variants if kind == "daphne" and n > 0 else args.variants
        plan[kind] = [v for v in wanted.split(",") if v]
    if (
        not servers
        or not set(servers) <= {"gunicorn", "daphne"}
        or not set(phases) <= {"fixed", "max"}
        or not all(variants and set(variants) <= {"product", "floor"} for variants in plan.values())
        or args.rounds < 1
    ):
        parser.error("bad --servers/--phases/--variants/--daphne-variants/--rounds")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    db = db_params(args.database_url)
    _ensure_database(db, args.fresh)
    stack_secret()
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "DEBUG": "0",
        "HTTPS": "0",
        "JWT_ACCESS_MINUTES": "600",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(
        {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DEBUG", "HTTPS", "JWT_ACCESS_MINUTES", "LOG_LEVEL")}
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "trading.settings"
    import django

    django.setup()
    for line in _machine():
        log(line)
    log(f"load avg before start: {load()}")
    tokens = prepare(args)
    payloads = bodies(20_000, seed=7)
    ticker = Ticker()
    ticker.thread.start()

    log_dir = Path(os.environ.get("BENCH_LOG_DIR") or f"/tmp/bench-api-{os.getpid()}")
    log_dir.mkdir(parents=True, exist_ok=True)
    engine = None
    if args.engine:
        engine = Server(
            [sys.executable, "manage.py", "run_engine", "--symbol", SYMBOL], env, log_dir / "engine.log", "engine"
        ).start()
    results: dict[tuple[str, str, str], list[dict]] = {}
    tripped = {}
    try:
        for kind in servers:
            variants = plan[kind]
            port = free_port()
            web = start_server(kind, args, port, env, log_dir)
            guard = Guard(db, web, args.max_backends)
            try:
                wait_http(port, web)
                guard.thread.start()
                log(
                    f"== {SERVER_LABELS[kind].format(workers=args.workers, threads=os.environ.get('WEB_THREADS', '4'))} on port {port} (settings "
                    f"bench.api_settings; logs {log_dir}); endpoints: {', '.join(variants)}; {args.users} traders; "
                    f"phases: {args.rate:g}/s open loop for {args.seconds:g} s over at most {args.connections} "
                    f"connections, max rate with {args.concurrency} clients for {args.max_seconds:g} s; engine "
                    f"{'running' if engine else 'not running'}; database connections: "
                    + ("one persistent connection per worker thread" if kind == "gunicorn" else DB_MODES[args.db])
                    + f"; stopped if it holds more than {args.max_backends} of them"
                )
                # warm up the endpoints (imports, connections, caches), untimed
                for variant in variants:
                    url = f"http://127.0.0.1:{port}{PRODUCT_PATH if variant == 'product' else FLOOR_PATH}"
                    warm = asyncio.run(max_rate(url, tokens, payloads, 4, 1.5, random.Random(1)))
                    if warm["ok"] == 0:
                        raise SystemExit(f"{kind} {variant}: no successful request while warming up: {warm['errors']}")
                for round_no in range(1, args.rounds + 1):
                    order = variants if round_no % 2 else list(reversed(variants))
                    log(f"--> {kind} round {round_no}/{args.rounds}")
                    for phase in phases:
                        for variant in order:
                            if guard.tripped:
                                break
                            row = run_phase(
                                phase, variant, args, port, web, tokens, payloads, seed=round_no * 100 + len(results)
                            )
                            results.setdefault((kind, phase, variant), []).append(row)
                            time.sleep(0.5)
            finally:
                guard.stop.set()
                web.stop()
                if guard.tripped:
                    tripped[kind] = guard.tripped
    finally:
        ticker.stop.set()
        if engine:
            engine.stop()

    log("")
    log(f"summary ({args.rounds} rounds; medians; latency in ms from the scheduled send in the open-loop phase):")
    med = {}
    for (kind, phase, variant), rows in results.items():
        med[(kind, phase, variant)] = m = {
            k: statistics.median(r[k] for r in rows)
            for k in ("rps", "p50", "p90", "p99", "max", "server_core", "server_ms_per_req")
        }
        errors = sum(sum(r["errors"].values()) for r in rows)
        label = f"{args.rate:g}/s" if phase == "fixed" else "max rate"
        log(
            f"  {kind:8} {label:>8} {variant:7}: {m['rps']:7.1f} req/s  p50 {m['p50']:6.1f}  p90 {m['p90']:6.1f}  "
            f"p99 {m['p99']:7.1f}  errors {errors}  server {m['server_core'] * 100:.0f}% of a core, "
            f"{m['server_ms_per_req']:.2f} ms CPU/req"
        )
    first = servers[0]
    goals = []
    if (first, "max", "product") in med and (first, "max", "floor") in med:
        product, floor = med[(first, "max", "product")], med[(first, "max", "floor")]
        ratio = product["rps"] / floor["rps"]
        cpu = product["server_ms_per_req"] / floor["server_ms_per_req"]
        log(f"ratio product/floor at max rate on {first}: {ratio:.2f}x req/s (server CPU per request {cpu:.2f}x)")
        goals.append((f">= 0.8x the floor at max rate ({first})", ratio >= 0.8))
    for other in servers[1:]:
        if (first, "max", "product") in med and (other, "max", "product") in med:
            gain = med[(first, "max", "product")]["rps"] / med[(other, "max", "product")]["rps"]
            log(f"product at max rate: {first} {gain:.2f}x {other}")
    if (first, "fixed", "product") in med:
        p99 = med[(first, "fixed", "product")]["p99"]
        if (first, "fixed", "floor") in med:
            log(
                f"p99 at {args.rate:g}/s on {first}: product {p99:.1f} ms, floor {med[(first, 'fixed', 'floor')]['p99']:.1f} ms"
            )
        goals.append((f"p99 < 30 ms at {args.rate:g}/s ({first})", p99 < 30))
    if goals:
        log("goals: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in goals))
    for kind, count in tripped.items():
        log(f"!! {kind} was stopped: it held {count} PostgreSQL connections (limit --max-backends {args.max_backends})")
    log(f"load avg at end: {load()}")
    failed = tripped or any(r["errors"] and r["kind"] == "fixed" for rows in results.values() for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
