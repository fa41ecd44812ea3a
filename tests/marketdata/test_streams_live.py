"""``/ws/market/`` end to end: a real websocket client (``websockets``) against a real
daphne process, fed by a real ``manage.py run_feed`` process, both in stack mode on the
test database and Redis.

What the socket shows must be what the feed committed: every live index update matches an
``IndexPrint`` row the feed wrote. The two processes get a Redis database of their own so
the feeds of concurrent runs (which publish to the same group) never reach this socket.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from marketdata.models import IndexPrint
from marketdata.services import instruments_sync
from tests.processes import test_database_url

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


def _private_redis_url() -> str:
    """The suite's Redis, another database number (1-15, by pid): a channel layer of our own."""
    from django.conf import settings

    if not settings.REDIS_URL:
        pytest.skip("the live stream test needs REDIS_URL (stack mode)")
    parts = urlsplit(settings.REDIS_URL)
    current = int(parts.path.strip("/") or 0)
    number = 1 + os.getpid() % 15
    if number == current:
        number = 1 + (number % 15)
    return urlunsplit(parts._replace(path=f"/{number}"))


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


@pytest.fixture
def stack(transactional_db, tmp_path):
    """daphne and run_feed on the test database; yields the daphne port."""
    instruments_sync(index_prices={"BTC": Decimal("65000"), "ETH": Decimal("3400")})
    port = _free_port()
    daphne_log, feed_log = tmp_path / "daphne.log", tmp_path / "feed.log"
    processes: list[subprocess.Popen] = []
    try:
        with open(daphne_log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    [_bin("daphne"), "-b", "127.0.0.1", "-p", str(port), "trading.asgi:application"],
                    cwd=BASE_DIR, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                )
            )
        with open(feed_log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "run_feed", "--ttl", "3"],
                    cwd=BASE_DIR, env=_env(FEED_INTERVAL_SECONDS="0.3"), stdout=out, stderr=subprocess.STDOUT,
                )
            )
        _wait_for_health(processes[0], f"http://127.0.0.1:{port}", daphne_log)
        _wait_for_prints(processes[1], feed_log, count=1)
        yield port
    finally:
        for process in processes:
            _stop(process)
        for name, log in (("daphne", daphne_log), ("run_feed", feed_log)):
            text = log.read_text(errors="replace") if log.exists() else ""
            if "Traceback" in text:
                sys.stderr.write(f"\n--- {name} log ---\n{text[-8000:]}\n")


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
