"""``/ws/market/`` end to end against a real daphne process in stack mode (test database,
Redis), where the hub writes frames straight to the connections:

* fed by a real ``manage.py run_feed`` process, a real websocket client (``websockets``)
  sees what the feed committed: every live index update matches an ``IndexPrint`` row;
* with updates published from this process (``realtime.publish_many``), a client that
  stops reading is closed with 4008 while the others keep receiving every update, in order
  and on time.

The processes get a Redis database of their own so the feeds of concurrent runs (which
publish to the same group) never reach these sockets.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.sync.client import connect

from marketdata.models import IndexPrint
from marketdata.services import instruments_sync
from tests.processes import test_database_url
from trading import realtime

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60
DECIMAL = re.compile(r"^\d+(\.\d+)?$")


def _bin(name: str) -> str:
    for candidate in (BASE_DIR / ".venv" / "bin" / name, Path(sys.executable).with_name(name)):
        if candidate.exists():
            return str(candidate)
    pytest.skip(f"{name} is not installed in the virtualenv")


def _database_url() -> str:
    """The URL of the test database (the one this test process writes to)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the live stream test needs PostgreSQL: a subprocess cannot see an in-memory test database")
    return test_database_url()


# Not 0 (the suite's cache: every test's cache.clear() is a FLUSHDB, and runs beside this one
# would wipe the hub's group membership), 9 (bench/fanout.py FLUSHes it) or 14 (venue tests).
FLUSHED_REDIS_DBS = {0, 9, 14}


def _private_redis_url() -> str:
    """The suite's Redis server, a database of this process's own: a channel layer of our own."""
    from django.conf import settings

    if not settings.REDIS_URL:
        pytest.skip("the live stream test needs REDIS_URL (stack mode)")
    parts = urlsplit(settings.REDIS_URL)
    free = [n for n in range(1, 16) if n not in FLUSHED_REDIS_DBS]
    return urlunsplit(parts._replace(path=f"/{free[os.getpid() % len(free)]}"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "trading.settings",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": _private_redis_url(),
            "DEBUG": "0",
            "HTTPS": "0",
            "CONN_MAX_AGE": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _wait_for_health(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"daphne did not answer /healthz in {START_TIMEOUT}s:\n{_tail(log)}")
        time.sleep(0.2)


def _wait_for_prints(process: subprocess.Popen, log: Path, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while IndexPrint.objects.filter(underlying="BTC").count() < count:
        if process.poll() is not None:
            pytest.fail(f"run_feed exited with {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"run_feed wrote no index prints in {START_TIMEOUT}s:\n{_tail(log)}")
        time.sleep(0.1)


def _start_daphne(processes: list, log: Path) -> int:
    port = _free_port()
    with open(log, "wb") as out:
        processes.append(
            subprocess.Popen(
                [_bin("daphne"), "-b", "127.0.0.1", "-p", str(port), "trading.asgi:application"],
                cwd=BASE_DIR,
                env=_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
    _wait_for_health(processes[-1], f"http://127.0.0.1:{port}", log)
    return port


def _stop_all(processes: list, logs: dict[str, Path]) -> None:
    for process in processes:
        _stop(process)
    for name, log in logs.items():
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Traceback" in text:
            sys.stderr.write(f"\n--- {name} log ---\n{text[-8000:]}\n")


@pytest.fixture
def stack(transactional_db, tmp_path):
    """daphne and run_feed on the test database; yields the daphne port."""
    instruments_sync(index_prices={"BTC": Decimal("65000"), "ETH": Decimal("3400")})
    daphne_log, feed_log = tmp_path / "daphne.log", tmp_path / "feed.log"
    processes: list[subprocess.Popen] = []
    try:
        port = _start_daphne(processes, daphne_log)
        with open(feed_log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "run_feed", "--ttl", "3"],
                    cwd=BASE_DIR,
                    env=_env(FEED_INTERVAL_SECONDS="0.3"),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait_for_prints(processes[1], feed_log, count=1)
        yield port
    finally:
        _stop_all(processes, {"daphne": daphne_log, "run_feed": feed_log})


@pytest.fixture
def daphne(transactional_db, tmp_path, settings):
    """daphne alone on the test database; this process publishes on its channel layer.
    Yields (port, daphne's log)."""
    instruments_sync(index_prices={"BTC": Decimal("65000"), "ETH": Decimal("3400")})
    log = tmp_path / "daphne.log"
    processes: list[subprocess.Popen] = []
    try:
        port = _start_daphne(processes, log)
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": _private_redis_url(), "socket_timeout": None}]},
            }
        }
        yield port, log
    finally:
        _stop_all(processes, {"daphne": log})


def _parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def test_a_real_client_receives_live_index_and_ticker_updates(stack):
    port = stack
    url = f"ws://127.0.0.1:{port}/ws/market/"
    with connect(url, origin=f"http://127.0.0.1:{port}", open_timeout=10, close_timeout=2) as ws:
        ws.send(json.dumps({"op": "subscribe", "channels": ["index:BTC", "ticker:BTC-USDT"]}))
        assert json.loads(ws.recv(timeout=10)) == {"event": "subscribed", "channels": ["index:BTC", "ticker:BTC-USDT"]}

        index_frames, ticker_frames = [], []
        deadline = time.monotonic() + 5

        def distinct_index_times() -> int:
            return len({frame["data"]["time"] for frame in index_frames})

        # The snapshot (the feed has printed already) and then at least 3 live updates. A live
        # update racing the snapshot may repeat it: same state, same time, harmless.
        while distinct_index_times() < 4 or not ticker_frames:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                frame = json.loads(ws.recv(timeout=remaining))
            except TimeoutError:
                pytest.fail(
                    f"within 5 s: {distinct_index_times()} distinct index states (snapshot included), "
                    f"{len(ticker_frames)} ticker frames"
                )
            {"index:BTC": index_frames, "ticker:BTC-USDT": ticker_frames}[frame["channel"]].append(frame)

        states = [frame["data"] for frame in index_frames]
        times = [_parse_time(data["time"]) for data in states]
        assert times == sorted(times), f"index times went backwards: {times}"
        for data in states:
            assert data["underlying"] == "BTC" and data["stale"] is False
            assert isinstance(data["price"], str) and DECIMAL.match(data["price"]), data
            # What the socket says is what the feed committed.
            stored = IndexPrint.objects.get(underlying="BTC", ts=_parse_time(data["time"]))
            assert stored.price == Decimal(data["price"])

        ticker = ticker_frames[-1]["data"]
        assert ticker["symbol"] == "BTC-USDT"
        for field in ("last", "index_price"):
            assert isinstance(ticker[field], str) and DECIMAL.match(ticker[field]), ticker

        # The connection is still healthy for requests.
        ws.send(json.dumps({"op": "ping"}))
        for _ in range(50):
            frame = json.loads(ws.recv(timeout=5))
            if frame.get("event") == "pong":
                break
            assert "channel" in frame, frame
        else:
            pytest.fail("no pong")

    # A page of another origin cannot open the socket.
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="http://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403


# --- a client that stops reading ---------------------------------------------------------------


class FastClient(threading.Thread):
    """A client that reads everything: book sequences, delivery latency (publisher's ``ts``),
    the sizes of trades frames; stops at the index update marked ``end``."""

    def __init__(self, url: str, origin: str, channels: list[str]):
        super().__init__(daemon=True)
        self.url, self.origin, self.channels = url, origin, channels
        self.subscribed = threading.Event()
        self.probed = threading.Event()
        self.sequences: list[int] = []
        self.latencies: list[float] = []
        self.trades_sizes: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.url, origin=self.origin, open_timeout=10, close_timeout=2, max_size=None) as ws:
                ws.send(json.dumps({"op": "subscribe", "channels": self.channels}))
                while True:
                    raw = ws.recv(timeout=60)
                    now = time.time()
                    frame = json.loads(raw)
                    if frame.get("event") == "subscribed":
                        self.subscribed.set()
                    elif frame.get("type") == "snapshot":
                        pass
                    elif frame["channel"] == "index:BTC":
                        self.probed.set()
                        if frame["data"] == "end":
                            return
                    elif frame["channel"] == "book:BTC-USDT":
                        self.sequences.append(frame["sequence"])
                        self.latencies.append(now - frame["ts"])
                    elif frame["channel"] == "trades:BTC-USDT":
                        self.trades_sizes.append(len(raw))
        except BaseException as exc:
            self.error = exc


def _stalled_client(port: int, channels: list[str]) -> socket.socket:
    """A raw websocket client with a small receive buffer that subscribes, then reads nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws/market/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n".encode()
    )
    response = b""
    while not response.endswith(b"\r\n\r\n"):  # byte by byte: leave every frame unread
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101 "), response
    payload = json.dumps({"op": "subscribe", "channels": channels}).encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return sock


def _read_to_the_end(sock: socket.socket) -> tuple[list[Frame], str]:
    """Every frame the server sent, and how the connection ended ("close" frame, "eof", or
    "reset")."""
    reader = StreamReader()
    sock.settimeout(10)
    ended = "eof"
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            ended = "reset"
            break
        if not data:
            break
        reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False, max_size=None)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
            continue
        break  # a frame cut short by the reset
    if frames and frames[-1].opcode is Opcode.CLOSE:
        ended = "close"
    return frames, ended


def test_a_client_that_stops_reading_is_closed_with_4008_while_the_others_keep_up(daphne):
    port, log = daphne
    url, origin = f"ws://127.0.0.1:{port}/ws/market/", f"http://127.0.0.1:{port}"
    fast = [FastClient(url, origin, ["book:BTC-USDT", "index:BTC", "trades:BTC-USDT"]) for _ in range(3)]
    for client in fast:
        client.start()
        assert client.subscribed.wait(10), client.error
    slow = _stalled_client(port, ["book:BTC-USDT", "index:BTC"])

    # The hub joins the channel layer when the first socket connects: probe until it has.
    deadline = time.monotonic() + 10
    while not all(client.probed.is_set() for client in fast):
        assert time.monotonic() < deadline, "the hub never received a publish"
        realtime.publish("index:BTC", {"data": "probe"})
        time.sleep(0.1)

    big = [["65000.00", "0.00100"]] * 7000  # a > 64 KiB frame: the 8-byte length form
    realtime.publish("trades:BTC-USDT", {"data": big})

    def delta(sequence: int) -> dict:  # ~50 KB of book levels, at 20 Hz: the kernel's buffers fill fast
        levels = [[f"{65000 - i * 0.5:.2f}", "1.00000"] for i in range(1100)]
        return {"type": "delta", "sequence": sequence, "bids": levels, "asks": levels, "ts": time.time()}

    started, sequence, dropped_at = time.monotonic(), 0, None
    while time.monotonic() - started < realtime.SEND_DEADLINE + 25:
        sequence += 1
        realtime.publish_many([("book:BTC-USDT", delta(sequence)), ("index:BTC", {"data": sequence})])
        time.sleep(0.05)
        if "cannot keep up" in log.read_text(errors="replace"):
            dropped_at = time.monotonic() - started
            break
    assert dropped_at is not None, f"the stalled client was never dropped:\n{_tail(log)}"
    frames, ended = _read_to_the_end(slow)  # it reads again, at once: the close frame is there
    slow.close()
    for _ in range(20):  # the others keep receiving after the drop
        sequence += 1
        realtime.publish_many([("book:BTC-USDT", delta(sequence)), ("index:BTC", {"data": sequence})])
        time.sleep(0.05)
    realtime.publish("index:BTC", {"data": "end"})
    for client in fast:
        client.join(30)
        assert not client.is_alive() and client.error is None, client.error

    # Dropped once the kernel's buffers and then the server's own were full for SEND_DEADLINE.
    assert realtime.SEND_DEADLINE <= dropped_at < realtime.SEND_DEADLINE + 20, dropped_at
    assert log.read_text(errors="replace").count("cannot keep up") == 1
    assert ended == "close", f"the connection ended with {ended!r} after {len(frames)} frames"
    close = frames[-1]
    assert int.from_bytes(close.data[:2], "big") == 4008
    texts = [json.loads(f.data) for f in frames[:-1]]
    assert texts[0] == {"event": "subscribed", "channels": ["book:BTC-USDT", "index:BTC"]}
    received = [t["sequence"] for t in texts if t.get("channel") == "book:BTC-USDT" and t.get("type") == "delta"]
    # what it got, it got in order (a client this far behind may also lose some to the channel
    # layer's capacity before its own buffer: the fast clients below get every one)
    assert received and received == sorted(set(received))
    assert len(received) < sequence - 20  # ... and it was far behind

    for client in fast:
        assert client.sequences == list(range(1, sequence + 1))  # every delta, in order
        assert client.trades_sizes and client.trades_sizes[0] > 65536
        worst = max(client.latencies)
        assert worst < 2.0, f"a reading client waited {worst:.2f}s for an update"  # a stall would be >= SEND_DEADLINE
