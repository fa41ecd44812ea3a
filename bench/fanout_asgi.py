"""Bench-only ASGI apps for ``bench/fanout.py``.

``application`` -- the baseline: the plain per-client channel-layer fan-out.

The baseline the product's hub is compared against. Same URL (``/ws/market/``), same
subscribe protocol (``{"op": "subscribe", "channels": [...]}``), same middleware stack
(origin validator, auth) and the same frame the product writes
(``{"channel": topic, **payload}``, compact JSON), but the obvious design: on subscribe every
socket's consumer joins one channel-layer group per topic
(``channel_layer.group_add(group, self.channel_name)``), and the publisher sends each update
with ``group_send(group, ...)``, so the channel layer (Redis) carries the message to every
socket's own channel and each consumer's receive loop hands it to its socket.

No database work on subscribe (no symbol check, no snapshot): only the steady-state
delivery path is measured.

``product_fixed_application`` -- the product's ``MarketConsumer`` and ``Hub`` with the fix
proposed in bench/README.md applied, to measure it before it lands: the consumer opts out of
the channel layer (``channel_layer_alias = None``: no per-socket channel and no per-socket
``receive`` competing with the Hub for the process's receive lock).

Both apps set the channel layer's Redis ``socket_timeout`` to None: redis-py 8 defaults it to
5 s, the same as channels_redis's BZPOPMIN timeout, so an idle ``receive`` raises
``TimeoutError`` (django/channels_redis#422). ``trading.asgi`` (the "product" variant) is run
as it is. Not used by the product.

    daphne -b 127.0.0.1 -p 8001 bench.fanout_asgi:application     (from the project root)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

for _layer in settings.CHANNEL_LAYERS.values():  # before the first get_channel_layer()
    _config = _layer.get("CONFIG", {})
    _config["hosts"] = [{"address": h, "socket_timeout": None} if isinstance(h, str) else {**h, "socket_timeout": None} for h in _config.get("hosts", ())]

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from bench.fanout import BATCH_TYPE, MESSAGE_TYPE, group_for  # noqa: E402,F401
from marketdata.consumers import MarketConsumer, _conflate  # noqa: E402
from trading import realtime  # noqa: E402

_TOPIC = re.compile(r"^(ticker|book|trades):[A-Z]{2,6}-[A-Z]{2,6}$|^candles:[A-Z]{2,6}-[A-Z]{2,6}:\w+$|^index:[A-Z]{2,6}$")


class PerClientGroupConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.topics: set[str] = set()
        await self.accept()

    async def disconnect(self, code):
        for topic in self.topics:
            await self.channel_layer.group_discard(group_for(topic), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "")
        except (TypeError, ValueError):
            return await self.send(text_data=json.dumps({"event": "error", "code": "bad_json"}))
        if not isinstance(message, dict) or message.get("op") not in ("subscribe", "unsubscribe", "ping"):
            return await self.send(text_data=json.dumps({"event": "error", "code": "bad_request"}))
        if message["op"] == "ping":
            return await self.send(text_data=json.dumps({"event": "pong"}))
        channels = [c for c in message.get("channels") or () if isinstance(c, str) and _TOPIC.match(c)]
        if message["op"] == "unsubscribe":
            for topic in channels:
                if topic in self.topics:
                    self.topics.discard(topic)
                    await self.channel_layer.group_discard(group_for(topic), self.channel_name)
            return await self.send(text_data=json.dumps({"event": "unsubscribed", "channels": channels}))
        for topic in channels:
            if topic not in self.topics:
                self.topics.add(topic)
                await self.channel_layer.group_add(group_for(topic), self.channel_name)
        await self.send(text_data=json.dumps({"event": "subscribed", "channels": channels}))

    async def bench_message(self, event):
        # The product's frame: MarketConsumer._deliver.
        await self.send(text_data=json.dumps({"channel": event["topic"], **event["payload"]}, separators=(",", ":")))


class HubOnlyMarketConsumer(MarketConsumer):
    """The proposed fix: every update reaches the socket through the process's Hub, so the
    consumer needs no channel-layer channel of its own."""

    channel_layer_alias = None  # get_channel_layer(None) -> None: no new_channel(), no receive()


class TunedHub(realtime.Hub):
    """Prototype of the proposed Hub changes (see bench/README.md): the subscription uses the
    layer's default channel prefix; a message may carry several updates
    (``realtime.batch``: one channel-layer message per producer tick instead of one per
    topic); each update is encoded to its text frame once, not once per socket."""

    current = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> TunedHub:
        loop = asyncio.get_running_loop()
        with cls._lock:
            if cls.current is None or cls.current.loop is not loop:
                cls.current = cls(loop)
                cls.current.start()
            return cls.current

    async def _listen(self) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(realtime.GROUP, channel)
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                realtime.logger.exception("realtime hub receive failed; retrying")
                await asyncio.sleep(1)
                await layer.group_add(realtime.GROUP, channel)
                continue
            kind = message.get("type")
            if kind == "realtime.message":
                self.dispatch(message["topic"], message["payload"])
            elif kind == BATCH_TYPE:
                for topic, payload in message["updates"]:
                    self.dispatch(topic, payload)

    def dispatch(self, topic: str, payload: dict) -> None:
        subscribers = self.topics.get(topic)
        if not subscribers:
            return
        frame = json.dumps({"channel": topic, **payload}, separators=(",", ":"))
        for subscriber in tuple(subscribers):
            subscriber.offer(topic, frame)
        self.delivered += len(subscribers)


class TunedMarketConsumer(HubOnlyMarketConsumer):
    """Prototype: the Hub hands over ready-made text frames, written with one ASGI send
    (no per-socket json.dumps, no AsyncWebsocketConsumer.send layers); routed without the
    session/auth middleware (market data is public), so no session wrapper on every send."""

    async def connect(self):
        await self.accept()
        self.hub = TunedHub.get()
        self.topics = set()
        self.subscriber = realtime.Subscriber(self._deliver, on_overflow=self._too_slow, conflate=_conflate)

    async def _deliver(self, topic: str, payload) -> None:
        if type(payload) is str:
            await self.base_send({"type": "websocket.send", "text": payload})
        else:  # snapshots
            await super()._deliver(topic, payload)


def _app(consumer, *, auth: bool = True):
    routes = URLRouter([path("ws/market/", consumer.as_asgi())])
    return ProtocolTypeRouter({"http": django_asgi_app, "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(routes) if auth else routes)})


application = _app(PerClientGroupConsumer)
product_fixed_application = _app(HubOnlyMarketConsumer)
product_tuned_application = _app(TunedMarketConsumer, auth=False)
