"""Realtime fan-out: one subscription per process, delivery to local sockets in-process.

Producers call ``publish(topic, payload)`` (after their commit). In stack mode that is one
channel-layer group message to every web process; in embedded mode it is handed straight to
this process's hub. Each web process runs one ``Hub``: it holds the single channel-layer
subscription and the map topic -> local subscribers, and hands each message to each
subscriber without waiting for any socket. A subscriber conflates state-like topics
(only the latest ticker, index or candle is kept) and queues the others in a bounded
queue; a client too slow to keep up is dropped, never allowed to stall the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

GROUP = "realtime"
QUEUE_LIMIT = 500  # undelivered non-conflated messages per socket before it is dropped


def publish(topic: str, payload: dict) -> None:
    """Send ``payload`` to every socket subscribed to ``topic``, in every web process.
    Call it after the commit that made the change (``transaction.on_commit``)."""
    hub = Hub.current
    if settings.EMBEDDED:
        if hub is not None:
            try:
                hub.loop.call_soon_threadsafe(hub.dispatch, topic, payload)
            except RuntimeError:  # the hub's loop has closed (server gone): nobody to deliver to
                pass
        return
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(GROUP, {"type": "realtime.message", "topic": topic, "payload": payload})
    except Exception:  # a lost tick must not break the producer
        logger.exception("realtime publish to %s failed", topic)


class Subscriber:
    """One socket's side of the hub. ``send`` is the socket's coroutine that writes one
    frame; ``conflate(topic)`` says whether only the latest message of a topic matters."""

    def __init__(self, send: Callable, *, on_overflow: Callable[[], object], conflate: Callable[[str], bool]):
        self._send = send
        self._on_overflow = on_overflow
        self._conflate = conflate
        self._latest: OrderedDict[str, dict] = OrderedDict()
        self._queue: list[tuple[str, dict]] = []
        self._ready = asyncio.Event()
        self._closed = False
        self.task = asyncio.get_running_loop().create_task(self._pump())

    def offer(self, topic: str, payload: dict) -> None:
        if self._closed:
            return
        if self._conflate(topic):
            self._latest[topic] = payload
            self._latest.move_to_end(topic)
        else:
            if len(self._queue) >= QUEUE_LIMIT:
                self._closed = True
                self._on_overflow()
                return
            self._queue.append((topic, payload))
        self._ready.set()

    async def _pump(self) -> None:
        try:
            while not self._closed:
                await self._ready.wait()
                self._ready.clear()
                queued, self._queue = self._queue, []
                latest, self._latest = self._latest, OrderedDict()
                for topic, payload in queued:
                    await self._send(topic, payload)
                for topic, payload in latest.items():
                    await self._send(topic, payload)
        except asyncio.CancelledError:
            pass
        except Exception:  # the socket went away mid-send
            logger.debug("subscriber pump stopped", exc_info=True)

    def close(self) -> None:
        self._closed = True
        self.task.cancel()


class Hub:
    """The per-process router. Created by the first websocket of the process."""

    current: Hub | None = None
    _lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.topics: dict[str, set[Subscriber]] = {}
        self.delivered = 0
        self._listener: asyncio.Task | None = None

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

    async def _listen(self) -> None:
        """The process's one channel-layer subscription."""
        layer = get_channel_layer()
        # The default prefix: channels_redis pops every process-local channel of a layer from
        # one key ("specific.<client>!"), one receiver at a time; a channel under another
        # prefix would starve while any consumer holds the receive lock.
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if asyncio.current_task().cancelling():
                    # A cancel that surfaced as another error (a read timeout firing at the same
                    # moment): retrying would swallow it and the loop could never shut down.
                    raise asyncio.CancelledError from None
                logger.exception("realtime hub receive failed; retrying")
                await asyncio.sleep(1)
                await layer.group_add(GROUP, channel)
                continue
            if message.get("type") == "realtime.message":
                self.dispatch(message["topic"], message["payload"])

    def dispatch(self, topic: str, payload: dict) -> None:
        for subscriber in tuple(self.topics.get(topic, ())):
            subscriber.offer(topic, payload)
            self.delivered += 1

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        self.topics.setdefault(topic, set()).add(subscriber)

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        subscribers = self.topics.get(topic)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self.topics[topic]
