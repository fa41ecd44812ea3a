"""``/ws/market/`` in-process: ``WebsocketCommunicator`` on the real ASGI application
(origin check, router), the real Redis channel layer and the process's hub. (The
communicator is not daphne: its sockets take the hub's generic path, the ASGI ``send``;
tests/marketdata/test_streams_live.py covers daphne and the direct writes.)

The consumer reads the database from another thread, so the data is committed
(``transaction=True``). Each test gets a private channel-layer prefix on the suite's Redis
server, on a database nothing flushes, so publishes of concurrent runs (feeds, other tests)
never reach these sockets and their ``cache.clear()`` never wipes the hub's subscription.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from marketdata import consumers
from marketdata.candles import Bar
from marketdata.models import Candle, CandleSource, IndexPrint
from marketdata.services import instruments_sync
from marketdata.streams import index_payload, publish_tick
from trading import realtime
from trading.asgi import application
from trading.realtime import Hub

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://127.0.0.1")]
ALL_KINDS = ["ticker:BTC-USDT", "index:BTC", "candles:BTC-USDT:1m", "book:BTC-USDT", "trades:BTC-USDT"]
TIMEOUT = 5


# Redis databases the channel layer of these tests must not use: 0 is the suite's cache, and
# every test's cache.clear() (tests/conftest.py) is a FLUSHDB -- a run beside this one would
# wipe the hub's group membership mid-test; bench/fanout.py FLUSHes 9; the venue tests use 14.
FLUSHED_REDIS_DBS = {0, 9, 14}


def private_redis_url(url: str) -> str:
    """``url`` on a database of this process's own (by pid), none of ``FLUSHED_REDIS_DBS``."""
    parts = urlsplit(url)
    free = [n for n in range(1, 16) if n not in FLUSHED_REDIS_DBS]
    return urlunsplit(parts._replace(path=f"/{free[os.getpid() % len(free)]}"))


@pytest.fixture(autouse=True)
def private_channel_layer(settings):
    """The real channel layer, under a prefix of this test's own, on a Redis database no
    test flushes."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    if layers["default"]["BACKEND"].startswith("channels_redis"):
        config = layers["default"].setdefault("CONFIG", {})
        # No ":" in the prefix: channels_redis then misroutes process-local messages.
        config["prefix"] = f"asgi-test-{uuid.uuid4().hex[:12]}"
        hosts = [{"address": host} if isinstance(host, str) else host for host in config["hosts"]]
        config["hosts"] = [{**host, "address": private_redis_url(host["address"])} for host in hosts]
    settings.CHANNEL_LAYERS = layers
    return layers


@pytest.fixture
def market():
    """Spot pairs and option series listed, one index print and one 1m candle stored."""
    instruments_sync(index_prices={"BTC": Decimal("65000"), "ETH": Decimal("3400")})
    now = datetime.now(UTC).replace(microsecond=0)
    index = IndexPrint.objects.create(
        underlying="BTC", ts=now, price=Decimal("65000.50"), stale=False, sources={"used": ["sim"], "excluded": []}
    )
    candle = Candle.objects.create(
        symbol="BTC-USDT",
        source=CandleSource.INDEX,
        interval="1m",
        open_time=now.replace(second=0) - timedelta(minutes=1),
        open=Decimal("64990"),
        high=Decimal("65010.5"),
        low=Decimal("64980"),
        close=Decimal("65000.50"),
        volume=Decimal("0"),
    )
    return {"index": index, "candle": candle}


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


async def connect() -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/market/", headers=ORIGIN)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return comm


async def send(comm: WebsocketCommunicator, body) -> None:
    await comm.send_to(text_data=body if isinstance(body, str) else json.dumps(body))


async def recv(comm: WebsocketCommunicator, timeout: float = TIMEOUT) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def subscribe(comm: WebsocketCommunicator, channels: list[str]) -> dict:
    await send(comm, {"op": "subscribe", "channels": channels})
    frame = await recv(comm)
    assert frame == {"event": "subscribed", "channels": channels}
    return frame


async def publish(topic: str, payload: dict) -> None:
    await sync_to_async(realtime.publish)(topic, payload)


async def hub_joined() -> None:
    """Wait until this loop's hub has joined the channel-layer group: the first socket of a
    process starts the hub's subscription, and what is published before it lands is lost
    (the snapshot covers that). Probe on index:ETH, with a socket of its own."""
    probe = await connect()
    await subscribe(probe, ["index:ETH"])
    for attempt in range(50):
        await publish("index:ETH", {"data": {"probe": attempt}})
        # (a timed-out receive_from would kill the application: poll with receive_nothing)
        if await probe.receive_nothing(timeout=0.2):
            continue
        assert (await recv(probe))["channel"] == "index:ETH"
        break
    else:
        pytest.fail(f"the hub never received a publish through the channel layer (listener: {Hub.current._listener!r})")
    await probe.disconnect()


def index_update(price: str, marker: str) -> dict:
    data = index_payload("BTC", Decimal(price), False, datetime.now(UTC))
    return {"data": {**data, "marker": marker}}


def test_subscribe_answers_subscribed_then_one_snapshot_per_channel(market):
    async def scenario():
        comm = await connect()
        await subscribe(comm, ALL_KINDS)
        snapshots = {}
        for _ in ALL_KINDS:
            frame = await recv(comm)
            assert frame["channel"] not in snapshots
            snapshots[frame["channel"]] = frame
        assert list(snapshots) == ALL_KINDS  # in the order asked for
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        return snapshots

    snapshots = async_to_sync(scenario)()
    index, candle = market["index"], market["candle"]

    ticker = snapshots["ticker:BTC-USDT"]["data"]
    assert ticker["symbol"] == "BTC-USDT"
    assert ticker["last"] == "65000.5" and ticker["index_price"] == "65000.5"
    assert ticker["index_stale"] is False
    assert ticker["time"] == iso(index.ts)

    assert snapshots["index:BTC"] == {
        "channel": "index:BTC",
        "data": {"underlying": "BTC", "price": "65000.5", "stale": False, "time": iso(index.ts)},
    }
    assert snapshots["candles:BTC-USDT:1m"] == {
        "channel": "candles:BTC-USDT:1m",
        "data": {
            "time": iso(candle.open_time),
            "open": "64990",
            "high": "65010.5",
            "low": "64980",
            "close": "65000.5",
            "volume": "0",
        },
    }
    assert snapshots["book:BTC-USDT"] == {
        "channel": "book:BTC-USDT",
        "type": "snapshot",
        "sequence": 0,
        "bids": [],
        "asks": [],
    }
    assert snapshots["trades:BTC-USDT"] == {"channel": "trades:BTC-USDT", "type": "snapshot", "data": []}


def test_a_channel_without_data_yet_is_subscribed_without_a_snapshot(market):
    async def scenario():
        comm = await connect()
        await subscribe(comm, ["index:ETH", "candles:ETH-USDT:1d"])  # nothing stored for them
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_publish_reaches_the_subscribed_socket_through_the_channel_layer_and_the_hub(market):
    async def scenario():
        listener, bystander = await connect(), await connect()
        await subscribe(listener, ["index:BTC"])
        await recv(listener)  # the snapshot
        # (not index:ETH: hub_joined probes on it)
        await subscribe(bystander, ["candles:ETH-USDT:1d", "ticker:BTC-USDT"])
        await recv(bystander)  # the ticker snapshot (no ETH candles yet)
        await hub_joined()

        update = index_update("65123.45", marker="first")
        await publish("index:BTC", update)
        frame = await recv(listener)
        assert frame == {"channel": "index:BTC", **update}
        assert frame["data"]["price"] == "65123.45"
        # A socket subscribed to other channels gets nothing of it.
        assert await bystander.receive_nothing(timeout=0.5)
        assert await listener.receive_nothing(timeout=0.2)
        for comm in (listener, bystander):
            await comm.disconnect()

    async_to_sync(scenario)()


@pytest.mark.slow
def test_the_hub_still_delivers_after_an_idle_spell_longer_than_the_redis_read_timeout(market, caplog):
    """The hub's one blocking receive outlives quiet spells (channels_redis blocks 5 s per pop,
    and redis-py 8's default read timeout is also 5 s unless the settings lift it): no error,
    and the next publish still arrives at once."""

    async def scenario():
        comm = await connect()
        await subscribe(comm, ["index:BTC"])
        await recv(comm)
        await hub_joined()
        await asyncio.sleep(7)
        await publish("index:BTC", index_update("65004", marker="after-idle"))
        # within 3 s: a hub whose receive had died (or waits out a 5 s read timeout) misses it
        assert (await recv(comm, timeout=3))["data"]["marker"] == "after-idle"
        await send(comm, {"op": "ping"})
        assert await recv(comm) == {"event": "pong"}
        await comm.disconnect()

    with caplog.at_level("ERROR", logger="trading.realtime"):
        async_to_sync(scenario)()
    assert not [r for r in caplog.records if r.name == "trading.realtime"], "the idle hub's receive failed"


def test_the_hub_shares_the_channel_layer_with_consumers_that_use_it(market):
    """Another consumer of the process receiving on the same channel layer (what any
    channel-layer consumer does) must not starve the hub: channels_redis pops all the
    process-local channels of a layer through one receiver at a time."""

    async def scenario():
        layer = get_channel_layer()
        other = await layer.new_channel()
        received = []

        async def other_consumer():
            while True:
                try:
                    received.append(await layer.receive(other))
                except asyncio.CancelledError:
                    raise
                except Exception:  # the client library's idle read timeout; keep receiving
                    await asyncio.sleep(0)

        other_task = asyncio.ensure_future(other_consumer())
        try:
            comm = await connect()
            await subscribe(comm, ["index:BTC"])
            await recv(comm)
            await hub_joined()
            for n in range(5):
                await publish("index:BTC", index_update(f"6510{n}", marker=str(n)))
                assert (await recv(comm, timeout=1.5))["data"]["marker"] == str(n)
            await layer.send(other, {"type": "hello"})
            for _ in range(30):
                if received:
                    break
                await asyncio.sleep(0.05)
            assert received == [{"type": "hello"}]
            await comm.disconnect()
        finally:
            other_task.cancel()
            await asyncio.gather(other_task, return_exceptions=True)

    async_to_sync(scenario)()


def test_two_sockets_only_the_subscribed_one_receives(market):
    async def scenario():
        subscribed, idle = await connect(), await connect()
        await subscribe(subscribed, ["index:BTC"])
        await recv(subscribed)
        await hub_joined()
        for n in range(3):
            await publish("index:BTC", index_update(f"6500{n}", marker=str(n)))
        markers = [(await recv(subscribed))["data"]["marker"] for _ in range(3)]
        assert markers == ["0", "1", "2"]
        assert await idle.receive_nothing(timeout=0.5)
        await send(idle, {"op": "ping"})
        assert await recv(idle) == {"event": "pong"}
        for comm in (subscribed, idle):
            await comm.disconnect()

    async_to_sync(scenario)()


def test_unsubscribe_stops_delivery_and_resubscribe_resumes_it(market):
    async def scenario():
        leaving, staying = await connect(), await connect()
        for comm in (leaving, staying):
            await subscribe(comm, ["index:BTC", "trades:BTC-USDT"])
            await recv(comm)
            await recv(comm)
        await hub_joined()

        await publish("index:BTC", index_update("65001", marker="before"))
        for comm in (leaving, staying):
            assert (await recv(comm))["data"]["marker"] == "before"

        await send(leaving, {"op": "unsubscribe", "channels": ["index:BTC"]})
        assert await recv(leaving) == {"event": "unsubscribed", "channels": ["index:BTC"]}
        await publish("index:BTC", index_update("65002", marker="after"))
        await publish("trades:BTC-USDT", {"data": [{"price": "65002", "quantity": "0.1"}]})
        # The staying socket proves both publishes went through.
        assert (await recv(staying))["data"]["marker"] == "after"
        assert (await recv(staying))["channel"] == "trades:BTC-USDT"
        assert (await recv(leaving))["channel"] == "trades:BTC-USDT"  # still subscribed to trades
        assert await leaving.receive_nothing(timeout=0.5)

        # Unsubscribing what was never subscribed is harmless.
        await send(leaving, {"op": "unsubscribe", "channels": ["index:ETH", "trades:BTC-USDT"]})
        assert (await recv(leaving))["event"] == "unsubscribed"
        await publish("trades:BTC-USDT", {"data": []})
        assert (await recv(staying))["channel"] == "trades:BTC-USDT"
        assert await leaving.receive_nothing(timeout=0.5)

        # Subscribing again: a fresh snapshot, then the updates again.
        await subscribe(leaving, ["index:BTC"])
        snapshot = await recv(leaving)
        assert snapshot["channel"] == "index:BTC" and snapshot["data"]["price"] == "65000.5"
        await publish("index:BTC", index_update("65003", marker="again"))
        assert (await recv(leaving))["data"]["marker"] == "again"
        for comm in (leaving, staying):
            await comm.disconnect()

    async_to_sync(scenario)()


def test_bad_messages_get_error_frames_and_the_socket_stays_open(market):
    async def scenario():
        comm = await connect()

        async def error_for(body) -> dict:
            if isinstance(body, bytes):
                await comm.send_to(bytes_data=body)
            else:
                await send(comm, body)
            frame = await recv(comm)
            assert frame["event"] == "error", frame
            assert frame["message"]
            return frame

        assert (await error_for("{not json"))["code"] == "bad_json"
        assert (await error_for(b"\x00\x01"))["code"] == "bad_json"
        assert (await error_for("   "))["code"] == "bad_json"
        assert (await error_for("[1, 2]"))["code"] == "bad_request"
        assert (await error_for('"subscribe"'))["code"] == "bad_request"
        assert (await error_for({"op": "dance"}))["code"] == "unknown_op"
        assert (await error_for({"channels": ["index:BTC"]}))["code"] == "unknown_op"
        assert (await error_for({"op": "subscribe"}))["code"] == "bad_request"
        assert (await error_for({"op": "subscribe", "channels": []}))["code"] == "bad_request"
        assert (await error_for({"op": "subscribe", "channels": "index:BTC"}))["code"] == "bad_request"
        assert (await error_for({"op": "subscribe", "channels": [1, 2]}))["code"] == "bad_request"

        refused = {
            "weather:BTC": "unknown channel",
            "ticker:btc-usdt": "unknown channel",
            "ticker:DOGE-USDT": "unknown symbol",
            "book:BTC-EUR": "unknown symbol",
            "candles:DOGE-USDT:1m": "unknown symbol",
            "candles:BTC-USDT:7m": "unknown interval",
            "index:DOGE": "unknown underlying",
        }
        for channel, reason in refused.items():
            frame = await error_for({"op": "subscribe", "channels": [channel]})
            assert frame["code"] == "bad_channel"
            assert list(frame["channels"]) == [channel]
            assert frame["channels"][channel].startswith(reason), frame
            assert await comm.receive_nothing(timeout=0.05)  # no "subscribed" for an all-refused request

        # A mixed request: the refused ones are listed, the good ones subscribed.
        await send(comm, {"op": "subscribe", "channels": ["index:BTC", "ticker:DOGE-USDT", "candles:BTC-USDT:7m"]})
        error = await recv(comm)
        assert error["code"] == "bad_channel"
        assert set(error["channels"]) == {"ticker:DOGE-USDT", "candles:BTC-USDT:7m"}
        assert await recv(comm) == {"event": "subscribed", "channels": ["index:BTC"]}
        assert (await recv(comm))["channel"] == "index:BTC"

        await send(comm, {"op": "ping"})
        assert await recv(comm) == {"event": "pong"}
        await comm.disconnect()

    async_to_sync(scenario)()


def test_more_than_max_channels_are_refused_and_listed(market, monkeypatch):
    monkeypatch.setattr(consumers, "MAX_CHANNELS", 3)  # fewer than the valid channels that exist

    async def scenario():
        comm = await connect()
        # One request asking for more than the limit.
        await send(comm, {"op": "subscribe", "channels": ALL_KINDS})
        error = await recv(comm)
        assert error["code"] == "bad_channel"
        assert set(error["channels"]) == set(ALL_KINDS[3:])
        assert all("at most 3 channels" in reason for reason in error["channels"].values())
        assert await recv(comm) == {"event": "subscribed", "channels": ALL_KINDS[:3]}
        for _ in range(3):
            await recv(comm)

        # At the limit: a new channel is refused, one already held is not.
        await send(comm, {"op": "subscribe", "channels": ["index:ETH", "index:BTC"]})
        error = await recv(comm)
        assert list(error["channels"]) == ["index:ETH"]
        assert await recv(comm) == {"event": "subscribed", "channels": ["index:BTC"]}
        assert (await recv(comm))["channel"] == "index:BTC"

        # Freeing a slot lets a new one in.
        await send(comm, {"op": "unsubscribe", "channels": ["ticker:BTC-USDT"]})
        assert (await recv(comm))["event"] == "unsubscribed"
        await subscribe(comm, ["index:ETH"])
        assert await comm.receive_nothing(timeout=0.2)  # no ETH print: no snapshot
        assert set(Hub.current.topics) == {"index:BTC", "index:ETH", "candles:BTC-USDT:1m"}

        await send(comm, {"op": "ping"})
        assert await recv(comm) == {"event": "pong"}
        await comm.disconnect()

    async_to_sync(scenario)()


def test_the_same_channel_twice_in_one_request_counts_once(market, monkeypatch):
    monkeypatch.setattr(consumers, "MAX_CHANNELS", 2)

    async def scenario():
        comm = await connect()
        await send(comm, {"op": "subscribe", "channels": ["index:BTC", "index:BTC", "book:BTC-USDT"]})
        assert await recv(comm) == {"event": "subscribed", "channels": ["index:BTC", "book:BTC-USDT"]}
        assert (await recv(comm))["channel"] == "index:BTC"
        assert (await recv(comm))["channel"] == "book:BTC-USDT"
        assert await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_disconnect_leaves_no_subscription_in_the_hub(market):
    async def scenario():
        comm = await connect()
        await subscribe(comm, ["index:BTC", "book:BTC-USDT"])
        await recv(comm)
        await recv(comm)
        hub = Hub.current
        assert set(hub.topics) >= {"index:BTC", "book:BTC-USDT"}
        await comm.disconnect()
        assert "index:BTC" not in hub.topics and "book:BTC-USDT" not in hub.topics

    async_to_sync(scenario)()


def test_a_client_too_slow_for_a_queued_channel_is_closed(market, monkeypatch):
    monkeypatch.setattr(realtime, "QUEUE_LIMIT", 0)  # the first queued message overflows

    async def scenario():
        comm = await connect()
        await subscribe(comm, ["trades:BTC-USDT"])
        await recv(comm)
        Hub.current.dispatch("trades:BTC-USDT", {"data": []})
        closed = await comm.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4008}
        await comm.disconnect(code=4008)
        assert "trades:BTC-USDT" not in Hub.current.topics

    async_to_sync(scenario)()


def test_a_foreign_origin_is_refused():
    async def scenario():
        for headers in ([(b"origin", b"https://evil.example")], []):
            comm = WebsocketCommunicator(application, "/ws/market/", headers=headers)
            connected, _ = await comm.connect(timeout=TIMEOUT)
            assert not connected
            await comm.disconnect()

    async_to_sync(scenario)()


def test_a_feed_tick_is_one_channel_layer_message_that_reaches_every_channel(market, monkeypatch):
    layer = get_channel_layer()
    sent = []
    group_send = layer.group_send

    async def counting_group_send(group, message):
        sent.append((group, message))
        await group_send(group, message)

    async def scenario():
        comm = await connect()
        await subscribe(comm, ["index:BTC", "candles:BTC-USDT:1m", "ticker:BTC-USDT"])
        for _ in range(3):
            await recv(comm)  # the snapshots
        await hub_joined()
        monkeypatch.setattr(layer, "group_send", counting_group_send)
        now = datetime.now(UTC).replace(microsecond=0)
        prints = [
            IndexPrint(underlying="BTC", ts=now, price=Decimal("65100"), stale=False),
            IndexPrint(underlying="ETH", ts=now, price=Decimal("3401"), stale=False),
        ]
        bar = Bar(
            "BTC-USDT",
            "1m",
            now.replace(second=0),
            Decimal("65000"),
            Decimal("65100"),
            Decimal("64990"),
            Decimal("65100"),
        )
        tickers = {
            "BTC-USDT": {"symbol": "BTC-USDT", "last": "65100"},
            "ETH-USDT": {"symbol": "ETH-USDT", "last": "3401"},
        }
        await sync_to_async(publish_tick)(prints=prints, bars=[bar], tickers=tickers)
        frames = {}
        for _ in range(3):
            frame = await recv(comm)
            frames[frame["channel"]] = frame["data"]
        assert await comm.receive_nothing(timeout=0.3)  # ETH is not subscribed
        await comm.disconnect()
        return frames

    frames = async_to_sync(scenario)()
    assert [message["type"] for _, message in sent] == ["realtime.batch"]  # the whole tick, one message
    assert [topic for topic, _ in sent[0][1]["updates"]] == [
        "index:BTC",
        "index:ETH",
        "candles:BTC-USDT:1m",
        "ticker:BTC-USDT",
        "ticker:ETH-USDT",
    ]
    assert frames["index:BTC"]["price"] == "65100"
    assert frames["candles:BTC-USDT:1m"]["close"] == "65100"
    assert frames["ticker:BTC-USDT"] == {"symbol": "BTC-USDT", "last": "65100"}


def test_the_market_route_does_no_session_or_user_lookup(market, monkeypatch):
    scopes = []
    connect_ = consumers.MarketConsumer.connect

    async def recording_connect(self):
        scopes.append(self.scope)
        await connect_(self)

    monkeypatch.setattr(consumers.MarketConsumer, "connect", recording_connect)

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/market/", headers=[*ORIGIN, (b"cookie", b"sessionid=abc")])
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        await subscribe(comm, ["index:BTC"])
        assert (await recv(comm))["channel"] == "index:BTC"
        await comm.disconnect()

    async_to_sync(scenario)()
    assert len(scopes) == 1
    assert not {"session", "user", "cookies"} & set(scopes[0])  # no session/auth middleware on the way


def test_a_book_snapshot_comes_before_the_deltas_published_while_it_was_read(market, monkeypatch):
    """A delta published while the snapshot is being read is held: it follows the snapshot,
    and the deltas the snapshot already includes (sequence <= its own) are skipped."""
    snapshot_for = consumers.snapshot_for

    def slow_book_snapshot(topic):
        if topic.startswith("book:"):
            hub = Hub.current
            for sequence in (1, 2, 3):  # published while the snapshot (at 2) is being read
                hub.loop.call_soon_threadsafe(
                    hub.dispatch, topic, {"type": "delta", "sequence": sequence, "bids": [], "asks": []}
                )
            return {"type": "snapshot", "sequence": 2, "bids": [], "asks": []}
        return snapshot_for(topic)

    monkeypatch.setattr(consumers, "snapshot_for", slow_book_snapshot)

    async def scenario():
        comm = await connect()
        await subscribe(comm, ["book:BTC-USDT", "index:BTC"])
        frames = [await recv(comm) for _ in range(3)]
        Hub.current.dispatch("book:BTC-USDT", {"type": "delta", "sequence": 4, "bids": [], "asks": []})
        frames.append(await recv(comm))
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        return frames

    frames = async_to_sync(scenario)()
    assert [(f["channel"], f.get("type"), f.get("sequence")) for f in frames] == [
        ("book:BTC-USDT", "snapshot", 2),
        ("book:BTC-USDT", "delta", 3),
        ("index:BTC", None, None),
        ("book:BTC-USDT", "delta", 4),
    ]
