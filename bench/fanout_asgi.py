"""Bench-only ASGI apps for ``bench/fanout.py``.

``application`` -- the baseline: the plain per-client channel-layer fan-out. Same URL
(``/ws/market/``), same subscribe protocol (``{"op": "subscribe", "channels": [...]}``), same
frame (``{"channel": topic, **payload}``, compact JSON) as the product, but the obvious
design: on subscribe every socket's consumer joins one channel-layer group per topic
(``channel_layer.group_add(group, self.channel_name)``), the publisher sends each update with
``group_send(group, ...)``, and each consumer's receive loop hands it to its socket
(``AsyncWebsocketConsumer.send``, behind the session/auth middleware as Channels' tutorial
routes it). No database work on subscribe (no symbol check, no snapshot): only the
steady-state delivery path is measured.

``product_asgi_application`` -- the product (``trading.asgi:application``) with
``trading.realtime.TRANSPORT_WRITES = False``: every socket takes the generic path (one task
per socket awaiting the ASGI ``send`` of the prebuilt message, through daphne's
``handle_reply`` and autobahn's ``sendMessage``) instead of frames written straight to the
connection. It shows what the direct write is worth.

    daphne -b 127.0.0.1 -p 8001 bench.fanout_asgi:application     (from the project root)
"""

from __future__ import annotations

import json
import os
import re

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from bench.fanout import group_for  # noqa: E402
from trading import realtime  # noqa: E402
from trading.asgi import application as product_application  # noqa: E402

_TOPIC = re.compile(
    r"^(ticker|book|trades):[A-Z]{2,6}-[A-Z]{2,6}$|^candles:[A-Z]{2,6}-[A-Z]{2,6}:\w+$|^index:[A-Z]{2,6}$"
)


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
        # The product's frame.
        await self.send(text_data=realtime.encode(event["topic"], event["payload"]))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([path("ws/market/", PerClientGroupConsumer.as_asgi())]))
        ),
    }
)

realtime.TRANSPORT_WRITES = False  # in this daphne only (the baseline's consumers do not use the hub)
product_asgi_application = product_application
