"""The realtime hub and its subscribers, in a bare asyncio loop (no database, no sockets):
conflation of state-like topics, ordered bounded queues for the others, a slow client
dropped without stalling anyone else, and a dispatch that never waits on a socket."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from trading import realtime
from trading.realtime import QUEUE_LIMIT, Hub, Subscriber


def _conflate(topic: str) -> bool:
    return topic.startswith(("ticker:", "index:", "candles:"))


class Socket:
    """A fake socket: records what was sent; ``gate`` (when cleared) holds every send."""

    def __init__(self, *, blocked: bool = False):
        self.sent: list[tuple[str, dict]] = []
        self.gate = asyncio.Event()
        if not blocked:
            self.gate.set()
        self.started = asyncio.Event()  # a send has begun (and may be waiting on the gate)
        self.overflowed = 0

    async def send(self, topic: str, payload: dict) -> None:
        self.started.set()
        await self.gate.wait()
        self.sent.append((topic, payload))

    def on_overflow(self) -> None:
        self.overflowed += 1

    def subscriber(self) -> Subscriber:
        return Subscriber(self.send, on_overflow=self.on_overflow, conflate=_conflate)


async def _settle(rounds: int = 20) -> None:
    """Let the pumps run until they have nothing left to do (or are blocked)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def run(coro_fn):
    return asyncio.run(coro_fn())


@pytest.fixture(autouse=True)
def _no_process_hub(monkeypatch):
    """``Hub.current`` is process state: every test starts without one."""
    monkeypatch.setattr(Hub, "current", None)


def test_conflated_topic_delivers_only_the_latest_once_the_socket_unblocks():
    async def scenario():
        socket = Socket(blocked=True)
        sub = socket.subscriber()
        sub.offer("ticker:BTC-USDT", {"n": 0})
        await asyncio.wait_for(socket.started.wait(), 1)  # the pump is stuck in send(n=0)
        for n in range(1, 101):
            sub.offer("ticker:BTC-USDT", {"n": n})
        await _settle()
        assert socket.sent == []
        socket.gate.set()
        await _settle()
        assert socket.sent == [("ticker:BTC-USDT", {"n": 0}), ("ticker:BTC-USDT", {"n": 100})]
        assert socket.overflowed == 0  # conflated topics never count against the queue
        sub.close()

    run(scenario)


def test_conflation_keeps_the_latest_per_topic_not_per_socket():
    async def scenario():
        socket = Socket(blocked=True)
        sub = socket.subscriber()
        sub.offer("index:BTC", {"n": -1})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(50):
            sub.offer("ticker:BTC-USDT", {"n": n})
            sub.offer("ticker:ETH-USDT", {"n": n})
            sub.offer("candles:BTC-USDT:1m", {"n": n})
        socket.gate.set()
        await _settle()
        assert socket.sent[0] == ("index:BTC", {"n": -1})
        assert sorted(socket.sent[1:]) == sorted(
            [("ticker:BTC-USDT", {"n": 49}), ("ticker:ETH-USDT", {"n": 49}), ("candles:BTC-USDT:1m", {"n": 49})]
        )
        sub.close()

    run(scenario)


def test_many_conflated_updates_never_overflow_a_slow_socket():
    async def scenario():
        socket = Socket(blocked=True)
        sub = socket.subscriber()
        sub.offer("ticker:BTC-USDT", {"n": -1})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(QUEUE_LIMIT * 4):
            sub.offer("ticker:BTC-USDT", {"n": n})
        assert socket.overflowed == 0
        socket.gate.set()
        await _settle()
        assert socket.sent[-1] == ("ticker:BTC-USDT", {"n": QUEUE_LIMIT * 4 - 1})
        assert len(socket.sent) == 2
        sub.close()

    run(scenario)


def test_non_conflated_topics_keep_every_message_in_order():
    async def scenario():
        socket = Socket(blocked=True)
        sub = socket.subscriber()
        sub.offer("trades:BTC-USDT", {"n": 0})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(1, 300):
            sub.offer("trades:BTC-USDT" if n % 2 else "book:BTC-USDT", {"n": n})
        socket.gate.set()
        await _settle()
        assert [payload["n"] for _, payload in socket.sent] == list(range(300))
        assert [topic for topic, _ in socket.sent[:3]] == ["trades:BTC-USDT", "trades:BTC-USDT", "book:BTC-USDT"]
        assert socket.overflowed == 0
        sub.close()

    run(scenario)


def test_a_socket_that_never_completes_a_send_overflows_and_is_dropped():
    async def scenario():
        socket = Socket(blocked=True)  # the gate never opens
        sub = socket.subscriber()
        sub.offer("book:BTC-USDT", {"n": 0})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(1, QUEUE_LIMIT + 1):
            sub.offer("book:BTC-USDT", {"n": n})
        assert socket.overflowed == 0  # exactly QUEUE_LIMIT waiting: still tolerated
        sub.offer("book:BTC-USDT", {"n": QUEUE_LIMIT + 1})
        assert socket.overflowed == 1
        for n in range(100):  # a dropped subscriber ignores the rest, and overflows once
            sub.offer("book:BTC-USDT", {"n": n})
            sub.offer("ticker:BTC-USDT", {"n": n})
        assert socket.overflowed == 1
        sub.close()
        await _settle()
        assert sub.task.done()

    run(scenario)


def test_a_slow_client_never_stalls_the_others_on_the_same_topic():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        slow, fast = Socket(blocked=True), Socket()
        slow_sub, fast_sub = slow.subscriber(), fast.subscriber()
        hub.subscribe("trades:BTC-USDT", slow_sub)
        hub.subscribe("trades:BTC-USDT", fast_sub)
        total = QUEUE_LIMIT * 3
        started = time.perf_counter()
        for n in range(total):
            hub.dispatch("trades:BTC-USDT", {"n": n})
            if n % 100 == 99:  # the hub's listener yields between channel-layer messages
                await _settle()
        await _settle()
        elapsed = time.perf_counter() - started
        assert slow.overflowed == 1
        assert slow.sent == []
        assert fast.overflowed == 0
        assert [payload["n"] for _, payload in fast.sent] == list(range(total))
        assert elapsed < 2, f"dispatch took {elapsed:.2f}s with one stuck client"
        for sub in (slow_sub, fast_sub):
            sub.close()

    run(scenario)


def test_dispatch_to_a_thousand_stuck_subscribers_is_fast_and_never_awaits_a_socket():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        sockets = [Socket(blocked=True) for _ in range(1000)]
        subs = [s.subscriber() for s in sockets]
        for sub in subs:
            hub.subscribe("ticker:BTC-USDT", sub)
            hub.subscribe("trades:BTC-USDT", sub)
        # Put every pump into a send that does not return.
        hub.dispatch("ticker:BTC-USDT", {"n": -1})
        await _settle()
        assert all(s.started.is_set() for s in sockets)

        assert not asyncio.iscoroutinefunction(hub.dispatch)
        started = time.perf_counter()
        for n in range(50):
            hub.dispatch("ticker:BTC-USDT", {"n": n})
            hub.dispatch("trades:BTC-USDT", {"n": n})
        elapsed = time.perf_counter() - started
        assert elapsed < 1.0, f"100 dispatches to 1000 subscribers took {elapsed:.2f}s"
        assert hub.delivered == 1000 * 101

        for s in sockets:
            s.gate.set()
        await _settle(50)
        for s in sockets:
            assert [p["n"] for t, p in s.sent if t == "trades:BTC-USDT"] == list(range(50))
            assert [p["n"] for t, p in s.sent if t == "ticker:BTC-USDT"] == [-1, 49]
        for sub in subs:
            sub.close()

    run(scenario)


def test_unsubscribe_and_close_stop_delivery():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        socket = Socket()
        sub = socket.subscriber()
        hub.subscribe("index:BTC", sub)
        hub.subscribe("index:ETH", sub)
        hub.dispatch("index:BTC", {"n": 1})
        await _settle()
        hub.unsubscribe("index:BTC", sub)
        assert "index:BTC" not in hub.topics  # no empty sets left behind
        hub.unsubscribe("index:BTC", sub)  # twice is harmless
        hub.dispatch("index:BTC", {"n": 2})
        hub.dispatch("index:XYZ", {"n": 3})  # nobody listens: a no-op
        hub.dispatch("index:ETH", {"n": 4})
        await _settle()
        assert socket.sent == [("index:BTC", {"n": 1}), ("index:ETH", {"n": 4})]
        sub.close()
        hub.dispatch("index:ETH", {"n": 5})
        await _settle()
        assert socket.sent[-1] == ("index:ETH", {"n": 4})
        assert sub.task.done()

    run(scenario)


def test_a_send_that_fails_stops_only_that_subscriber():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())

        async def broken(topic, payload):
            raise ConnectionError("socket went away")

        gone = Subscriber(broken, on_overflow=lambda: None, conflate=_conflate)
        alive = Socket()
        alive_sub = alive.subscriber()
        hub.subscribe("trades:BTC-USDT", gone)
        hub.subscribe("trades:BTC-USDT", alive_sub)
        for n in range(5):
            hub.dispatch("trades:BTC-USDT", {"n": n})
            await _settle()
        assert gone.task.done() and gone.task.exception() is None
        assert [p["n"] for _, p in alive.sent] == list(range(5))
        gone.close()
        alive_sub.close()

    run(scenario)


def test_embedded_publish_from_another_thread_reaches_the_loops_hub(settings):
    settings.EMBEDDED = True

    async def scenario():
        hub = Hub.get()
        assert Hub.get() is hub and hub._listener is None  # embedded: no channel layer
        socket = Socket()
        sub = socket.subscriber()
        hub.subscribe("index:BTC", sub)
        producer = threading.Thread(target=realtime.publish, args=("index:BTC", {"data": {"price": "1"}}))
        producer.start()
        await asyncio.get_running_loop().run_in_executor(None, producer.join)
        for _ in range(100):
            if socket.sent:
                break
            await asyncio.sleep(0.01)
        assert socket.sent == [("index:BTC", {"data": {"price": "1"}})]
        sub.close()
        return hub

    first = run(scenario)
    # A new loop (a new server) gets a new hub; the old loop is closed, and a producer
    # publishing after that must neither fail nor reach the dead hub.
    assert first.loop.is_closed()
    realtime.publish("index:BTC", {"data": {"price": "2"}})

    async def second():
        return Hub.get()

    assert run(second) is not first


class FakeLayer:
    """The channel layer as the hub's listener sees it."""

    def __init__(self, *, failures: int = 0, cancel_becomes=None):
        self.messages: asyncio.Queue = asyncio.Queue()
        self.joined: list[tuple[str, str]] = []
        self.failures = failures
        self.cancel_becomes = cancel_becomes

    async def new_channel(self, prefix="specific"):
        return f"{prefix}.client!1"

    async def group_add(self, group, channel):
        self.joined.append((group, channel))

    async def receive(self, channel):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis went away")
        try:
            return await self.messages.get()
        except asyncio.CancelledError:
            if self.cancel_becomes is None:
                raise
            raise self.cancel_becomes from None

    def put(self, topic, payload):
        self.messages.put_nowait({"type": "realtime.message", "topic": topic, "payload": payload})


@pytest.fixture
def stack_mode(settings):
    settings.EMBEDDED = False


def test_the_listener_rejoins_after_a_failed_receive_and_keeps_delivering(stack_mode, monkeypatch):
    layer = FakeLayer(failures=1)
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    async def scenario():
        hub = Hub.get()
        socket = Socket()
        sub = socket.subscriber()
        hub.subscribe("trades:BTC-USDT", sub)
        layer.put("trades:BTC-USDT", {"n": 1})
        layer.put("trades:ETH-USDT", {"n": 2})  # nobody subscribed
        layer.put("trades:BTC-USDT", {"n": 3})
        for _ in range(300):
            if len(socket.sent) == 2:
                break
            await asyncio.sleep(0.01)
        assert [p["n"] for _, p in socket.sent] == [1, 3]
        assert layer.joined == [("realtime", "specific.client!1")] * 2
        hub._listener.cancel()
        await asyncio.gather(hub._listener, return_exceptions=True)
        sub.close()

    run(scenario)


def test_a_cancel_that_surfaces_as_another_error_still_stops_the_listener(stack_mode, monkeypatch):
    # e.g. the Redis client's read timeout expiring as the server shuts the loop down
    layer = FakeLayer(cancel_becomes=TimeoutError("Timeout reading from redis"))
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    async def scenario():
        hub = Hub.get()
        await _settle()
        assert layer.joined
        hub._listener.cancel()
        done, _ = await asyncio.wait({hub._listener}, timeout=3)
        return bool(done) and hub._listener.cancelled()

    # Not asyncio.run: it would wait forever for a listener that ignores its cancellation.
    loop = asyncio.new_event_loop()
    try:
        stopped = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert stopped, "the listener swallowed its cancellation and kept retrying"
