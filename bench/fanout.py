"""Websocket fan-out: N clients on one daphne process, index and book updates at 10 Hz.

Variants, alternating round by round, each on a fresh daphne process and a flushed Redis db:

* ``product``      -- the platform as it is (``trading.asgi:application``, stack mode): the
  publisher calls ``trading.realtime.publish_many(updates)`` once per tick, i.e. ONE
  channels_redis group_send to the group "realtime"; the process's Hub holds the only
  subscription, encodes each update once and writes the frames straight to the daphne
  connections of the subscribed ``MarketConsumer`` sockets;
* ``product-asgi`` -- the same product with ``trading.realtime.TRANSPORT_WRITES = False``
  (``bench/fanout_asgi.py:product_asgi_application``): each socket's updates go through its
  ASGI ``send`` (a task per socket, daphne's ``handle_reply``, autobahn's ``sendMessage``),
  the path any other ASGI server gets;
* ``baseline``     -- ``bench/fanout_asgi.py:application``: every socket's consumer joins one
  channel-layer group per topic and the publisher calls ``group_send(group, ...)`` per
  update, the plain per-client channel-layer fan-out.

N websocket clients run in ``--client-procs`` separate processes (asyncio; by default a
minimal RFC 6455 client, ``--client websockets`` for the library), each subscribing to
``index:BTC`` and ``book:BTC-USDT``. The publisher (this process) sends both topics
``--rate`` times a second for ``--seconds``; every payload carries its send time
(``time.time()``) and the clients record receive time - send time per update. Per round:
deliveries/s (updates received by all clients while publishing / publishing time), the
expected rate (clients x topics x rate), the share delivered by the end of the drain (up to
15 s), p50/p99/max delivery latency, clients dropped by the server (close 4008), book sequence
gaps, the CPU used by daphne, Redis, PostgreSQL, the clients, the publisher and everything
else on the machine during the publishing window, daphne's CPU per delivery, and the
publisher's call times; then the medians per variant and the ratios against the baseline.

    .venv/bin/python bench/fanout.py [--clients 2000] [--seconds 20] [--rounds 2] [--rate 10]
                                     [--client-procs 2] [--variants product,product-asgi,baseline]
                                     [--client raw|websockets] [--profile DIR] [--timeline]

Uses DATABASE_URL (default postgres://root@127.0.0.1:5432/trading_bench_fanout; created if
missing, migrated, instruments listed) and BENCH_REDIS_URL (default redis://127.0.0.1:6379/9,
FLUSHDB'd before every round). Refuses the trading / test* databases and Redis db 0.
``--profile DIR`` records each daphne with py-spy during the publishing window and prints
where its time went.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/trading_bench_fanout"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
FORBIDDEN_DATABASES = {"trading", "test_trading", "postgres", "template0", "template1"}
TOPICS = ("index:BTC", "book:BTC-USDT")
APPS = {
    "product": "trading.asgi:application",
    "product-asgi": "bench.fanout_asgi:product_asgi_application",
    "baseline": "bench.fanout_asgi:application",
}
# A client counts as subscribed once it has its snapshots (the product sends index:BTC's, if
# any, then book:BTC-USDT's; the baseline sends none): publishing starts after the subscribe
# burst, measuring the steady state.
READY_ON = {
    "product": b'{"channel":"book:BTC-USDT","type":"snapshot"',
    "product-asgi": b'{"channel":"book:BTC-USDT","type":"snapshot"',
    "baseline": b'"subscribed"',
}
DROPPED_CODE = 4008  # MarketConsumer._too_slow
MESSAGE_TYPE = "bench.message"  # -> fanout_asgi.PerClientGroupConsumer.bench_message


def group_for(topic: str) -> str:
    """The baseline's channel-layer group of a topic (group names allow only [A-Za-z0-9._-])."""
    return "bench.fanout." + topic.replace(":", ".")


# --- client processes ------------------------------------------------------------------------------


class Recorder:
    """What one client process saw: latency per update (receive time - send time), book
    sequence gaps, how connections ended."""

    def __init__(self):
        self.lat_index, self.lat_book = array.array("d"), array.array("d")
        self.received_at = array.array("d")  # receive time of every update (both topics)
        self.latency = array.array("d")  # and its latency, in the same order
        self.state: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.stopping = False

    def update(self, frame, now: float, client) -> None:
        """One text frame (str or bytes) after the subscribe answer. Updates end with the
        publisher's ``"ts":<send time>}``; snapshots and events carry no ``ts``."""
        at = frame.rfind(b'"ts":' if isinstance(frame, bytes) else '"ts":')
        if at < 0:
            return
        latency = now - float(frame[at + 5 : -1])
        self.received_at.append(now)
        self.latency.append(latency)
        if frame[12:16] in (b"book", "book"):  # {"channel":"book:...
            self.lat_book.append(latency)
            at = frame.find(b'"sequence":' if isinstance(frame, bytes) else '"sequence":') + 11
            sequence = int(frame[at : frame.index(b"," if isinstance(frame, bytes) else ",", at)])
            if client.last_sequence is not None and sequence != client.last_sequence + 1:
                self.state["gaps"] += 1
            client.last_sequence = sequence
        else:
            self.lat_index.append(latency)

    def closed(self, code: int | None) -> None:
        if code == DROPPED_CODE:
            self.state["dropped"] += 1
        elif not self.stopping:
            self.state["closed_other"] += 1
            self.errors[f"closed {code}"] += 1


def _masked_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A client -> server frame (RFC 6455: clients mask), FIN set, no extensions."""
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return header + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


class RawClient(asyncio.Protocol):
    """A minimal RFC 6455 client: plain handshake, no extensions, text frames parsed straight
    from the receive buffer (server frames are unmasked). A few microseconds of CPU per frame,
    against tens for a general-purpose library, so the clients leave the CPU to the server."""

    def __init__(self, recorder: Recorder, request: bytes, subscribe: bytes, ready_on: bytes):
        self.recorder, self.request, self.subscribe, self.ready_on = recorder, request, subscribe, ready_on
        self.buffer = bytearray()
        self.handshaken = False
        self.ready = asyncio.get_running_loop().create_future()
        self.close_code = None
        self.last_sequence = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buffer
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status + b" ":
                self._fail(f"handshake {status.decode(errors='replace')[:40]}")
                return
            self.handshaken = True
            self.transport.write(self.subscribe)
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if n - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            if opcode == 1:
                if not b0 & 0x80:
                    self._fail("fragmented frame")
                    return
                if self.ready.done():
                    self.recorder.update(payload, now, self)
                elif self.ready_on in payload:
                    self.ready.set_result(True)
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.transport.close()
                return
            elif opcode == 9:
                self.transport.write(_masked_frame(payload, 10))
        del buf[:pos]

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        self.transport.abort()

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before subscribing ({self.close_code})"))
        elif not self.recorder.stopping or self.close_code is not None:
            self.recorder.closed(self.close_code)


def _client_worker(kind: str, port: int, count: int, concurrency: int, ready_on: bytes, pipe) -> None:
    asyncio.run(_client_main(kind, port, count, concurrency, ready_on, pipe))


async def _client_main(kind: str, port: int, count: int, concurrency: int, ready_on: bytes, pipe) -> None:
    """``count`` websocket clients in this process; a client is ready once a frame containing
    ``ready_on`` arrived. Protocol with the parent over ``pipe``:
    -> ("ready", stats) once every client is ready (or failed); then commands
    "start" (mark the CPU clock), "count" (updates received so far), "stop" (-> results)."""
    loop = asyncio.get_running_loop()
    rec = Recorder()
    closers = []
    gate = asyncio.Semaphore(concurrency)
    origin = f"http://127.0.0.1:{port}"
    subscribe = json.dumps({"op": "subscribe", "channels": list(TOPICS)})

    async def raw_client() -> None:
        import base64

        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/market/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
        async with gate:
            _, protocol = await loop.create_connection(
                lambda: RawClient(rec, request, _masked_frame(subscribe.encode()), ready_on), "127.0.0.1", port
            )
            try:
                await asyncio.wait_for(asyncio.shield(protocol.ready), 120)
            except BaseException:
                protocol.transport.abort()
                raise
        closers.append(protocol.transport.abort)
        rec.state["connected"] += 1

    async def websockets_client() -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        async with gate:
            ws = await connect(
                f"ws://127.0.0.1:{port}/ws/market/",
                origin=origin,
                compression=None,
                ping_interval=None,
                open_timeout=120,
                close_timeout=1,
            )
            await ws.send(subscribe)
            while ready_on.decode() not in await asyncio.wait_for(ws.recv(), 120):
                pass
        closers.append(ws.transport.abort)
        rec.state["connected"] += 1
        ws.last_sequence = None
        try:
            async for frame in ws:
                rec.update(frame, time.time(), ws)
        except ConnectionClosed:
            pass
        except Exception as exc:
            rec.errors[type(exc).__name__] += 1
        rec.closed(ws.close_code)

    async def client() -> None:
        try:
            await (raw_client() if kind == "raw" else websockets_client())
        except Exception as exc:
            rec.errors[type(exc).__name__ + (f": {exc}" if isinstance(exc, ConnectionError) else "")] += 1
            rec.state["failed"] += 1

    started = time.perf_counter()
    tasks = [asyncio.create_task(client()) for _ in range(count)]
    while rec.state["connected"] + rec.state["failed"] < count:
        await asyncio.sleep(0.05)
    pipe.send(
        (
            "ready",
            {
                "connected": rec.state["connected"],
                "failed": rec.state["failed"],
                "seconds": time.perf_counter() - started,
                "errors": dict(rec.errors),
            },
        )
    )
    cpu0 = time.process_time()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "start":
            cpu0 = time.process_time()
            pipe.send("ok")
        elif command == "count":
            pipe.send(len(rec.lat_index) + len(rec.lat_book))
        elif command == "stop":
            cpu = time.process_time() - cpu0
            rec.stopping = True
            pipe.send(
                (
                    "result",
                    {
                        "index": rec.lat_index.tobytes(),
                        "book": rec.lat_book.tobytes(),
                        "received_at": rec.received_at.tobytes(),
                        "latency": rec.latency.tobytes(),
                        "gaps": rec.state["gaps"],
                        "dropped": rec.state["dropped"],
                        "closed_other": rec.state["closed_other"],
                        "errors": dict(rec.errors),
                        "cpu": cpu,
                    },
                )
            )
            break
    for close in closers:
        close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- setup -----------------------------------------------------------------------------------------


def _environment(args) -> dict:
    """Stack-mode environment, for this process (the publisher) and the daphne servers."""
    env = {
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "DJANGO_SETTINGS_MODULE": "trading.settings",
        "DEBUG": "0",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    from bench.common import stack_secret

    stack_secret()
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _check_targets(args) -> None:
    import environ

    config = environ.Env.db_url_config(args.database_url)
    if "postgres" not in config["ENGINE"]:
        sys.exit(f"bench/fanout.py needs PostgreSQL, DATABASE_URL is {args.database_url!r}")
    name = config["NAME"]
    if name in FORBIDDEN_DATABASES or name.startswith("test_") or name.startswith("test"):
        sys.exit(f"refusing to benchmark on database {name!r}: use a dedicated one (default trading_bench_fanout)")
    args.db_name = name
    args.db_connect = {
        k: v
        for k, v in {
            "host": config.get("HOST"),
            "port": config.get("PORT"),
            "user": config.get("USER"),
            "password": config.get("PASSWORD"),
        }.items()
        if v
    }
    import redis

    db = redis.connection.parse_url(args.redis_url).get("db", 0)
    if int(db or 0) == 0:
        sys.exit(f"refusing to FLUSHDB Redis db 0 ({args.redis_url!r}): use a dedicated database (default /9)")


def _prepare_database(args) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **args.db_connect) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [args.db_name]).fetchone():
            print(f"==> creating database {args.db_name}", flush=True)
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(args.db_name)))
    import django

    django.setup()
    from django.core.management import call_command

    from marketdata.services import instruments_sync

    print(f"==> migrating {args.db_name}, listing instruments", flush=True)
    call_command("migrate", interactive=False, verbosity=0)
    instruments_sync(index_prices={"BTC": Decimal("65000"), "ETH": Decimal("3500")})


def _flush_redis(url: str) -> int:
    """FLUSHDB the bench database; returns the Redis server's pid (for CPU accounting)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    pid = int(client.info("server")["process_id"])
    client.close()
    return pid


def _machine(args) -> list[str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("daphne", "channels", "channels_redis", "Twisted", "autobahn", "websockets", "Django", "redis"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    import psycopg
    import redis

    with psycopg.connect(dbname=args.db_name, **args.db_connect) as conn:
        pg = conn.execute("show server_version").fetchone()[0]
    client = redis.Redis.from_url(args.redis_url)
    rv = client.info("server")["redis_version"]
    client.close()
    return [
        f"nproc {os.cpu_count()}, CPU {model!r}, {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, " + ", ".join(versions),
        f"PostgreSQL {pg}, Redis {rv}; load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}",
    ]


# --- CPU accounting ----------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _all_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (command, CPU seconds) for every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
                comm = raw[raw.index("(") + 1 : raw.rindex(")")]
                fields = raw.rsplit(")", 1)[1].split()
                out[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / _TICK)
            except (OSError, ValueError, IndexError):
                pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:60]
    except OSError:
        return "?"


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies over all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


class CpuWindow:
    """CPU used during the publishing window, in cores (1.0 = one core busy): daphne, Redis,
    PostgreSQL, the client processes, the publisher (this process), everything else."""

    def __init__(self, daphne_pid: int, redis_pid: int, client_pids: list[int]):
        self.daphne_pid, self.redis_pid, self.client_pids = daphne_pid, redis_pid, set(client_pids)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.procs0, self.machine0 = _all_cpu(), _machine_cpu()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.t0
        procs, (busy, total) = _all_cpu(), _machine_cpu()
        b0, t0 = self.machine0
        groups, others = Counter(), Counter()
        for pid, (comm, cpu) in procs.items():
            delta = cpu - self.procs0.get(pid, (comm, 0.0))[1]
            if pid == self.daphne_pid:
                groups["daphne"] += delta
            elif pid == self.redis_pid:
                groups["redis"] += delta
            elif comm in ("postgres", "postmaster"):
                groups["postgres"] += delta
            elif pid in self.client_pids:
                groups["clients"] += delta
            elif pid == os.getpid():
                groups["publisher"] += delta
            elif delta > 0:
                others[pid] += delta
        machine = (busy - b0) / max(1, total - t0) * (os.cpu_count() or 1)
        top = ", ".join(f"{_cmdline(pid)!r} {d / wall:.0%}" for pid, d in others.most_common(3) if d / wall >= 0.05)
        return {
            "wall": wall,
            **{k: groups[k] / wall for k in ("daphne", "redis", "postgres", "clients", "publisher")},
            "other": sum(others.values()) / wall,
            "other_top": top,
            "machine": machine,
        }


# --- one round ---------------------------------------------------------------------------------------


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"daphne did not listen on {port} within {timeout}s")


def _payloads(k: int):
    """The two updates of tick ``k``: an index print and a 5-level book delta."""
    price = 65000 + (k % 200) * 0.5
    index = {
        "data": {
            "underlying": "BTC",
            "price": f"{price:.2f}",
            "stale": False,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        }
    }
    book = {
        "type": "delta",
        "sequence": k + 1,
        "bids": [[f"{price - 0.5 * i:.2f}", f"{0.1 + 0.01 * ((k + i) % 50):.5f}"] for i in range(1, 6)],
        "asks": [[f"{price + 0.5 * i:.2f}", f"{0.1 + 0.01 * ((k + 2 * i) % 50):.5f}"] for i in range(1, 6)],
    }
    return index, book


def _publisher(variant: str):
    """``send(updates)`` for one tick's [(topic, payload), ...]: stamps each payload's
    ``ts`` right before the call that publishes it; returns the durations of those calls.
    Both sides publish from the process's long-lived publisher loop (one Redis connection
    pool, no event loop per call)."""
    from channels.layers import get_channel_layer

    from trading.realtime import publish_many, publisher

    if variant == "baseline":  # one group_send per update, to that topic's group of sockets
        layer, loop = get_channel_layer(), publisher()

        def send(updates):
            durations = []
            for topic, payload in updates:
                payload["ts"] = time.time()  # last key: the clients find it at the end of the frame
                began = time.perf_counter()
                loop.call(
                    layer.group_send(group_for(topic), {"type": MESSAGE_TYPE, "topic": topic, "payload": payload}),
                    timeout=120,
                )
                durations.append(time.perf_counter() - began)
            return durations

        return send

    def send(updates):  # the product: the whole tick in one publish_many
        now = time.time()
        for _, payload in updates:
            payload["ts"] = now
        began = time.perf_counter()
        publish_many(updates)
        return [time.perf_counter() - began]

    return send


def _publish_for(variant: str, seconds: float, rate: float) -> dict:
    send = _publisher(variant)
    period = 1.0 / rate
    ticks = round(seconds * rate)
    durations = []
    published = 0
    t0, wall0 = time.perf_counter(), time.time()
    for k in range(ticks):
        delay = t0 + k * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        index, book = _payloads(k)
        durations += send([(TOPICS[0], index), (TOPICS[1], book)])
        published += 2
    elapsed = max(time.perf_counter() - t0, ticks * period)
    durations.sort()
    return {
        "published": published,
        "seconds": elapsed,
        "window": (wall0, wall0 + elapsed),
        "publish_p50": durations[len(durations) // 2],
        "publish_p99": durations[int(len(durations) * 0.99)],
    }


def _percentiles(values) -> tuple[float, float, float]:
    import numpy as np

    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99), float(np.max(values))


def _run_round(args, variant: str, round_no: int, port: int, env: dict, logdir: Path) -> dict:
    import numpy as np

    redis_pid = _flush_redis(args.redis_url)
    log = open(logdir / f"daphne-{variant}-{round_no}.log", "wb")
    daphne = subprocess.Popen(
        [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0", APPS[variant]],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    workers, pipes = [], []
    ctx = mp.get_context("spawn")
    try:
        _wait_port(port, daphne)
        shares = [
            args.clients // args.client_procs + (1 if i < args.clients % args.client_procs else 0)
            for i in range(args.client_procs)
        ]
        for share in shares:
            parent_end, child_end = ctx.Pipe()
            worker = ctx.Process(
                target=_client_worker,
                args=(args.client, port, share, args.connect_concurrency, READY_ON[variant], child_end),
                daemon=True,
            )
            worker.start()
            workers.append(worker)
            pipes.append(parent_end)
        ready = []
        for pipe in pipes:
            if not pipe.poll(args.connect_timeout):
                raise RuntimeError(f"clients not connected within {args.connect_timeout}s")
            ready.append(pipe.recv()[1])
        connected = sum(r["connected"] for r in ready)
        connect_errors = Counter()
        for r in ready:
            connect_errors.update(r["errors"])
        print(
            f"    {variant} round {round_no}: {connected}/{args.clients} clients subscribed (and snapshots received) in {max(r['seconds'] for r in ready):.1f}s"
            + (f" (errors and closes so far: {dict(connect_errors)})" if connect_errors else ""),
            flush=True,
        )
        time.sleep(1.0)  # let the subscribe snapshots drain
        cpu = CpuWindow(daphne.pid, redis_pid, [w.pid for w in workers])
        profiler = None
        if args.profile:
            out = Path(args.profile) / f"{variant}-round{round_no}.txt"
            profiler = subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/py-spy"),
                    "record",
                    "--nonblocking",
                    "-r",
                    "50",
                    "-d",
                    str(int(args.seconds)),
                    "-f",
                    "raw",
                    "-o",
                    str(out),
                    "-p",
                    str(daphne.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for pipe in pipes:
            pipe.send("start")
            pipe.recv()
        cpu.start()
        publishing = _publish_for(variant, args.seconds, args.rate)
        usage = cpu.stop()
        # Drain: until no client received anything for 1 s (at most 15 s).
        last, still, deadline = -1, time.monotonic(), time.monotonic() + 15
        while time.monotonic() < deadline:
            total = 0
            for pipe in pipes:
                pipe.send("count")
                total += pipe.recv()
            if total != last:
                last, still = total, time.monotonic()
            elif time.monotonic() - still >= 1.0:
                break
            time.sleep(0.25)
        drained = cpu.stop()
        results = []
        for pipe in pipes:
            pipe.send("stop")
            results.append(pipe.recv()[1])
        if profiler is not None:
            profiler.wait(timeout=args.seconds + 30)
            _profile_summary(Path(args.profile) / f"{variant}-round{round_no}.txt")
    finally:
        for worker in workers:
            worker.join(timeout=20)
            if worker.is_alive():
                worker.terminate()
        daphne.send_signal(signal.SIGTERM)
        try:
            daphne.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daphne.kill()
            daphne.wait()
        log.close()

    index = np.concatenate([np.frombuffer(r["index"], dtype=np.float64) for r in results])
    book = np.concatenate([np.frombuffer(r["book"], dtype=np.float64) for r in results])
    both = np.concatenate([index, book])
    p50, p99, worst = _percentiles(both)
    received = len(both)
    received_at = np.concatenate([np.frombuffer(r["received_at"], dtype=np.float64) for r in results])
    start, end = publishing["window"]
    in_window = int(np.count_nonzero((received_at >= start) & (received_at <= end)))
    if args.timeline:
        _timeline(
            received_at, np.concatenate([np.frombuffer(r["latency"], dtype=np.float64) for r in results]), start, end
        )
    close_errors = Counter()
    for r in results:
        close_errors.update(r["errors"])
    return {
        "variant": variant,
        "round": round_no,
        "connected": connected,
        "published": publishing["published"],
        "seconds": publishing["seconds"],
        "received": received,
        "received_index": len(index),
        "received_book": len(book),
        "deliveries_s": in_window / (end - start),  # received while publishing / publishing time
        "expected_s": connected * len(TOPICS) * args.rate,
        "delivered": received / (connected * publishing["published"]) if connected else 0.0,  # incl. the drain
        "p50": p50,
        "p99": p99,
        "max": worst,
        "book_p99": _percentiles(book)[1],
        "index_p99": _percentiles(index)[1],
        "dropped": sum(r["dropped"] for r in results),
        "closed_other": sum(r["closed_other"] for r in results),
        "gaps": sum(r["gaps"] for r in results),
        "errors": dict(close_errors),
        "publish_p50": publishing["publish_p50"],
        "publish_p99": publishing["publish_p99"],
        "clients_cpu": usage["clients"],
        # CPU per delivery over publishing + drain (a backlog is delivered during the drain)
        "daphne_us": 1e6 * drained["daphne"] * drained["wall"] / received if received else float("nan"),
        "clients_us": 1e6 * drained["clients"] * drained["wall"] / received if received else float("nan"),
        **{f"cpu_{k}": v for k, v in usage.items() if k != "wall"},
    }


def _timeline(received_at, latency, start: float, end: float) -> None:
    """Per second of the publishing window (and of the drain): deliveries and latency."""
    import numpy as np

    print("    second  deliveries  p50 ms  p99 ms  max ms")
    last = max(end, float(received_at.max())) if len(received_at) else end
    for second in range(int(np.ceil(last - start))):
        mask = (received_at >= start + second) & (received_at < start + second + 1)
        if mask.any():
            p50, p99 = np.percentile(latency[mask], [50, 99])
            drain = "  (drain)" if start + second >= end else ""
            print(
                f"    {second:>6}  {int(mask.sum()):>10,}  {1000 * p50:>6.0f}  {1000 * p99:>6.0f}  {1000 * latency[mask].max():>6.0f}{drain}"
            )


def _profile_summary(path: Path, top: int = 25) -> None:
    """Own time and inclusive time per function from a py-spy raw (collapsed) profile."""
    if not path.exists():
        print(f"    (no profile written to {path})")
        return
    own, inclusive, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"    profile {path.name}: {total} samples; own time:")
    for frame, n in own.most_common(top):
        print(f"      {100 * n / total:5.1f}%  {frame}")
    print("    inclusive:")
    for frame, n in inclusive.most_common(top + 15):
        print(f"      {100 * n / total:5.1f}%  {frame}")


# --- report ------------------------------------------------------------------------------------------


def _row(r: dict) -> str:
    return (
        f"{r['variant']:<20} {r['round']:>2} {r['connected']:>6} {r['published']:>5} {r['deliveries_s']:>10,.0f} {r['expected_s']:>9,.0f}"
        f" {r['deliveries_s'] / r['expected_s'] if r['expected_s'] else 0:>6.1%} {r['delivered']:>6.1%} {1000 * r['p50']:>7.1f} {1000 * r['p99']:>7.1f} {1000 * r['max']:>7.1f}"
        f" {1000 * r['book_p99']:>7.1f} {r['dropped']:>5} {r['gaps']:>5}"
        f" {100 * r['cpu_daphne']:>5.0f}% {100 * r['cpu_redis']:>4.0f}% {100 * r['cpu_postgres']:>4.0f}% {100 * r['clients_cpu']:>5.0f}% {100 * r['cpu_publisher']:>4.0f}% {100 * r['cpu_other']:>4.0f}% {100 * r['cpu_machine']:>5.0f}%"
        f" {1000 * r['publish_p50']:>6.1f} {1000 * r['publish_p99']:>6.1f} {r['daphne_us']:>6.0f} {r['clients_us']:>5.0f}"
    )


HEADER = (
    f"{'variant':<20} {'rd':>2} {'conn':>6} {'pub':>5} {'deliv/s':>10} {'expect/s':>9} {'ratio':>6} {'deliv':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    f" {'bookp99':>7} {'drop':>5} {'gaps':>5} {'daphne':>6} {'redis':>5} {'pg':>5} {'clients':>6} {'pub':>5} {'other':>5} {'machine':>6} {'pub50':>6} {'pub99':>6} {'us/del':>6} {'cl_us':>5}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=10.0, help="updates per second per topic")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--client",
        choices=("raw", "websockets"),
        default="raw",
        help="raw: minimal RFC 6455 client (default); websockets: the library",
    )
    parser.add_argument("--connect-concurrency", type=int, default=25, help="handshakes in flight per client process")
    parser.add_argument("--connect-timeout", type=float, default=600.0)
    parser.add_argument(
        "--variants", default="product,product-asgi,baseline", help=f"comma-separated, from {', '.join(APPS)}"
    )
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--profile", metavar="DIR", help="py-spy record each daphne during the publishing window")
    parser.add_argument("--timeline", action="store_true", help="print deliveries and latency per second of each round")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL, help="FLUSHDB'd every round"
    )
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if any(v not in APPS for v in variants):
        sys.exit(f"--variants: choose from {', '.join(APPS)}")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    _check_targets(args)
    env = _environment(args)
    _prepare_database(args)
    machine = _machine(args)
    print("==> machine: " + "\n             ".join(machine), flush=True)
    print(
        f"==> {args.clients} clients in {args.client_procs} processes, topics {', '.join(TOPICS)} at {args.rate:g} Hz each, "
        f"{args.seconds:g} s per round, {args.rounds} rounds of {', '.join(variants)}",
        flush=True,
    )
    logdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    rows = []
    port = args.port
    for round_no in range(1, args.rounds + 1):
        order = variants if round_no % 2 else list(reversed(variants))
        for variant in order:
            rows.append(_run_round(args, variant, round_no, port, env, logdir))
            port += 1
            print(HEADER)
            print(_row(rows[-1]), flush=True)
            if rows[-1]["cpu_other_top"]:
                print(f"    other processes busy during the window: {rows[-1]['cpu_other_top']}")
            if rows[-1]["errors"]:
                print(f"    client-side closes/errors: {rows[-1]['errors']}")

    print()
    print(
        f"==> all rounds ({args.clients} clients, {args.seconds:g} s, {args.rate:g} Hz x {len(TOPICS)} topics; daphne logs in {logdir})"
    )
    print(HEADER)
    for r in rows:
        print(_row(r))
    print()
    medians = {}
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        medians[variant] = {
            k: statistics.median(
                [r[k] for r in mine if r[k] == r[k]] or [float("nan")]
            )  # rounds without deliveries have no latency
            for k in (
                "deliveries_s",
                "expected_s",
                "delivered",
                "p50",
                "p99",
                "max",
                "dropped",
                "gaps",
                "cpu_daphne",
                "clients_cpu",
                "daphne_us",
            )
        }
        m = medians[variant]
        print(
            f"median {variant:<20} deliveries/s {m['deliveries_s']:>7,.0f} of {m['expected_s']:,.0f} ({m['deliveries_s'] / m['expected_s'] if m['expected_s'] else 0:.1%}),"
            f" delivered incl. drain {m['delivered']:.1%}, p50 {1000 * m['p50']:.0f} ms, p99 {1000 * m['p99']:.0f} ms, max {1000 * m['max']:.0f} ms,"
            f" dropped {m['dropped']:g}, book gaps {m['gaps']:g}, daphne CPU {100 * m['cpu_daphne']:.0f}% ({m['daphne_us']:.0f} us/delivery), clients CPU {100 * m['clients_cpu']:.0f}%"
        )
    for variant in (v for v in variants if v != "baseline"):
        p = medians[variant]
        if "baseline" in medians:
            b = medians["baseline"]
            print(
                f"ratio {variant}/baseline: deliveries/s {p['deliveries_s'] / b['deliveries_s'] if b['deliveries_s'] else float('inf'):.2f}x,"
                f" p99 {p['p99'] / b['p99'] if b['p99'] else float('nan'):.2f}x (lower is better)"
            )
        ok = p["deliveries_s"] >= 20000 and p["p99"] < 0.150
        print(f"goal (>= 20,000 deliveries/s and p99 < 150 ms): {'MET' if ok else 'NOT MET'} by {variant}")


if __name__ == "__main__":
    main()
