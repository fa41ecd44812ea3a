"""The simulated venue's store is shared by real processes, and survives their ``kill -9``.

Each child is a plain Python process (no Django) placing one order through its own
SimulatedVenue on the shared Redis prefix; the parent watches the store with its own venue,
kills the child with SIGKILL at the chosen moment and looks the order up.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, time
from decimal import Decimal
from venues.simulated import SimulatedVenue, SimulatedVenueConfig

url, prefix, cid, faults = sys.argv[1:5]
venue = SimulatedVenue(
    price_source=lambda symbol: Decimal("50000"),
    config=SimulatedVenueConfig.parse(faults),
    redis_url=url,
    key_prefix=prefix,
)
print("sending", flush=True)
try:
    order = venue.market_order(client_order_id=cid, symbol="BTC-USDT", side="buy", quote_amount=Decimal("1000"))
    print("filled", order.venue_order_id, flush=True)
except Exception as exc:
    print("error", type(exc).__name__, flush=True)
time.sleep(120)  # a worker that lives on until it is killed
"""


def spawn(redis_url, key_prefix, cid, faults=""):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, redis_url, key_prefix, cid, faults],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
        env=env,
    )
    process.lines = queue.Queue()
    process.seen = []

    def pump():
        for line in process.stdout:
            process.seen.append(line.strip())
            process.lines.put(line.strip())

    threading.Thread(target=pump, daemon=True).start()
    return process


def read_line(process, timeout=20.0) -> str:
    try:
        return process.lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no output from the child within {timeout}s; stderr: {kill9(process)}") from None


def kill9(process) -> str:
    """SIGKILL the child (if alive), reap it, and return its stderr."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    time.sleep(0.05)  # let the reader thread drain what the child wrote before dying
    return process.stderr.read() if not process.stderr.closed else ""


def wait_for(predicate, timeout=15.0, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.mark.slow
def test_an_order_recorded_by_a_worker_killed_before_its_reply_is_found_by_another_process(
    make_venue, redis_url, key_prefix
):
    parent = make_venue(store="redis")
    # 3 s before execution and 3 s after: the kill lands while the reply is "in flight".
    child = spawn(redis_url, key_prefix, "stl-77-3", "latency_ms=6000,timeout_ms=20000,recv_window_ms=5000")
    try:
        assert read_line(child) == "sending"
        assert wait_for(lambda: parent.placements("stl-77-3") == 1), "the child never recorded its order"
        kill9(child)
    finally:
        kill9(child)

    assert child.returncode == -signal.SIGKILL
    assert child.seen == ["sending"]  # it died without hearing back
    found = parent.fetch_order(client_order_id="stl-77-3", symbol="BTC-USDT")
    assert found is not None and found.status == "filled"
    assert found.raw["pid"] == child.pid  # placed by the dead worker, found by this process
    assert found.filled == Decimal("0.02")  # 1000 USDT at 50000
    assert parent.placements("stl-77-3") == 1 and parent.duplicate_client_order_ids() == []


def test_a_completed_placement_outlives_its_worker(make_venue, redis_url, key_prefix):
    parent = make_venue(store="redis")
    child = spawn(redis_url, key_prefix, "stl-78-3")
    try:
        assert read_line(child) == "sending"
        reply = read_line(child).split()
        kill9(child)
    finally:
        kill9(child)

    assert reply[0] == "filled"
    found = parent.fetch_order(client_order_id="stl-78-3", symbol="BTC-USDT")
    assert found is not None and found.venue_order_id == reply[1]
    assert parent.total_placed() == 1


@pytest.mark.slow
def test_a_worker_killed_before_its_request_arrives_placed_nothing(make_venue, redis_url, key_prefix):
    parent = make_venue(store="redis")
    child = spawn(redis_url, key_prefix, "stl-79-3", "latency_ms=6000,timeout_ms=20000,recv_window_ms=5000")
    try:
        assert read_line(child) == "sending"
        time.sleep(0.5)  # inside the first 3 s: the request is still on its way
        kill9(child)
    finally:
        kill9(child)

    time.sleep(0.2)
    assert parent.fetch_order(client_order_id="stl-79-3", symbol="BTC-USDT") is None
    assert parent.placements("stl-79-3") == 0 and parent.total_placed() == 0


def test_a_restarted_worker_that_resends_blindly_is_caught_as_a_duplicate(make_venue, redis_url, key_prefix):
    parent = make_venue(store="redis")
    first = spawn(redis_url, key_prefix, "stl-80-3", "ambiguous=1")
    try:
        assert read_line(first) == "sending"
        assert read_line(first) == "error VenueTimeout"  # it executed, but the reply was lost
    finally:
        kill9(first)
    original = parent.fetch_order(client_order_id="stl-80-3", symbol="BTC-USDT")
    assert original is not None

    second = spawn(redis_url, key_prefix, "stl-80-3")  # the wrong recovery: send again
    try:
        assert read_line(second) == "sending"
        assert read_line(second).startswith("filled")
    finally:
        kill9(second)

    assert parent.placements("stl-80-3") == 2
    assert parent.duplicate_client_order_ids() == ["stl-80-3"]
    assert parent.total_placed() == 2
    assert parent.fetch_order(client_order_id="stl-80-3", symbol="BTC-USDT") == original  # the first one answers
