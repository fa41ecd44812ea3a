"""``/ws/market/``: subscribe to ticker, book, trades, candles and index channels.

Protocol (API.md): the client sends
``{"op": "subscribe", "channels": ["ticker:BTC-USDT", "book:BTC-USDT", "trades:BTC-USDT",
"candles:BTC-USDT:1m", "index:BTC"]}`` (or ``"op": "unsubscribe"``, or ``"op": "ping"``).
The server answers ``{"event": "subscribed", "channels": [...]}``, then a snapshot per
channel, then updates: ``{"channel": "...", "data": {...}}``; a book is a snapshot then
deltas with a ``sequence``, and a client that sees a gap resubscribes. A bad message gets
``{"event": "error", "code": ..., "message": ...}`` and the connection stays open. A client
that cannot keep up with its channels is closed with 4008.

The route is public (no session or user lookup). Updates come from the process's hub
(``trading.realtime``), encoded once per update and written straight to the connection when
daphne serves it; book updates published while a book snapshot is being read are held and
follow the snapshot, without the deltas the snapshot already includes.
"""

from __future__ import annotations

import json
import re

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from trading.metrics import WEBSOCKET_CLIENTS
from trading.realtime import Hub, encode

from . import selectors
from .candles import INTERVALS
from .streams import candle_payload, index_payload

MAX_CHANNELS = 50
CONFLATED = ("ticker:", "index:", "candles:")
SEQUENCED = ("book:",)  # snapshot then deltas numbered by ``sequence``
TOO_SLOW = 4008
_CHANNEL = re.compile(
    r"^(ticker|book|trades):([A-Z]{2,6}-[A-Z]{2,6})$|^candles:([A-Z]{2,6}-[A-Z]{2,6}):(\w+)$|^index:([A-Z]{2,6})$"
)


def _conflate(topic: str) -> bool:
    return topic.startswith(CONFLATED)


class MarketConsumer(AsyncWebsocketConsumer):
    # Sockets get updates from the process's hub, not from a channel of their own: a channel
    # per socket would compete with the hub for the channel layer's one receive per process.
    channel_layer_alias = None

    async def connect(self):
        await self.accept()
        self.hub = Hub.get()
        self.topics: set[str] = set()
        # base_send: the server's own send, not the consumer's (no per-frame wrapper)
        self.subscriber = self.hub.subscriber(self.base_send, on_overflow=self._too_slow, conflate=_conflate)
        WEBSOCKET_CLIENTS.labels("market").inc()

    async def disconnect(self, code):
        subscriber = getattr(self, "subscriber", None)
        if subscriber is None:
            return
        WEBSOCKET_CLIENTS.labels("market").dec()
        for topic in self.topics:
            self.hub.unsubscribe(topic, subscriber)
        subscriber.close()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "")
        except (TypeError, ValueError):
            return await self._error("bad_json", "Send one JSON object per frame.")
        if not isinstance(message, dict):
            return await self._error("bad_request", "Send a JSON object.")
        op = message.get("op")
        if op == "ping":
            return await self._frame({"event": "pong"})
        if op not in ("subscribe", "unsubscribe"):
            return await self._error("unknown_op", "op must be subscribe, unsubscribe or ping.")
        channels = message.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels) or not channels:
            return await self._error("bad_request", "channels must be a non-empty list of strings.")
        if op == "unsubscribe":
            for topic in channels:
                if topic in self.topics:
                    self.topics.discard(topic)
                    self.hub.unsubscribe(topic, self.subscriber)
            return await self._frame({"event": "unsubscribed", "channels": channels})

        accepted, refused = [], {}
        held = len(self.topics)
        for topic in dict.fromkeys(channels):  # each channel once, in the order asked
            problem = await self._check(topic)
            if problem:
                refused[topic] = problem
            elif topic not in self.topics and held >= MAX_CHANNELS:
                refused[topic] = f"at most {MAX_CHANNELS} channels per connection"
            else:
                accepted.append(topic)
                held += topic not in self.topics
        for topic in accepted:
            if topic.startswith(SEQUENCED):
                self.subscriber.hold(topic)  # until its snapshot is out
            self.topics.add(topic)
            self.hub.subscribe(topic, self.subscriber)
        if refused:
            await self._error("bad_channel", "Some channels were refused.", channels=refused)
        if accepted:
            await self._frame({"event": "subscribed", "channels": accepted})
            for topic in accepted:
                snapshot = None
                try:
                    snapshot = await database_sync_to_async(snapshot_for)(topic)
                    if snapshot is not None:
                        await self._deliver(topic, snapshot)
                finally:
                    self.subscriber.release(topic, after_sequence=(snapshot or {}).get("sequence"))

    async def _check(self, topic: str) -> str | None:
        match = _CHANNEL.match(topic)
        if not match:
            return "unknown channel (ticker:SYM, book:SYM, trades:SYM, candles:SYM:INTERVAL, index:BTC)"
        symbol = match.group(2) or match.group(3)
        if match.group(4) and match.group(4) not in INTERVALS:
            return f"unknown interval (one of {', '.join(INTERVALS)})"
        if symbol and not await database_sync_to_async(_known_symbol)(symbol):
            return "unknown symbol"
        if match.group(5) and match.group(5) not in ("BTC", "ETH"):
            return "unknown underlying"
        return None

    async def _deliver(self, topic: str, payload: dict) -> None:
        """A snapshot, framed like the updates."""
        await self.send(text_data=encode(topic, payload))

    async def _frame(self, body: dict) -> None:
        await self.send(text_data=json.dumps(body))

    async def _error(self, code: str, message: str, **extra) -> None:
        await self._frame({"event": "error", "code": code, "message": message, **extra})

    def _too_slow(self) -> None:
        # Called from the hub's dispatch: never await here; close in the background.
        self._closing = self.hub.loop.create_task(self.close(code=TOO_SLOW))  # (a reference: not collected mid-way)


def _known_symbol(symbol: str) -> bool:
    return symbol in selectors.spot_symbols()


def snapshot_for(topic: str) -> dict | None:
    kind, _, rest = topic.partition(":")
    if kind == "ticker":
        return {"data": selectors.ticker(instrument=selectors.instrument_get(symbol=rest))}
    if kind == "index":
        latest = selectors.index_latest(underlying=rest)
        return {"data": index_payload(rest, latest.price, latest.stale, latest.ts)} if latest else None
    if kind == "candles":
        symbol, _, interval = rest.partition(":")
        bars = selectors.candles_for(symbol=symbol, interval=interval, limit=1)
        return {"data": candle_payload(bars[-1])} if bars else None
    if kind == "book":
        book = selectors.order_book(instrument=selectors.instrument_get(symbol=rest), depth=50)
        return {"type": "snapshot", "sequence": book["sequence"], "bids": book["bids"], "asks": book["asks"]}
    if kind == "trades":
        return {
            "type": "snapshot",
            "data": selectors.recent_trades(instrument=selectors.instrument_get(symbol=rest), limit=50),
        }
    return None
