"""``/ws/user/``: one trader's own stream -- their orders, fills and balances.

Authentication: the browser's session (the route is wrapped in ``AuthMiddlewareStack``), or,
for API clients, an access JWT in the query string (``/ws/user/?token=<access>``), which takes
precedence when given. Without a valid one the socket is accepted, told why, and closed with
4401 (closing before the accept would reach a browser as a bare 1006).

Frames (all carry ``"channel": "user:<id>"``, like the market stream's):

* on connect, ``{"type": "snapshot", "orders": [<open orders, as GET /orders>], "balances": [...]}``;
* then what the engine runner publishes on the user's topic after each commit:
  ``{"type": "order", "id", "symbol", "status", "filled_quantity", "client_order_id"}`` and
  ``{"type": "fill", "order_id", "symbol", "price", "quantity", "liquidity", "fee", "seq"}``;
* ``{"type": "balances", "balances": [{asset, available, held, total}]}`` when a balance
  changed: the runner only says *that* it changed (``balance_changed``, and an ``order``
  event means its hold moved), and the socket reads the balances itself, at most once per
  ``BALANCE_DEBOUNCE`` seconds however many events arrive (one read after a burst covers
  all of it).

The client may send ``{"op": "ping"}`` (answered ``{"event": "pong"}``). A socket that cannot
keep up is closed with 4008, as on the market stream. Events published while the snapshot is
being read are held and follow it.

Delivery goes through the process's hub (``trading.realtime``) like the market stream, but
always through the ASGI ``send`` (``Subscriber``), never written straight to the transport:
this route's ``send`` is wrapped by the auth middleware, and each event has to be looked at
(``balance_changed`` is answered, not forwarded). A user's stream is a few events per second
at most, so the direct path would buy nothing here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from ledger.selectors import balances_for
from trading.metrics import WEBSOCKET_CLIENTS
from trading.money import fmt
from trading.realtime import Hub, Subscriber, Update, encode

from .spot.api import order_dict
from .spot.selectors import spot_orders_for

logger = logging.getLogger(__name__)

NOT_AUTHENTICATED = 4401
TOO_SLOW = 4008
BALANCE_DEBOUNCE = 0.1  # seconds between two balance reads of one socket


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"


def balances_payload(user) -> list[dict]:
    return [
        {
            "asset": b.asset,
            "available": fmt(b.asset, b.available),
            "held": fmt(b.asset, b.held),
            "total": fmt(b.asset, b.total),
        }
        for b in balances_for(user=user)
    ]


def user_snapshot(user) -> dict:
    orders = [order_dict(order) for order in spot_orders_for(user=user, status="open")]
    return {"type": "snapshot", "orders": orders, "balances": balances_payload(user)}


def user_from_token(token: str):
    """The active user an access JWT stands for, else None."""
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        return JWTAuthentication().get_user(AccessToken(token))
    except (TokenError, AuthenticationFailed):
        return None


def _never_conflate(topic: str) -> bool:
    return False  # one topic carries every order and fill: none may be dropped


class UserConsumer(AsyncWebsocketConsumer):
    # Events come from the process's hub, not from a channel of the socket's own.
    channel_layer_alias = None

    async def connect(self):
        self.subscriber = None
        user = await self._authenticate()
        await self.accept()
        if user is None:
            await self._frame(
                {
                    "event": "error",
                    "code": "not_authenticated",
                    "message": "Sign in, or pass an access token as ?token=...",
                }
            )
            await self.close(code=NOT_AUTHENTICATED)
            return
        self.user = user
        self.topic = user_topic(user.pk)
        self.hub = Hub.get()
        loop = asyncio.get_running_loop()
        self._balances_stale = False
        self._balances_read_at = loop.time()
        self._balances_task: asyncio.Task | None = None
        self.subscriber = Subscriber(self._deliver, on_overflow=self._too_slow, conflate=_never_conflate)
        WEBSOCKET_CLIENTS.labels("user").inc()
        self.subscriber.hold(self.topic)  # until the snapshot is out
        self.hub.subscribe(self.topic, self.subscriber)
        try:
            snapshot = await database_sync_to_async(user_snapshot)(user)
            self._balances_read_at = loop.time()
            await self.send(text_data=encode(self.topic, snapshot))
        finally:
            self.subscriber.release(self.topic)

    async def _authenticate(self):
        token = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("token")
        if token:
            return await database_sync_to_async(user_from_token)(token[0])
        user = self.scope.get("user")
        if user is not None and user.is_authenticated and user.is_active:
            return user
        return None

    async def disconnect(self, code):
        if self.subscriber is None:
            return
        WEBSOCKET_CLIENTS.labels("user").dec()
        self.hub.unsubscribe(self.topic, self.subscriber)
        self.subscriber.close()
        if self._balances_task is not None:
            self._balances_task.cancel()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "")
        except (TypeError, ValueError):
            message = None
        if isinstance(message, dict) and message.get("op") == "ping":
            return await self._frame({"event": "pong"})
        await self._frame(
            {"event": "error", "code": "unknown_op", "message": "The only op is ping; events come by themselves."}
        )

    # --- from the hub ------------------------------------------------------------------------

    async def _deliver(self, update: Update) -> None:
        kind = update.payload.get("type")
        if kind == "balance_changed":
            self._balances_due()
            return
        await self.base_send(update.message)
        if kind == "order":
            # An order's state moves its hold (placed at entry, released when it ends), and the
            # runner announces balance_changed only for fills and ends: read them here too.
            self._balances_due()

    def _balances_due(self) -> None:
        self._balances_stale = True
        if self._balances_task is None or self._balances_task.done():
            self._balances_task = asyncio.get_running_loop().create_task(self._send_balances())

    async def _send_balances(self) -> None:
        """Read and send the balances, no sooner than BALANCE_DEBOUNCE after the last read
        ended; a change announced while a read is under way gets one more read after it."""
        loop = asyncio.get_running_loop()
        try:
            while self._balances_stale:
                wait = self._balances_read_at + BALANCE_DEBOUNCE - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._balances_stale = False
                balances = await database_sync_to_async(balances_payload)(self.user)
                self._balances_read_at = loop.time()  # the pause counts from the end of a read
                if self.subscriber.closed:
                    return
                await self.send(text_data=encode(self.topic, {"type": "balances", "balances": balances}))
        except asyncio.CancelledError:
            pass
        except Exception:  # the socket went away mid-send: its disconnect follows
            logger.debug("user stream: sending balances failed", exc_info=True)

    async def _frame(self, body: dict) -> None:
        await self.send(text_data=json.dumps(body))

    def _too_slow(self) -> None:
        # Called from the hub's dispatch: never await here; close in the background.
        self._closing = self.hub.loop.create_task(self.close(code=TOO_SLOW))
