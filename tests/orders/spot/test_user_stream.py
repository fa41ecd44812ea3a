"""``/ws/user/`` in-process: ``WebsocketCommunicator`` on the real ASGI application (origin
check, router, session auth), the real Redis channel layer and the process's hub, fed by the
real engine runner after real order entry. A trader signed in by session cookie or by access
JWT gets a snapshot of their open orders and balances, then their order, fill and balance
events -- never another trader's; an anonymous socket is told why and closed with 4401."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from orders import consumers
from orders.models import SpotOrder
from orders.spot.services import order_request, spot_order_place
from trading import realtime
from trading.asgi import application

from .conftest import Engine

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")
TIMEOUT = 5


def private_redis_url(url: str) -> str:
    """``url`` on a database of this process's own that no test flushes (as the market
    stream tests choose it: not 0, the suite's cache, nor 9 or 14)."""
    parts = urlsplit(url)
    free = [n for n in range(1, 16) if n not in (0, 9, 14)]
    return urlunsplit(parts._replace(path=f"/{free[os.getpid() % len(free)]}"))


@pytest.fixture(autouse=True)
def private_channel_layer(settings):
    """The real channel layer under a prefix of this test's own, on a Redis database no test
    flushes: publishes of concurrent runs never reach these sockets."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    if layers["default"]["BACKEND"].startswith("channels_redis"):
        config = layers["default"].setdefault("CONFIG", {})
        config["prefix"] = f"asgi-user-{uuid.uuid4().hex[:12]}"
        hosts = [{"address": host} if isinstance(host, str) else host for host in config["hosts"]]
        config["hosts"] = [{**host, "address": private_redis_url(host["address"])} for host in hosts]
    settings.CHANNEL_LAYERS = layers


def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


def socket(*, headers=(), query: str = "") -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/user/" + query, headers=[ORIGIN, *headers])


async def recv(comm: WebsocketCommunicator, timeout: float = TIMEOUT) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def connect(comm: WebsocketCommunicator) -> dict:
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    snapshot = await recv(comm)
    assert snapshot["type"] == "snapshot"
    return snapshot


async def joined(comm: WebsocketCommunicator, user) -> None:
    """Wait until this loop's hub has joined the channel-layer group (the first socket starts
    it; what is published before is lost): probe on the user's own topic."""
    for attempt in range(50):
        await sync_to_async(realtime.publish)(f"user:{user.pk}", {"type": "probe", "n": attempt})
        if await comm.receive_nothing(timeout=0.2):
            continue
        frame = await recv(comm)
        assert frame["type"] == "probe"
        # the rest of the probes may still be on their way
        while not await comm.receive_nothing(timeout=0.3):
            assert (await recv(comm))["type"] == "probe"
        return
    pytest.fail("the hub never received a publish through the channel layer")


async def frames_until(comm: WebsocketCommunicator, done, timeout: float = TIMEOUT) -> list[dict]:
    """Read frames until ``done(frames)``."""
    frames = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(frames):
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"timed out; got {frames}"
        frames.append(await recv(comm, timeout=left))
    return frames


def balance(frame: dict, asset: str) -> dict:
    return next(b for b in frame["balances"] if b["asset"] == asset)


def place(user, **data) -> SpotOrder:
    order, _ = spot_order_place(user=user, request=order_request(**{"symbol": "BTC-USDT", **data}))
    return order


def test_a_trader_gets_a_snapshot_then_their_order_fill_and_balance_events_and_never_another_traders(alice, bob):
    engine = Engine("BTC-USDT")
    resting = place(alice, side="sell", type="limit", price="65500.00", quantity="0.1")  # open before she connects
    engine.run()
    token = str(AccessToken.for_user(bob))
    cookie = session_cookie(alice)

    async def scenario():
        alice_socket = socket(headers=[cookie])
        snapshot = await connect(alice_socket)
        assert snapshot["channel"] == f"user:{alice.pk}"
        assert [o["id"] for o in snapshot["orders"]] == [resting.pk]
        assert snapshot["orders"][0]["status"] == "open" and Decimal(snapshot["orders"][0]["price"]) == Decimal("65500")
        assert balance(snapshot, "BTC") == {
            "asset": "BTC",
            "available": "9.90000000",
            "held": "0.10000000",
            "total": "10.00000000",
        }
        assert {b["asset"] for b in snapshot["balances"]} == {"USDT", "BTC", "ETH"}

        bob_socket = socket(query=f"?token={token}")
        bob_snapshot = await connect(bob_socket)
        assert bob_snapshot["orders"] == [] and bob_snapshot["channel"] == f"user:{bob.pk}"
        await joined(alice_socket, alice)
        await joined(bob_socket, bob)

        sell = await sync_to_async(place)(alice, side="sell", type="limit", price="65000.00", quantity="0.5")
        await sync_to_async(engine.run)()
        frames = await frames_until(alice_socket, lambda fs: any(f["type"] == "balances" for f in fs))
        opened = frames[0]
        assert Decimal(opened.pop("filled_quantity")) == 0
        assert opened == {
            "channel": f"user:{alice.pk}",
            "type": "order",
            "id": sell.pk,
            "symbol": "BTC-USDT",
            "status": "open",
            "client_order_id": "",
            "reason": None,
        }
        assert balance(frames[-1], "BTC")["held"] == "0.60000000"

        buy = await sync_to_async(place)(bob, side="buy", type="limit", price="65000.00", quantity="0.2")
        await sync_to_async(engine.run)()

        def has_fill_and_balances(fs):
            kinds = [f["type"] for f in fs]
            return "fill" in kinds and "balances" in kinds[kinds.index("fill") :]

        mine = await frames_until(alice_socket, has_fill_and_balances)
        theirs = await frames_until(bob_socket, has_fill_and_balances)
        fill = next(f for f in mine if f["type"] == "fill")
        assert isinstance(fill.pop("seq"), int)
        assert {
            **fill,
            "price": Decimal(fill["price"]),
            "quantity": Decimal(fill["quantity"]),
            "fee": Decimal(fill["fee"]),
        } == {
            "channel": f"user:{alice.pk}",
            "type": "fill",
            "order_id": sell.pk,
            "symbol": "BTC-USDT",
            "price": Decimal("65000"),
            "quantity": Decimal("0.2"),
            "liquidity": "maker",
            "fee": Decimal("13"),
        }
        order = next(f for f in mine if f["type"] == "order")
        assert (order["id"], order["status"], Decimal(order["filled_quantity"])) == (
            sell.pk,
            "partially_filled",
            Decimal("0.2"),
        )
        usdt = balance(mine[-1], "USDT")
        assert usdt["available"] == "112987.000000"  # 100000 + 13000 - the maker fee
        assert balance(mine[-1], "BTC")["held"] == "0.40000000"

        fill = next(f for f in theirs if f["type"] == "fill")
        assert (fill["order_id"], fill["liquidity"], Decimal(fill["fee"])) == (buy.pk, "taker", Decimal("0.0004"))
        assert next(f for f in theirs if f["type"] == "order")["status"] == "filled"
        assert balance(theirs[-1], "BTC")["available"] == "10.19960000"

        # each socket saw its own topic and its own orders only
        for frames_, user, own in ((frames + mine, alice, {resting.pk, sell.pk}), (theirs, bob, {buy.pk})):
            assert {f["channel"] for f in frames_} == {f"user:{user.pk}"}
            ids = {f.get("id") for f in frames_} | {f.get("order_id") for f in frames_}
            assert ids - {None} == own & (ids - {None}) and ids - {None}
        assert await alice_socket.receive_nothing(timeout=0.3)
        for comm in (alice_socket, bob_socket):
            await comm.disconnect()

    async_to_sync(scenario)()


def test_balance_reads_are_debounced_one_per_burst_and_never_closer_than_100ms(alice, monkeypatch):
    reads = []
    original = consumers.balances_payload

    def counted(user):
        reads.append(time.monotonic())
        return original(user)

    monkeypatch.setattr(consumers, "balances_payload", counted)

    cookie = session_cookie(alice)

    async def scenario():
        comm = socket(headers=[cookie])
        await connect(comm)
        await joined(comm, alice)
        assert len(reads) == 1  # the snapshot's

        burst = [(f"user:{alice.pk}", {"type": "balance_changed", "assets": ["BTC", "USDT"]})] * 50
        await sync_to_async(realtime.publish_many)(burst)
        frame = await recv(comm)
        assert frame["type"] == "balances" and balance(frame, "USDT")["available"] == "100000.000000"
        assert await comm.receive_nothing(timeout=0.3)
        assert len(reads) == 2  # fifty changes, one read

        # changes trickling in: read again, but never sooner than 100 ms after the last read
        started = time.monotonic()
        for _ in range(6):
            await sync_to_async(realtime.publish)(f"user:{alice.pk}", {"type": "balance_changed", "assets": ["BTC"]})
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        assert (await recv(comm))["type"] == "balances"
        await asyncio.sleep(0.4)  # the debounce settles
        while not await comm.receive_nothing(timeout=0.05):  # the debounced reads' frames, if more than one
            assert (await recv(comm))["type"] == "balances"
        # a read when the trickle starts, at most one per debounce period while it lasts, and
        # one after its last change
        assert 1 <= len(reads) - 2 <= elapsed / consumers.BALANCE_DEBOUNCE + 2
        gaps = [later - earlier for earlier, later in itertools.pairwise(reads)]
        assert min(gaps) >= consumers.BALANCE_DEBOUNCE, gaps
        await comm.disconnect()

    async_to_sync(scenario)()


def test_ping_is_answered_and_anything_else_gets_an_error_frame(alice):
    cookie = session_cookie(alice)

    async def scenario():
        comm = socket(headers=[cookie])
        await connect(comm)
        await comm.send_to(text_data=json.dumps({"op": "ping"}))
        assert await recv(comm) == {"event": "pong"}
        await comm.send_to(text_data="not json")
        assert (await recv(comm))["code"] == "unknown_op"
        await comm.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("how", ["anonymous", "bad token", "refresh token", "inactive user", "expired session"])
def test_a_socket_without_a_valid_user_is_told_why_and_closed_with_4401(alice, how):
    headers, query = [], ""
    if how == "bad token":
        query = "?token=not-a-jwt"
    elif how == "refresh token":
        query = f"?token={RefreshToken.for_user(alice)}"
    elif how == "inactive user":
        query = f"?token={AccessToken.for_user(alice)}"
        type(alice).objects.filter(pk=alice.pk).update(is_active=False)
    elif how == "expired session":
        cookie = session_cookie(alice)
        from django.contrib.sessions.models import Session

        Session.objects.all().delete()
        headers = [cookie]

    async def scenario():
        comm = socket(headers=headers, query=query)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected  # accepted, so the client can see the code
        frame = await recv(comm)
        assert frame["event"] == "error" and frame["code"] == "not_authenticated"
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_a_disconnected_socket_leaves_no_subscription_in_the_hub(alice):
    cookie = session_cookie(alice)

    async def scenario():
        comm = socket(headers=[cookie])
        await connect(comm)
        hub = realtime.Hub.current
        assert f"user:{alice.pk}" in hub.topics
        await comm.disconnect()
        assert f"user:{alice.pk}" not in hub.topics

    async_to_sync(scenario)()


def test_balances_follow_the_ledger_format(alice):
    payload = consumers.balances_payload(alice)
    assert payload[0] == {"asset": "USDT", "available": "100000.000000", "held": "0.000000", "total": "100000.000000"}
    assert Decimal(next(b for b in payload if b["asset"] == "BTC")["total"]) == Decimal("10")
