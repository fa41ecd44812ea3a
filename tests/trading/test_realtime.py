"""The realtime hub and its subscribers, in a bare asyncio loop (no database, no sockets):
one encoding per update, conflation of state-like topics, ordered bounded queues for the
others, snapshots held then released, a slow client dropped without stalling anyone else, a
dispatch that never waits on a socket, and the producer side (one message per
``publish_many``, on a long-lived loop)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from trading import realtime
from trading.realtime import QUEUE_LIMIT, DaphneSocket, Hub, Subscriber, TransportSubscriber, Update


def _conflate(topic: str) -> bool:
    return topic.startswith(("ticker:", "index:", "candles:"))


def offer(sub: Subscriber, topic: str, payload: dict) -> None:
    if sub.offer(Update(topic, payload)):
        sub.flush()


class Socket:
    """A fake socket behind the generic (ASGI send) path: records what was sent; ``gate``
    (when cleared) holds every send."""

    def __init__(self, *, blocked: bool = False):
        self.sent: list[tuple[str, dict]] = []
        self.updates: list[Update] = []
        self.gate = asyncio.Event()
        if not blocked:
            self.gate.set()
        self.started = asyncio.Event()  # a send has begun (and may be waiting on the gate)
        self.overflowed = 0

    async def send(self, update: Update) -> None:
        self.started.set()
        await self.gate.wait()
        self.sent.append((update.topic, update.payload))
        self.updates.append(update)

    def on_overflow(self) -> None:
        self.overflowed += 1

    def subscriber(self) -> Subscriber:
        return Subscriber(self.send, on_overflow=self.on_overflow, conflate=_conflate)


class Connection:
    """A fake daphne connection behind ``TransportSubscriber``: ``unsent`` is what its
    transport has not handed to the kernel yet (the test sets it); ``writes`` what was
    written, one entry per write."""

    def __init__(self):
        self.writes: list[bytes] = []
        self.unsent_bytes = 0
        self.open = True
        self.overflowed = 0

    def is_open(self) -> bool:
        return self.open

    def is_closed(self) -> bool:
        return not self.open

    def unsent(self) -> int:
        return self.unsent_bytes

    def write(self, data: bytes, unsent: int) -> None:
        assert unsent == self.unsent_bytes
        self.writes.append(data)

    def on_overflow(self) -> None:
        self.overflowed += 1

    def subscriber(self, hub: Hub) -> TransportSubscriber:
        return TransportSubscriber(self, hub, on_overflow=self.on_overflow, conflate=_conflate)

    def frames(self) -> list[dict]:
        """Every frame written, parsed as a websocket client would."""
        reader = StreamReader()
        reader.feed_data(b"".join(self.writes))
        reader.feed_eof()
        out = []
        while reader.buffer:
            frame = _parse(reader)
            assert frame.opcode is Opcode.TEXT and frame.fin
            out.append(json.loads(frame.data))
        return out


def _parse(reader: StreamReader) -> Frame:
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


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


# --- encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_text_frames_parse_as_rfc6455_frames_of_every_length_form(size):
    text = "é" * (size // 2) + "x" * (size % 2)  # multi-byte UTF-8: the length is in bytes
    reader = StreamReader()
    reader.feed_data(realtime.text_frame(text.encode()))
    reader.feed_eof()
    frame = _parse(reader)
    assert (frame.opcode, frame.fin, frame.data.decode()) == (Opcode.TEXT, True, text)
    assert not reader.buffer  # nothing after the frame


def test_an_update_is_the_compact_frame_the_protocol_documents():
    update = Update("index:BTC", {"data": {"price": "65000.5", "stale": False}})
    assert update.text == '{"channel":"index:BTC","data":{"price":"65000.5","stale":false}}'
    assert update.message == {"type": "websocket.send", "text": update.text}
    assert update.frame == realtime.text_frame(update.text.encode())
    assert update.frame is update.frame  # built once
    assert Update("book:BTC-USDT", {"type": "delta", "sequence": 7}).sequence == 7
    assert Update("book:BTC-USDT", {"type": "delta", "sequence": "7"}).sequence is None


def test_each_update_is_encoded_once_whatever_the_number_of_sockets(monkeypatch):
    calls = []

    def counting_encode(topic, payload):
        calls.append(topic)
        return json.dumps({"channel": topic, **payload}, separators=(",", ":"))

    monkeypatch.setattr(realtime, "encode", counting_encode)

    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        sockets, connections = [Socket() for _ in range(500)], [Connection() for _ in range(500)]
        subs = [s.subscriber() for s in sockets] + [c.subscriber(hub) for c in connections]
        for sub in subs:
            hub.subscribe("index:BTC", sub)
            hub.subscribe("book:BTC-USDT", sub)
        hub.dispatch_many([("index:BTC", {"n": 1}), ("book:BTC-USDT", {"sequence": 1}), ("trades:ETH-USDT", {"n": 2})])
        await _settle()
        hub.dispatch("index:BTC", {"n": 3})
        await _settle()
        assert calls == ["index:BTC", "book:BTC-USDT", "index:BTC"]  # nobody listens to trades:ETH-USDT
        assert hub.encoded == 3 and hub.delivered == 3000
        # Every socket got the very same encoded objects.
        first = sockets[0].updates
        assert [u.payload for u in first] == [{"sequence": 1}, {"n": 1}, {"n": 3}]  # queued before conflated
        for socket in sockets:
            assert all(a is b for a, b in zip(socket.updates, first, strict=True))
        frames = connections[0].writes
        assert len(frames) == 2  # one write per dispatch
        for connection in connections:
            assert connection.writes == frames
        for sub in subs:
            sub.close()

    run(scenario)


# --- the generic (ASGI send) subscriber -------------------------------------------------------


def test_conflated_topic_delivers_only_the_latest_once_the_socket_unblocks():
    async def scenario():
        socket = Socket(blocked=True)
        sub = socket.subscriber()
        offer(sub, "ticker:BTC-USDT", {"n": 0})
        await asyncio.wait_for(socket.started.wait(), 1)  # the pump is stuck in send(n=0)
        for n in range(1, 101):
            offer(sub, "ticker:BTC-USDT", {"n": n})
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
        offer(sub, "index:BTC", {"n": -1})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(50):
            offer(sub, "ticker:BTC-USDT", {"n": n})
            offer(sub, "ticker:ETH-USDT", {"n": n})
            offer(sub, "candles:BTC-USDT:1m", {"n": n})
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
        offer(sub, "ticker:BTC-USDT", {"n": -1})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(QUEUE_LIMIT * 4):
            offer(sub, "ticker:BTC-USDT", {"n": n})
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
        offer(sub, "trades:BTC-USDT", {"n": 0})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(1, 300):
            offer(sub, "trades:BTC-USDT" if n % 2 else "book:BTC-USDT", {"n": n})
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
        offer(sub, "book:BTC-USDT", {"n": 0})
        await asyncio.wait_for(socket.started.wait(), 1)
        for n in range(1, QUEUE_LIMIT + 1):
            offer(sub, "book:BTC-USDT", {"n": n})
        assert socket.overflowed == 0  # exactly QUEUE_LIMIT waiting: still tolerated
        offer(sub, "book:BTC-USDT", {"n": QUEUE_LIMIT + 1})
        assert socket.overflowed == 1
        assert sub.closed
        for n in range(100):  # a dropped subscriber ignores the rest, and overflows once
            offer(sub, "book:BTC-USDT", {"n": n})
            offer(sub, "ticker:BTC-USDT", {"n": n})
        assert socket.overflowed == 1
        sub.close()
        await _settle()
        assert sub.task.done()

    run(scenario)


def test_a_send_stuck_past_the_deadline_drops_the_socket_even_with_a_short_queue(monkeypatch):
    monkeypatch.setattr(realtime, "SEND_DEADLINE", 0.2)

    async def scenario():
        socket = Socket(blocked=True)
        sub = socket.subscriber()
        offer(sub, "index:BTC", {"n": 0})
        await asyncio.wait_for(socket.started.wait(), 1)
        offer(sub, "index:BTC", {"n": 1})  # conflated: the queue never fills
        assert socket.overflowed == 0
        await asyncio.sleep(0.3)
        offer(sub, "index:BTC", {"n": 2})
        assert socket.overflowed == 1 and sub.closed
        sub.close()

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
        assert not asyncio.iscoroutinefunction(hub.dispatch_many)
        started = time.perf_counter()
        for n in range(50):
            hub.dispatch_many([("ticker:BTC-USDT", {"n": n}), ("trades:BTC-USDT", {"n": n})])
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

        async def broken(update):
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


@pytest.mark.parametrize("kind", ["generic", "transport"])
def test_a_held_book_follows_its_snapshot_without_the_deltas_it_already_includes(kind):
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        if kind == "generic":
            socket = Socket()
            sub = socket.subscriber()
        else:
            connection = Connection()
            sub = connection.subscriber(hub)
        hub.subscribe("book:BTC-USDT", sub)
        hub.subscribe("index:BTC", sub)
        sub.hold("book:BTC-USDT")
        for sequence in (4, 5, 6, 7):  # published while the snapshot (at 5) is being read
            hub.dispatch("book:BTC-USDT", {"type": "delta", "sequence": sequence})
        hub.dispatch("index:BTC", {"n": 1})  # other topics are not held
        await _settle()

        def seen():
            return (
                socket.sent
                if kind == "generic"
                else [(f["channel"], {k: v for k, v in f.items() if k != "channel"}) for f in connection.frames()]
            )

        assert seen() == [("index:BTC", {"n": 1})]
        sub.release("book:BTC-USDT", after_sequence=5)
        hub.dispatch("book:BTC-USDT", {"type": "delta", "sequence": 8})
        await _settle()
        assert [p.get("sequence") for t, p in seen() if t == "book:BTC-USDT"] == [6, 7, 8]
        # Releasing what was never held, or twice, is harmless.
        sub.release("book:BTC-USDT", after_sequence=100)
        sub.release("trades:BTC-USDT")
        assert len(seen()) == 4
        sub.close()

    run(scenario)


def test_holding_too_many_updates_drops_the_socket():
    async def scenario():
        socket = Socket()
        sub = socket.subscriber()
        sub.hold("book:BTC-USDT")
        for sequence in range(QUEUE_LIMIT + 1):
            offer(sub, "book:BTC-USDT", {"sequence": sequence})
        assert socket.overflowed == 1
        sub.release("book:BTC-USDT", after_sequence=0)
        await _settle()
        assert socket.sent == []
        sub.close()

    run(scenario)


# --- the direct (daphne transport) subscriber --------------------------------------------------


def test_a_transport_subscriber_writes_each_dispatch_at_once_and_in_order():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        connection = Connection()
        sub = connection.subscriber(hub)
        for topic in ("index:BTC", "book:BTC-USDT", "trades:BTC-USDT"):
            hub.subscribe(topic, sub)
        hub.dispatch_many(
            [("book:BTC-USDT", {"sequence": 1}), ("index:BTC", {"n": 1}), ("book:BTC-USDT", {"sequence": 2})]
        )
        assert len(connection.writes) == 1  # synchronously, within the dispatch: no task
        hub.dispatch("trades:BTC-USDT", {"n": 1})
        assert len(connection.writes) == 2
        assert [(f["channel"], f.get("sequence", f.get("n"))) for f in connection.frames()] == [
            ("book:BTC-USDT", 1),
            ("book:BTC-USDT", 2),
            ("index:BTC", 1),
            ("trades:BTC-USDT", 1),
        ]
        sub.close()
        hub.dispatch("trades:BTC-USDT", {"n": 2})
        assert len(connection.writes) == 2

    run(scenario)


def test_a_backed_up_connection_gets_conflated_ticks_and_every_delta_once_it_drains(monkeypatch):
    monkeypatch.setattr(realtime, "WATCH_INTERVAL", 0.01)

    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        connection = Connection()
        sub = connection.subscriber(hub)
        hub.subscribe("index:BTC", sub)
        hub.subscribe("book:BTC-USDT", sub)
        connection.unsent_bytes = realtime.HIGH_WATER + 1  # the client stopped reading
        for n in range(100):
            hub.dispatch_many([("index:BTC", {"n": n}), ("book:BTC-USDT", {"sequence": n})])
        assert connection.writes == [] and connection.overflowed == 0
        assert sub in hub._backlogged
        connection.unsent_bytes = realtime.HIGH_WATER  # it read again: the hub retries by itself
        await asyncio.sleep(0.1)
        assert len(connection.writes) == 1
        frames = connection.frames()
        assert [f["sequence"] for f in frames if f["channel"] == "book:BTC-USDT"] == list(range(100))
        assert [f["n"] for f in frames if f["channel"] == "index:BTC"] == [99]
        assert not hub._backlogged and hub._watching is None
        sub.close()

    run(scenario)


def test_a_connection_that_stays_backed_up_is_dropped_and_the_others_keep_receiving(monkeypatch):
    monkeypatch.setattr(realtime, "WATCH_INTERVAL", 0.01)
    monkeypatch.setattr(realtime, "SEND_DEADLINE", 0.2)

    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        slow, fast = Connection(), Connection()
        subs = [slow.subscriber(hub), fast.subscriber(hub)]
        for sub in subs:
            hub.subscribe("index:BTC", sub)
        slow.unsent_bytes = realtime.HIGH_WATER + 1
        started = time.monotonic()
        n = 0
        while not slow.overflowed and time.monotonic() - started < 2:
            hub.dispatch("index:BTC", {"n": n})  # conflated only: the queue never fills
            n += 1
            await asyncio.sleep(0.02)
        waited = time.monotonic() - started
        assert slow.overflowed == 1 and 0.2 <= waited < 1, waited
        assert slow.writes == [] and subs[0].closed
        assert len(fast.writes) == n  # every dispatch, written at once
        hub.dispatch("index:BTC", {"n": n})
        await asyncio.sleep(0.05)
        assert len(fast.writes) == n + 1 and slow.overflowed == 1
        assert not hub._backlogged
        for sub in subs:
            sub.close()

    run(scenario)


def test_a_transport_subscriber_stops_writing_once_the_connection_closes():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        connection = Connection()
        sub = connection.subscriber(hub)
        hub.subscribe("trades:BTC-USDT", sub)
        hub.dispatch("trades:BTC-USDT", {"n": 1})
        connection.open = False  # closing: the consumer's disconnect will follow
        hub.dispatch("trades:BTC-USDT", {"n": 2})
        hub.dispatch("trades:BTC-USDT", {"n": 3})
        assert len(connection.writes) == 1 and sub.closed and connection.overflowed == 0

    run(scenario)


def test_a_write_that_raises_drops_only_that_socket():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        broken, alive = Connection(), Connection()

        def explode(data, unsent):
            raise RuntimeError("transport in a state we did not expect")

        broken.write = explode
        subs = [broken.subscriber(hub), alive.subscriber(hub)]
        for sub in subs:
            hub.subscribe("trades:BTC-USDT", sub)
        hub.dispatch("trades:BTC-USDT", {"n": 1})
        hub.dispatch("trades:BTC-USDT", {"n": 2})
        assert broken.overflowed == 1 and subs[0].closed
        assert len(alive.writes) == 2
        for sub in subs:
            sub.close()

    run(scenario)


def test_the_direct_path_is_only_taken_for_a_daphne_connection(monkeypatch):
    import functools

    async def send(message):
        pass

    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        for candidate in (send, functools.partial(send), functools.partial(print, object())):
            assert DaphneSocket.of(candidate) is None
            sub = hub.subscriber(candidate, on_overflow=lambda: None, conflate=_conflate)
            assert type(sub) is Subscriber
            sub.close()

    run(scenario)


# --- producers and the listener ----------------------------------------------------------------


def test_embedded_publish_from_another_thread_reaches_the_loops_hub(settings):
    settings.EMBEDDED = True

    async def scenario():
        hub = Hub.get()
        assert Hub.get() is hub and hub._listener is None  # embedded: no channel layer
        socket = Socket()
        sub = socket.subscriber()
        hub.subscribe("index:BTC", sub)
        hub.subscribe("book:BTC-USDT", sub)
        producer = threading.Thread(target=realtime.publish, args=("index:BTC", {"data": {"price": "1"}}))
        producer.start()
        await asyncio.get_running_loop().run_in_executor(None, producer.join)
        batch = threading.Thread(
            target=realtime.publish_many,
            args=([("book:BTC-USDT", {"sequence": 1}), ("index:BTC", {"data": {"price": "2"}})],),
        )
        batch.start()
        await asyncio.get_running_loop().run_in_executor(None, batch.join)
        for _ in range(100):
            if len(socket.sent) == 3:
                break
            await asyncio.sleep(0.01)
        assert socket.sent == [
            ("index:BTC", {"data": {"price": "1"}}),
            ("book:BTC-USDT", {"sequence": 1}),
            ("index:BTC", {"data": {"price": "2"}}),
        ]
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
    """The channel layer as the hub's listener and the publisher see it."""

    def __init__(self, *, failures: int = 0, cancel_becomes=None, group_expiry: int = 86400):
        self.messages: asyncio.Queue | None = None
        self.joined: list[tuple[str, str]] = []
        self.sent: list[tuple[str, dict, asyncio.AbstractEventLoop, str]] = []
        self.failures = failures
        self.cancel_becomes = cancel_becomes
        self.group_expiry = group_expiry
        self.send_error: Exception | None = None

    async def new_channel(self, prefix="specific"):
        self.messages = asyncio.Queue()
        return f"{prefix}.client!1"

    async def group_add(self, group, channel):
        self.joined.append((group, channel))

    async def group_send(self, group, message):
        if self.send_error:
            raise self.send_error
        self.sent.append((group, message, asyncio.get_running_loop(), threading.current_thread().name))

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

    def put_batch(self, updates):
        self.messages.put_nowait({"type": "realtime.batch", "updates": [list(u) for u in updates]})


@pytest.fixture
def stack_mode(settings):
    settings.EMBEDDED = False


async def _until(condition, seconds: float = 3) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


def test_the_listener_rejoins_after_a_failed_receive_and_keeps_delivering(stack_mode, monkeypatch):
    layer = FakeLayer(failures=1)
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    async def scenario():
        hub = Hub.get()
        socket = Socket()
        sub = socket.subscriber()
        hub.subscribe("trades:BTC-USDT", sub)
        await _until(lambda: layer.messages is not None)
        layer.put("trades:BTC-USDT", {"n": 1})
        layer.put("trades:ETH-USDT", {"n": 2})  # nobody subscribed
        layer.put("trades:BTC-USDT", {"n": 3})
        await _until(lambda: len(socket.sent) == 2)
        assert [p["n"] for _, p in socket.sent] == [1, 3]
        assert layer.joined == [("realtime", "specific.client!1")] * 2
        hub._listener.cancel()
        await asyncio.gather(hub._listener, return_exceptions=True)
        sub.close()

    run(scenario)


def test_the_listener_dispatches_a_batch_in_order_and_survives_a_bad_message(stack_mode, monkeypatch):
    layer = FakeLayer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    async def scenario():
        hub = Hub.get()
        socket = Socket()
        sub = socket.subscriber()
        for topic in ("index:BTC", "book:BTC-USDT"):
            hub.subscribe(topic, sub)
        await _until(lambda: layer.messages is not None)
        layer.messages.put_nowait({"type": "realtime.batch"})  # no updates: logged, skipped
        layer.put_batch(
            [("book:BTC-USDT", {"sequence": 1}), ("index:BTC", {"n": 1}), ("book:BTC-USDT", {"sequence": 2})]
        )
        await _until(lambda: len(socket.sent) == 3)
        layer.put("index:BTC", {"n": 2})
        await _until(lambda: len(socket.sent) == 4)
        assert socket.sent == [
            ("book:BTC-USDT", {"sequence": 1}),
            ("book:BTC-USDT", {"sequence": 2}),
            ("index:BTC", {"n": 1}),
            ("index:BTC", {"n": 2}),
        ]
        assert hub.encoded == 4
        hub._listener.cancel()
        await asyncio.gather(hub._listener, return_exceptions=True)
        sub.close()

    run(scenario)


def test_the_listener_renews_its_group_membership_before_it_expires(stack_mode, monkeypatch):
    layer = FakeLayer(group_expiry=1)  # renewed every half expiry (or GROUP_REFRESH_SECONDS)
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    async def scenario():
        hub = Hub.get()
        await _until(lambda: layer.joined)
        await asyncio.sleep(1.2)
        joins = len(layer.joined)
        hub._listener.cancel()
        await asyncio.gather(hub._listener, return_exceptions=True)
        await asyncio.sleep(0.6)
        return joins, len(layer.joined)

    joins, after_stop = run(scenario)
    assert joins == 3  # at start, then at 0.5 s and 1.0 s
    assert after_stop == joins  # the renewal stops with the listener


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


def test_publish_many_is_one_group_message_sent_from_one_long_lived_loop(stack_mode, monkeypatch):
    layer = FakeLayer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)
    updates = [
        ("index:BTC", {"data": {"price": "1"}}),
        ("ticker:BTC-USDT", {"data": {}}),
        ("book:BTC-USDT", {"sequence": 3}),
    ]
    realtime.publish_many(updates)
    realtime.publish_many(iter(updates[:1]))  # any iterable
    realtime.publish("index:ETH", {"data": {"price": "2"}})
    realtime.publish_many([])  # nothing to send: no message

    assert [(group, message) for group, message, _, _ in layer.sent] == [
        ("realtime", {"type": "realtime.batch", "updates": updates}),
        ("realtime", {"type": "realtime.batch", "updates": updates[:1]}),
        ("realtime", {"type": "realtime.batch", "updates": [("index:ETH", {"data": {"price": "2"}})]}),
    ]
    loops = {loop for _, _, loop, _ in layer.sent}
    assert len(loops) == 1 and not next(iter(loops)).is_closed()  # the same loop, still running
    assert {thread for _, _, _, thread in layer.sent} == {"realtime-publisher"}
    assert realtime.publisher() is realtime.publisher()


def test_a_failed_publish_is_logged_not_raised(stack_mode, monkeypatch, caplog):
    layer = FakeLayer()
    layer.send_error = ConnectionError("Redis went away")
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)
    with caplog.at_level("ERROR", logger="trading.realtime"):
        realtime.publish_many([("index:BTC", {"n": 1}), ("book:BTC-USDT", {"n": 1})])
    assert [r.getMessage() for r in caplog.records] == ["realtime publish of book:BTC-USDT, index:BTC failed"]
    layer.send_error = None
    realtime.publish("index:BTC", {"n": 2})  # the publisher still works afterwards
    assert len(layer.sent) == 1


class FakeTransport:
    """What ``DaphneSocket`` uses of a Twisted TCP transport. The kernel takes ``accept``
    bytes per send (or the connection is lost: an exception instance)."""

    def __init__(self, accept):
        self.accept = accept
        self.sent: list[bytes] = []  # taken by the kernel
        self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0
        self._tempDataBuffer: list[bytes] = []

    def writeSomeData(self, data):
        if isinstance(self.accept, Exception):
            return self.accept
        taken = bytes(data[: self.accept])
        self.sent.append(taken)
        return len(taken)

    def write(self, data):
        assert type(data) is bytes
        self._tempDataBuffer.append(data)
        self._tempDataLen += len(data)


class OpenProtocol:
    STATE_OPEN, STATE_CLOSING, STATE_CLOSED = 3, 2, 0
    state = STATE_OPEN
    muted = False


def test_a_daphne_socket_writes_straight_to_the_kernel_and_buffers_only_the_rest():
    transport = FakeTransport(accept=1 << 20)
    socket = DaphneSocket(OpenProtocol(), transport)
    socket.write(b"frame-1", socket.unsent())
    assert transport.sent == [b"frame-1"] and socket.unsent() == 0

    transport.accept = 3  # the kernel's buffer is nearly full
    socket.write(b"frame-2", socket.unsent())
    assert transport.sent[-1] == b"fra" and transport._tempDataBuffer == [b"me-2"]
    assert socket.unsent() == 4
    socket.write(b"frame-3", socket.unsent())  # something unsent: after it, never around it
    assert transport.sent[-1] == b"fra" and transport._tempDataBuffer == [b"me-2", b"frame-3"]
    assert socket.unsent() == 11

    transport.dataBuffer, transport.offset = b"xxxxx", 2  # partly sent by the reactor
    transport._tempDataBuffer, transport._tempDataLen = [], 0
    assert socket.unsent() == 3


def test_a_daphne_socket_leaves_a_lost_connection_to_the_transport():
    from twisted.internet import main

    transport = FakeTransport(accept=main.CONNECTION_LOST)
    socket = DaphneSocket(OpenProtocol(), transport)
    socket.write(b"frame", 0)
    assert transport.sent == [] and transport._tempDataBuffer == [b"frame"]  # its write finds out, and closes
