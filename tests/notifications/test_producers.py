"""The producers, through the real services: the engine runner's fills, partial fills and
cancels; deposits and withdrawals from the ledger; each told once per event, and on the
trader's /ws/user/ stream as a ``notification`` event."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest
from asgiref.sync import sync_to_async

from accounts.models import KycProfile, KycStatus
from ledger import services as ledger_services
from notifications.models import Delivery, Notification
from orders.spot.services import order_request, spot_order_cancel, spot_order_place
from tests.orders.spot.conftest import Engine, funded_trader, markets  # noqa: F401  (markets: a fixture)
from tests.orders.spot.test_user_stream import (  # noqa: F401  (private_channel_layer: an autouse fixture)
    connect,
    frames_until,
    joined,
    private_channel_layer,
    session_cookie,
    socket,
)

pytestmark = pytest.mark.django_db(transaction=True)

ETH_ADDRESS = "0x" + "ab" * 20


def place(user, **data):
    order, _ = spot_order_place(user=user, request=order_request(**{"symbol": "BTC-USDT", **data}))
    return order


def told(user, kind=None):
    rows = Notification.objects.filter(user=user).exclude(kind="deposit_credited")
    if kind:
        rows = rows.filter(kind=kind)
    return list(rows.order_by("id"))


@pytest.fixture
def long_window(settings):
    # One window for the whole test, so the runs below fall in it whatever the clock says.
    settings.NOTIFICATIONS_COALESCE_SECONDS = 10**9


def test_fills_partial_fills_and_cancels_are_told_once(markets, long_window):  # noqa: F811
    alice, bob = funded_trader(), funded_trader()
    engine = Engine("BTC-USDT")
    sell = place(alice, side="sell", type="limit", price="65000.00", quantity="0.3")
    engine.run()
    assert told(alice) == []  # resting in the book is no news

    buys = []
    for _ in range(2):
        buys.append(place(bob, side="buy", type="limit", price="65000.00", quantity="0.1"))
        engine.run()

    # Bob: each order filled, one message each.
    filled = told(bob, "order_filled")
    assert [n.data["order_id"] for n in filled] == [b.pk for b in buys]
    assert filled[0].title == f"Buy BTC-USDT order {buys[0].pk} filled"
    assert filled[0].body == "Filled 0.10 BTC for 6,500.00 USDT."  # at the assets' display places
    assert told(bob) == filled
    # Alice: two partial fills of one order in one window make one message, saying the latest.
    (partial,) = told(alice)
    assert partial.kind == "order_partially_filled"
    assert partial.dedupe_key.startswith(f"spot:{sell.pk}:partial:w")
    assert partial.body == "Filled 0.20 of 0.30 BTC so far for 13,000.00 USDT."
    assert partial.data["filled_quantity"] == "0.20000000"

    spot_order_cancel(user=alice, order_id=sell.pk)
    engine.run()
    cancelled = told(alice, "order_cancelled")
    assert len(cancelled) == 1
    assert cancelled[0].title == f"Sell BTC-USDT order {sell.pk} cancelled"
    assert "0.20 BTC of it had filled" in cancelled[0].body

    # A new leader rebuilding from the database tells nothing again.
    before = Notification.objects.count()
    engine.restart()
    engine.run()
    assert Notification.objects.count() == before


def test_the_market_maker_is_not_told(markets, settings):  # noqa: F811
    from orders.spot import notices

    maker = funded_trader()
    settings.MARKET_MAKER_EMAIL = maker.email
    notices._silent = None
    try:
        taker = funded_trader()
        engine = Engine("BTC-USDT")
        place(maker, side="sell", type="limit", price="65000.00", quantity="0.1")
        place(taker, side="buy", type="limit", price="65000.00", quantity="0.1")
        engine.run()
    finally:
        notices._silent = None
    assert told(maker) == []
    assert [n.kind for n in told(taker)] == ["order_filled"]


def test_a_deposit_is_told_once_however_often_the_chain_reports_it(markets):  # noqa: F811
    alice = funded_trader(btc="0")
    for _ in range(2):
        ledger_services.deposit_credit(user=alice, asset="BTC", amount=Decimal("0.125"), txid="chain-tx-7")

    (message,) = Notification.objects.filter(user=alice, kind="deposit_credited", data__txid="chain-tx-7")
    assert message.title == "Deposit of 0.125 BTC credited"
    assert message.data == {"asset": "BTC", "amount": "0.12500000", "txid": "chain-tx-7"}
    # Deposits are emailed by default.
    assert list(Delivery.objects.filter(notification=message).values_list("channel", flat=True)) == ["email"]


def test_withdrawals_are_told_when_requested_approved_and_rejected(markets, staff):  # noqa: F811
    alice = funded_trader()
    KycProfile.objects.filter(user=alice).update(status=KycStatus.APPROVED)
    first = ledger_services.withdrawal_create(user=alice, asset="USDT", amount=Decimal("100"), address=ETH_ADDRESS)
    second = ledger_services.withdrawal_create(user=alice, asset="USDT", amount=Decimal("50"), address=ETH_ADDRESS)
    ledger_services.withdrawal_approve(withdrawal_id=first.pk, actor=staff, network_txid="0xfeed")
    ledger_services.withdrawal_reject(withdrawal_id=second.pk, actor=staff, reason="address on a sanctions list")

    rows = told(alice, "withdrawal_updated")
    assert [(n.data["withdrawal_id"], n.data["status"]) for n in rows] == [
        (first.pk, "requested"),
        (second.pk, "requested"),
        (first.pk, "approved"),
        (second.pk, "rejected"),
    ]
    assert rows[2].title == "Withdrawal of 100.00 USDT approved and sent"
    assert "0xfeed" in rows[2].body
    assert rows[3].body.startswith("Reason: address on a sanctions list.")
    assert {n.dedupe_key for n in rows} == {
        f"withdrawal:{first.pk}:requested",
        f"withdrawal:{second.pk}:requested",
        f"withdrawal:{first.pk}:approved",
        f"withdrawal:{second.pk}:rejected",
    }


def test_a_fill_arrives_on_the_user_stream_as_a_notification_event(markets):  # noqa: F811
    alice, bob = funded_trader(), funded_trader()
    engine = Engine("BTC-USDT")
    cookie = session_cookie(alice)

    async def scenario():
        stream = socket(headers=[cookie])
        await connect(stream)
        await joined(stream, alice)
        await sync_to_async(place)(alice, side="sell", type="limit", price="65000.00", quantity="0.1")
        await sync_to_async(place)(bob, side="buy", type="limit", price="65000.00", quantity="0.1")
        await sync_to_async(engine.run)()
        frames = await frames_until(stream, lambda fs: any(f["type"] == "notification" for f in fs))
        await stream.disconnect()
        return frames

    from asgiref.sync import async_to_sync

    frames = async_to_sync(scenario)()
    (frame,) = [f for f in frames if f["type"] == "notification"]
    assert frame["channel"] == f"user:{alice.pk}"
    event = frame["notification"]
    stored = Notification.objects.get(user=alice, kind="order_filled")
    assert event["id"] == stored.pk
    assert event["kind"] == "order_filled"
    assert event["title"] == stored.title and event["body"] == stored.body
    assert event["read_at"] is None
    assert event["data"]["order_id"] == stored.data["order_id"]


def test_a_stop_that_triggers_is_told_and_then_its_fill(markets):  # noqa: F811
    alice, bob = funded_trader(), funded_trader()
    engine = Engine("BTC-USDT")
    place(alice, side="sell", type="limit", price="65500.00", quantity="0.5")
    stop = place(bob, side="buy", type="stop_market", stop_price="65200.00", quantity="0.05")
    engine.run()
    assert told(bob) == []  # waiting for its trigger

    place(alice, side="sell", type="limit", price="65300.00", quantity="0.01")
    trigger = place(bob, side="buy", type="limit", price="65300.00", quantity="0.01")
    engine.run()

    by_order = {(n.kind, n.data["order_id"]) for n in told(bob)}
    assert by_order == {("order_filled", trigger.pk), ("order_triggered", stop.pk), ("order_filled", stop.pk)}
    (triggered,) = told(bob, "order_triggered")
    assert triggered.title == f"Buy BTC-USDT order {stop.pk} triggered"
    assert triggered.dedupe_key == f"spot:{stop.pk}:triggered"


def test_a_trailing_stop_that_triggers_is_told_once_and_then_its_fill(markets):  # noqa: F811
    alice, bob, carol = funded_trader(), funded_trader(), funded_trader()
    engine = Engine("BTC-USDT")
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.01")
    place(carol, side="buy", type="limit", price="65000.00", quantity="0.01")
    engine.run()  # a last price for the stop to trail
    stop = place(bob, side="sell", type="trailing_stop", trail_amount="100.00", quantity="0.01")
    engine.run()
    assert told(bob) == []  # trailing, not triggered

    place(alice, side="buy", type="limit", price="64900.00", quantity="0.05")
    place(carol, side="sell", type="limit", price="64900.00", quantity="0.01")  # 100 below the peak
    engine.run()

    assert [(n.kind, n.data["order_id"]) for n in told(bob)] == [
        ("order_triggered", stop.pk),
        ("order_filled", stop.pk),
    ]
    triggered, filled = told(bob)
    assert triggered.title == f"Sell BTC-USDT order {stop.pk} triggered"
    assert triggered.data["type"] == "trailing_stop"
    assert triggered.dedupe_key == f"spot:{stop.pk}:triggered"
    assert filled.body == "Filled 0.01 BTC for 649.00 USDT."

    # A new leader rebuilding from the database tells nothing again.
    before = Notification.objects.count()
    engine.restart()
    engine.run()
    assert Notification.objects.count() == before


def test_orders_the_engine_refuses_are_told_once_with_the_reason(markets):  # noqa: F811
    alice, bob = funded_trader(), funded_trader()
    engine = Engine("BTC-USDT")
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.1")
    engine.run()
    post = place(bob, side="buy", type="limit", price="65000.00", quantity="0.1", post_only=True)
    fok = place(bob, side="buy", type="limit", price="65000.00", quantity="0.3", time_in_force="FOK")
    engine.run()

    rows = told(bob)
    assert [(n.kind, n.data["order_id"], n.data["reason"]) for n in rows] == [
        ("order_rejected", post.pk, "post_only_would_take"),
        ("order_rejected", fok.pk, "fok_unfillable"),
    ]
    assert rows[0].title == f"Buy BTC-USDT order {post.pk} rejected"
    assert rows[0].body == (
        "Refused by the engine: at that price the post-only order would have traded at once. "
        "Nothing of it traded; its hold is released."
    )
    assert rows[1].dedupe_key == f"spot:{fok.pk}:rejected" and rows[1].data["status"] == "rejected"

    before = Notification.objects.count()
    engine.restart()
    engine.run()
    assert Notification.objects.count() == before


def test_a_smart_order_is_told_once_as_one_order_when_it_closes(markets, settings, eager_tasks):  # noqa: F811
    from orders.spot.services.routing import smart_order_refresh
    from tests.orders.spot.routing_helpers import venues

    settings.SPOT_VENUES = venues()
    settings.SMART_ORDER_WAIT_SECONDS = 0
    alice, bob = funded_trader(), funded_trader()
    engine = Engine("BTC-USDT")
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.3")
    engine.run()

    parent = place(bob, side="buy", type="limit", time_in_force="IOC", price="65200.00", quantity="1", route="smart")
    engine.run()  # its child on our book fills: not a message of its own
    assert told(bob) == []
    for _ in range(2):  # closed, then looked at again by the sweep
        smart_order_refresh(parent_id=parent.pk)
    (message,) = told(bob)
    assert (message.kind, message.data["order_id"], message.data["route"]) == ("order_filled", parent.pk, "smart")
    assert message.title == f"Buy BTC-USDT order {parent.pk} filled"
    assert message.body.startswith("Filled 1.00 BTC for ") and message.data["filled_quantity"] == "1.00000000"
    assert message.dedupe_key == f"spot:{parent.pk}:filled"

    # nothing within its limit: cancelled at entry, and told so
    nothing = place(bob, side="buy", type="limit", time_in_force="IOC", price="64000.00", quantity="0.1", route="smart")
    (cancelled,) = told(bob, "order_cancelled")
    assert cancelled.data["order_id"] == nothing.pk and cancelled.data["reason"] == "no_liquidity"
    assert cancelled.body == "Reason: no liquidity. Nothing of it had filled. The rest of its hold is released."


def test_an_accepted_rfq_quote_is_told_once_as_a_block_trade_filled(markets, settings):  # noqa: F811
    from orders.spot import notices
    from tests.orders.spot.conftest import client_for
    from tests.orders.spot.routing_helpers import venues

    settings.SPOT_VENUES = venues()
    maker = funded_trader(usdt="1000000", btc="50")
    maker.email = settings.MARKET_MAKER_EMAIL
    maker.save(update_fields=["email"])
    notices._silent = None
    try:
        trader = funded_trader()
        quote = (
            client_for(trader)
            .post("/api/v1/rfq", {"symbol": "BTC-USDT", "side": "buy", "quantity": "0.5"}, format="json")
            .json()
        )
        for _ in range(2):  # the same acceptance replayed with its key
            accepted = client_for(trader).post(f"/api/v1/rfq/{quote['id']}/accept", HTTP_IDEMPOTENCY_KEY="k-1")
            assert accepted.status_code == 200, accepted.content
    finally:
        notices._silent = None

    (message,) = told(trader)
    price = Decimal(quote["price"])
    paid = (price / 2).quantize(Decimal("0.01"), ROUND_CEILING)  # the trader pays the cent-micro
    assert message.kind == "order_filled" and message.dedupe_key == f"rfq:{quote['id']}:filled"
    assert message.title == "Buy BTC-USDT block trade filled"
    assert message.body == f"Bought 0.50 BTC at {price:,.2f} USDT from the exchange's quote: {paid:,.2f} USDT paid."
    assert message.data["route"] == "rfq" and Decimal(message.data["filled_quote"]) == paid
    assert told(maker) == []


def test_a_withdrawal_approved_without_its_transaction_is_told_sent_once_it_is_recorded(markets, staff):  # noqa: F811
    from trading.errors import Conflict

    alice = funded_trader()
    KycProfile.objects.filter(user=alice).update(status=KycStatus.APPROVED)
    withdrawal = ledger_services.withdrawal_create(user=alice, asset="USDT", amount=Decimal("100"), address=ETH_ADDRESS)
    ledger_services.withdrawal_approve(withdrawal_id=withdrawal.pk, actor=staff)
    for _ in range(2):  # recorded again with the same transaction: nothing new
        ledger_services.withdrawal_sent_record(withdrawal_id=withdrawal.pk, actor=staff, network_txid=" 0xbeef ")
    with pytest.raises(Conflict) as other:
        ledger_services.withdrawal_sent_record(withdrawal_id=withdrawal.pk, actor=staff, network_txid="0xcafe")
    assert other.value.code == "withdrawal_already_sent"

    rows = told(alice, "withdrawal_updated")
    assert [n.data["status"] for n in rows] == ["requested", "approved", "sent"]
    approved, sent = rows[1], rows[2]
    assert approved.title == "Withdrawal of 100.00 USDT approved"
    assert "we will tell you its network transaction" in approved.body
    assert sent.title == "Withdrawal of 100.00 USDT sent"
    assert sent.body == f"To {ETH_ADDRESS}. Network transaction: 0xbeef."
    assert sent.data["network_txid"] == "0xbeef" and sent.dedupe_key == f"withdrawal:{withdrawal.pk}:sent"

    pending = ledger_services.withdrawal_create(user=alice, asset="USDT", amount=Decimal("10"), address=ETH_ADDRESS)
    with pytest.raises(Conflict) as early:
        ledger_services.withdrawal_sent_record(withdrawal_id=pending.pk, actor=staff, network_txid="0x1")
    assert early.value.code == "withdrawal_not_approved"
