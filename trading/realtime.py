"""Realtime fan-out: one subscription per process, delivery to local sockets in-process.

Producers call ``publish_many([(topic, payload), ...])`` (or ``publish(topic, payload)``)
after their commit: one call is one message to every web process, whatever the number of
updates in it (a feed tick is one call). In stack mode that message is one channel-layer
group message, sent from a long-lived event loop of the producer process (its Redis
connections are reused); in embedded mode it is handed straight to this process's hub.

Each web process runs one ``Hub``: it holds the single channel-layer subscription and the map
topic -> local subscribers. It encodes each update to its JSON text once (``Update``), not
once per socket, and hands it to every subscriber without waiting for any socket.

A subscriber is one socket's side of the hub. It conflates state-like topics (only the latest
ticker, index or candle waiting to be written is kept) and keeps the others (book deltas,
trades) in order in a bounded queue. A socket that cannot keep up is closed with 4008 by its
consumer (``on_overflow``) and never stalls the others. Two kinds:

* ``TransportSubscriber`` (sockets served by daphne over plain TCP, the production path):
  writes ready-made websocket frames (built once per update) straight to the connection's
  Twisted transport, synchronously from the hub's dispatch: no task, no await, and one
  ``send()`` per socket for all the updates of one dispatch. It sees the transport's own
  write buffer, so "cannot keep up" is measured: while more than ``HIGH_WATER`` bytes are
  unsent, updates wait in the subscriber (conflated / queued) instead of piling up in the
  server; a socket that stays that way for ``SEND_DEADLINE`` seconds, or whose queue
  exceeds ``QUEUE_LIMIT``, is dropped.
* ``Subscriber`` (any other ASGI server, tests): one task per socket awaits the ASGI
  ``send`` of a prebuilt ``websocket.send`` message; a send stuck for ``SEND_DEADLINE``
  seconds, or a queue over ``QUEUE_LIMIT``, drops the socket.

A subscriber can ``hold`` a topic while its consumer sends that topic's snapshot, then
``release`` it: updates published meanwhile follow the snapshot, and sequenced ones (book
deltas) already covered by the snapshot's ``sequence`` are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from itertools import chain

from channels.layers import get_channel_layer
from django.conf import settings

from trading.dependencies import REDIS, backoff_delay, dependency, unavailable

logger = logging.getLogger(__name__)

GROUP = "realtime"
MESSAGE = "realtime.message"  # one update: {"topic", "payload"} (what older producers send)
BATCH = "realtime.batch"  # several: {"updates": [[topic, payload], ...]}

QUEUE_LIMIT = 500  # non-conflated updates waiting for one socket before it is dropped
SEND_DEADLINE = 5.0  # seconds a socket may stay unable to take more before it is dropped
HIGH_WATER = 16 * 1024  # unsent bytes in a connection's transport buffer: above, the socket waits
WATCH_INTERVAL = 0.05  # how often waiting sockets are retried
GROUP_REFRESH_SECONDS = 60.0  # re-join the group this often (see Hub._stay_joined)
PUBLISH_TIMEOUT = 5.0
TRANSPORT_WRITES = True  # False: every socket goes through the ASGI send (bench comparison)


# --- encoding ----------------------------------------------------------------------------


def encode(topic: str, payload: dict) -> str:
    """The JSON text of one update (or snapshot) of ``topic``: its websocket text frame."""
    return json.dumps({"channel": topic, **payload}, separators=(",", ":"))


def text_frame(data: bytes) -> bytes:
    """An RFC 6455 server-to-client text frame: FIN, no mask, no extension."""
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data


class Update:
    """One published update, encoded once per process and shared by every subscriber."""

    __slots__ = ("_frame", "message", "payload", "text", "topic")

    def __init__(self, topic: str, payload: dict):
        self.topic = topic
        self.payload = payload
        self.text = encode(topic, payload)
        self.message = {"type": "websocket.send", "text": self.text}  # the ASGI send, prebuilt
        self._frame = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text.encode())
        return self._frame

    @property
    def sequence(self) -> int | None:
        sequence = self.payload.get("sequence")
        return sequence if type(sequence) is int else None


# --- producers ---------------------------------------------------------------------------


def publish(topic: str, payload: dict) -> None:
    """Send ``payload`` to every socket subscribed to ``topic``, in every web process.
    Call it after the commit that made the change (``transaction.on_commit``)."""
    publish_many([(topic, payload)])


_taps: list[Callable[[list[tuple[str, dict]]], object]] = []


def add_tap(tap: Callable[[list[tuple[str, dict]]], object]) -> None:
    """Let ``tap`` see every batch of updates published from this process, before it goes
    out (also when Redis is away): a lower app's producer (the engine's trades, the feed's
    index prints) reaches a higher app's watcher, the price alerts, without importing it.
    A tap runs in the producer's thread, so it must only hand the updates on."""
    _taps.append(tap)


def publish_many(updates: Iterable[tuple[str, dict]]) -> None:
    """Send several updates as one message (one channel-layer message, one hub dispatch).
    Each topic's updates keep their order. Call it from synchronous code, after the commit."""
    updates = [(topic, payload) for topic, payload in updates]
    if not updates:
        return
    for tap in _taps:
        try:
            tap(updates)
        except Exception:  # a watcher's fault must not cost the producer its publish
            logger.exception("realtime tap %r failed", tap)
    if settings.EMBEDDED:
        hub = Hub.current
        if hub is not None:
            with contextlib.suppress(RuntimeError):  # the hub's loop has closed (server gone): nobody to deliver to
                hub.loop.call_soon_threadsafe(hub.dispatch_many, updates)
        return
    redis = dependency(REDIS)
    if not redis.may_try():
        return  # Redis is down: drop it (clients resync from snapshots) rather than wait on it
    message = {"type": BATCH, "updates": updates}
    try:
        try:
            publisher().group_send(GROUP, message)
        except Exception as exc:
            if unavailable(exc) != REDIS:
                raise
            # The pool may hand out a connection from before a Redis restart, which fails
            # once and is dropped: one more try on a fresh one before calling Redis down.
            publisher().group_send(GROUP, message)
    except Exception as exc:  # a lost tick must not break the producer
        if unavailable(exc) is not None or isinstance(exc, TimeoutError):
            redis.failed(exc)
        else:
            logger.exception("realtime publish of %s failed", ", ".join(sorted({topic for topic, _ in updates})))
    else:
        redis.ok()


class Publisher:
    """A producer process's long-lived event loop (a daemon thread) for the channel layer:
    channels_redis keeps its connections per loop, so ``async_to_sync`` per publish (a new
    loop each time outside an event loop) would connect to Redis on every call."""

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="realtime-publisher", daemon=True)
        self.thread.start()

    def call(self, coroutine: Awaitable, timeout: float | None = None):
        """Run ``coroutine`` on the publisher's loop and wait for its result."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("Publisher.call from the publisher's own loop would deadlock")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(PUBLISH_TIMEOUT if timeout is None else timeout)
        except BaseException:
            future.cancel()
            raise

    def group_send(self, group: str, message: dict) -> None:
        self.call(get_channel_layer().group_send(group, message))


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> Publisher:
    """This process's publisher (a new one after a fork: threads do not survive it)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = Publisher()
        return _publisher


# --- subscribers -------------------------------------------------------------------------


class Subscriber:
    """One socket's side of the hub, for any ASGI server: ``send(update)`` is the socket's
    coroutine that writes one update; ``conflate(topic)`` says whether only the latest
    update of a topic matters; ``on_overflow()`` is called once when the socket is dropped
    (it must not block: close the socket in the background)."""

    def __init__(
        self, send: Callable[[Update], Awaitable], *, on_overflow: Callable[[], object], conflate: Callable[[str], bool]
    ):
        self._send = send
        self._on_overflow = on_overflow
        self._conflate = conflate
        self._latest: dict[str, Update] = {}
        self._queue: list[Update] = []
        self._held: dict[str, list[Update]] | None = None
        self._closed = False
        self._busy_since: float | None = None  # when the send in progress began
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self.task = self._loop.create_task(self._pump())

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, update: Update) -> bool:
        """Take one update (never blocks). True when the caller must call ``flush()`` once
        it has offered everything it has (``TransportSubscriber``)."""
        if self._closed or not self._take(update):
            return False
        return self._wake()

    def _take(self, update: Update) -> bool:
        topic = update.topic
        if self._held is not None and topic in self._held:
            held = self._held[topic]
            if self._conflate(topic):
                held[:] = [update]
            elif len(held) >= QUEUE_LIMIT:
                self._drop(f"more than {QUEUE_LIMIT} updates held for {topic}")
                return False
            else:
                held.append(update)
            return False
        if self._conflate(topic):
            self._latest[topic] = update
        else:
            if len(self._queue) >= QUEUE_LIMIT:
                self._drop(f"more than {QUEUE_LIMIT} updates queued")
                return False
            self._queue.append(update)
        return True

    def _wake(self) -> bool:
        if self._busy_since is not None and self._loop.time() - self._busy_since > SEND_DEADLINE:
            self._drop(f"a send pending for more than {SEND_DEADLINE:g}s")
        else:
            self._ready.set()
        return False

    def flush(self) -> None:
        """Write what is waiting, if the socket can take it (no-op here: the pump writes)."""

    def hold(self, topic: str) -> None:
        """Keep ``topic``'s updates back (while its snapshot is being sent)."""
        if self._held is None:
            self._held = {}
        self._held[topic] = []

    def release(self, topic: str, *, after_sequence: int | None = None) -> None:
        """Deliver what was held for ``topic``, skipping sequenced updates the snapshot
        (at ``after_sequence``) already covers."""
        held = self._held.pop(topic, None) if self._held else None
        if not self._held:
            self._held = None  # nothing held: no lookup per update
        if not held or self._closed:
            return
        wake = False
        for update in held:
            if after_sequence is not None and update.sequence is not None and update.sequence <= after_sequence:
                continue
            if not self._take(update):
                return  # dropped
            wake = True
        if wake and self._wake():
            self.flush()

    def _drop(self, reason: str) -> None:
        if self._closed:
            return
        logger.warning("realtime: dropping a websocket that cannot keep up (%s)", reason)
        self._stop()
        self._on_overflow()

    def _stop(self) -> None:
        self._closed = True
        self._queue, self._latest, self._held = [], {}, None

    async def _pump(self) -> None:
        loop = self._loop
        try:
            while not self._closed:
                await self._ready.wait()
                self._ready.clear()
                queued, self._queue = self._queue, []
                latest, self._latest = self._latest, {}
                for update in chain(queued, latest.values()):
                    self._busy_since = loop.time()
                    await self._send(update)
                self._busy_since = None
        except asyncio.CancelledError:
            pass
        except Exception:  # the socket went away mid-send: its disconnect will follow
            logger.debug("subscriber pump stopped", exc_info=True)
            self._stop()

    def close(self) -> None:
        self._stop()
        self.task.cancel()


class DaphneSocket:
    """Direct access to a websocket served by daphne over TCP (or a Unix socket): its
    autobahn protocol (for the connection state) and its Twisted transport (to write frames
    and to see how much is still unsent). ``of(send)`` returns None for anything else --
    another server, TLS terminated by daphne itself, per-message compression, a ``send``
    wrapped by middleware -- and the caller falls back to the ASGI ``send``."""

    __slots__ = ("_open", "protocol", "transport")

    def __init__(self, protocol, transport):
        self.protocol = protocol
        self.transport = transport
        self._open = protocol.STATE_OPEN

    @classmethod
    def of(cls, send) -> DaphneSocket | None:
        if not TRANSPORT_WRITES or not isinstance(send, functools.partial) or len(send.args) != 1:
            return None
        try:
            from daphne.server import Server
            from daphne.ws_protocol import WebSocketProtocol
            from twisted.internet.abstract import FileDescriptor
        except ImportError:
            return None
        protocol = send.args[0]
        if getattr(send.func, "__func__", None) is not Server.handle_reply or not isinstance(
            protocol, WebSocketProtocol
        ):
            return None
        transport = protocol.transport
        if (
            not isinstance(transport, FileDescriptor)
            or getattr(transport, "TLS", False)
            or not hasattr(transport, "writeSomeData")
            or getattr(protocol, "_perMessageCompress", None) is not None
            or getattr(protocol, "autoFragmentSize", 0)
        ):
            return None
        return cls(protocol, transport)

    def is_open(self) -> bool:
        transport = self.transport
        return (
            self.protocol.state == self._open
            and transport.connected
            and not transport.disconnecting
            and not self.protocol.muted
        )

    def is_closed(self) -> bool:
        """Closing or closed for good (as opposed to not open yet)."""
        transport = self.transport
        protocol = self.protocol
        return (
            protocol.state in (protocol.STATE_CLOSING, protocol.STATE_CLOSED)
            or not transport.connected
            or transport.disconnecting
            or protocol.muted
        )

    def unsent(self) -> int:
        """Bytes written to the transport that the kernel has not taken yet."""
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def write(self, data: bytes, unsent: int) -> None:
        """Write ``data`` after whatever is unsent: straight to the socket when nothing is
        (what the kernel does not take goes to the transport's buffer), else appended to
        the transport's buffer, which the reactor flushes as the socket drains."""
        transport = self.transport
        if unsent:
            transport.write(data)
            return
        sent = transport.writeSomeData(data)
        if type(sent) is not int:  # the connection is lost: let the transport find out and close
            transport.write(data)
        elif sent < len(data):
            transport.write(data[sent:])


class TransportSubscriber(Subscriber):
    """A subscriber that writes frames straight to a daphne connection (see the module
    docstring): synchronous, one write per ``flush()``, bounded by what the connection has
    not sent yet."""

    def __init__(
        self, socket: DaphneSocket, hub: Hub, *, on_overflow: Callable[[], object], conflate: Callable[[str], bool]
    ):
        self._socket = socket
        self._hub = hub
        self._on_overflow = on_overflow
        self._conflate = conflate
        self._latest = {}
        self._queue = []
        self._held = None
        self._closed = False
        self._dirty = False  # offered since the last flush
        self._waiting_since: float | None = None  # the socket could not take what is waiting
        self._loop = hub.loop
        self.task = None

    def _wake(self) -> bool:
        if self._dirty:
            return False
        self._dirty = True
        return True

    def flush(self) -> None:
        self._dirty = False
        if self._closed:
            return
        queue, latest = self._queue, self._latest
        if not queue and not latest:
            self._stop_waiting()
            return
        socket = self._socket
        if not socket.is_open():
            if socket.is_closed():  # the consumer's disconnect will follow
                self._stop()
                self._hub._backlogged.discard(self)
                return
            unsent = HIGH_WATER + 1  # not open yet: wait, as for a full buffer
        else:
            unsent = socket.unsent()
        if unsent > HIGH_WATER:
            now = self._loop.time()
            if self._waiting_since is None:
                self._waiting_since = now
                self._hub._watch(self)
            elif now - self._waiting_since > SEND_DEADLINE:
                self._drop(f"{unsent} bytes unsent for more than {SEND_DEADLINE:g}s")
            return
        self._stop_waiting()
        if latest:
            frames = [update.frame for update in queue]
            frames += [update.frame for update in latest.values()]
            self._latest = {}
        else:
            frames = [update.frame for update in queue]
        if queue:
            self._queue = []
        socket.write(frames[0] if len(frames) == 1 else b"".join(frames), unsent)

    def _stop_waiting(self) -> None:
        if self._waiting_since is not None:
            self._waiting_since = None
            self._hub._backlogged.discard(self)

    def _drop(self, reason: str) -> None:
        self._hub._backlogged.discard(self)
        super()._drop(reason)

    def close(self) -> None:
        self._stop()
        self._hub._backlogged.discard(self)


# --- the hub -----------------------------------------------------------------------------


class Hub:
    """The per-process router. Created by the first websocket of the process."""

    current: Hub | None = None
    _lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.topics: dict[str, set[Subscriber]] = {}
        self.delivered = 0  # (update, subscriber) pairs offered
        self.encoded = 0  # updates encoded (once each, whatever the number of subscribers)
        self._listener: asyncio.Task | None = None
        self._backlogged: set[TransportSubscriber] = set()
        self._watching: asyncio.TimerHandle | None = None

    @classmethod
    def get(cls) -> Hub:
        loop = asyncio.get_running_loop()
        with cls._lock:
            if cls.current is None or cls.current.loop is not loop:
                cls.current = Hub(loop)
                cls.current.start()
            return cls.current

    def start(self) -> None:
        if not settings.EMBEDDED:
            self._listener = self.loop.create_task(self._listen())

    def subscriber(self, send, *, on_overflow: Callable[[], object], conflate: Callable[[str], bool]) -> Subscriber:
        """A subscriber for a socket whose ASGI ``send`` is ``send``: frames written straight
        to the connection when daphne serves it directly, else through ``send``."""
        socket = DaphneSocket.of(send)
        if socket is not None:
            return TransportSubscriber(socket, self, on_overflow=on_overflow, conflate=conflate)

        async def deliver(update: Update) -> None:
            await send(update.message)

        return Subscriber(deliver, on_overflow=on_overflow, conflate=conflate)

    async def _listen(self) -> None:
        """The process's one channel-layer subscription. It outlives Redis: while Redis is
        away it retries with backoff, and once it is back it joins the group again (a
        restarted Redis has forgotten the membership) before it receives."""
        layer = get_channel_layer()
        # The default prefix: channels_redis pops every process-local channel of a layer from
        # one key ("specific.<client>!"), one receiver at a time; a channel under another
        # prefix would starve while any consumer holds the receive lock.
        channel = await layer.new_channel()
        refresher = self.loop.create_task(self._stay_joined(layer, channel))
        redis = dependency(REDIS)
        joined, failures = False, 0
        try:
            while True:
                try:
                    if not joined:
                        await layer.group_add(GROUP, channel)
                        joined = True
                    message = await layer.receive(channel)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if asyncio.current_task().cancelling():
                        # A cancel that surfaced as another error (a read timeout firing at the
                        # same moment): retrying would swallow it and the loop could never stop.
                        raise asyncio.CancelledError from None
                    failures += 1
                    if unavailable(exc) == REDIS:
                        redis.failed(exc)
                    else:
                        logger.exception("realtime hub receive failed; retrying")
                    joined = False
                    await asyncio.sleep(backoff_delay(failures))
                    continue
                failures = 0
                redis.ok()
                try:
                    self.handle(message)
                except Exception:
                    logger.exception("realtime hub could not dispatch a %s message", message.get("type"))
        finally:
            refresher.cancel()

    async def _stay_joined(self, layer, channel: str) -> None:
        """Group membership expires (channels_redis: ``group_expiry``, a day by default), and
        a Redis that restarted without its data, failed over or was flushed has forgotten it:
        the process would silently stop receiving. Re-join periodically (a ZADD a minute)."""
        interval = min(GROUP_REFRESH_SECONDS, getattr(layer, "group_expiry", 86400) / 2)
        while True:
            await asyncio.sleep(interval)
            try:
                await layer.group_add(GROUP, channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if unavailable(exc) == REDIS:
                    dependency(REDIS).failed(exc)  # the receive loop re-joins once it is back
                else:
                    logger.exception("realtime hub could not refresh its group membership")

    def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == BATCH:
            self.dispatch_many(message["updates"])
        elif kind == MESSAGE:
            self.dispatch(message["topic"], message["payload"])

    def dispatch(self, topic: str, payload: dict) -> None:
        self.dispatch_many(((topic, payload),))

    def dispatch_many(self, updates: Iterable) -> None:
        """Offer each update to its topic's subscribers (encoded once), then let each
        subscriber that took something write it all at once. Never awaits a socket."""
        touched = []
        for topic, payload in updates:
            subscribers = self.topics.get(topic)
            if not subscribers:
                continue
            update = Update(topic, payload)
            self.encoded += 1
            subscribers = tuple(subscribers)
            for subscriber in subscribers:
                if subscriber.offer(update):
                    touched.append(subscriber)
            self.delivered += len(subscribers)
        for subscriber in touched:
            self._flush(subscriber)

    @staticmethod
    def _flush(subscriber: Subscriber) -> None:
        try:
            subscriber.flush()
        except Exception:  # one broken socket must not keep the others from their updates
            logger.exception("realtime: writing to a websocket failed")
            subscriber._drop("write failed")

    def _watch(self, subscriber: TransportSubscriber) -> None:
        self._backlogged.add(subscriber)
        if self._watching is None:
            self._watching = self.loop.call_later(WATCH_INTERVAL, self._retry_backlogged)

    def _retry_backlogged(self) -> None:
        self._watching = None
        for subscriber in tuple(self._backlogged):
            self._flush(subscriber)
        if self._backlogged:
            self._watching = self.loop.call_later(WATCH_INTERVAL, self._retry_backlogged)

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        self.topics.setdefault(topic, set()).add(subscriber)

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        subscribers = self.topics.get(topic)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self.topics[topic]
