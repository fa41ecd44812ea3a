"""Amending an open spot order (``PATCH /api/v1/orders/{id}``): the request and its reserve
hold go in with order entry's checks, the engine runner applies it with the book's priority
rules (a smaller quantity keeps the order's place, a new price or a larger quantity loses it)
and swaps the hold for one of the new size, all against real PostgreSQL; the ledger audit
reconciles every hold afterwards."""

from decimal import Decimal

import pytest
from django.core.management import call_command

from ledger.services import LedgerRejected
from orders.models import AmendStatus, SpotAmend, SpotOrder, SpotStatus, SpotTrade
from orders.spot.services import order_request, spot_order_amend, spot_order_cancel, spot_order_place
from tests.orders.conftest import INDEX, print_index
from trading.errors import Conflict, ValidationFailed

from .conftest import available, client_for, funded_trader, held

D = Decimal
pytestmark = pytest.mark.django_db


def place(user, **data):
    data.setdefault("symbol", "BTC-USDT")
    data.setdefault("type", "limit")
    order, _ = spot_order_place(user=user, request=order_request(**data))
    return order


def amend(user, order, **change):
    done, _ = spot_order_amend(user=user, order_id=order.pk, wait=0, **change)
    return done


def refresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def test_a_smaller_quantity_keeps_the_place_in_the_queue_a_new_price_or_a_larger_one_loses_it(alice, bob, btc_engine):
    buyer = funded_trader()
    first = place(alice, side="sell", price="65000.00", quantity="0.1")
    second = place(bob, side="sell", price="65000.00", quantity="0.1")
    btc_engine.run()

    reduced = amend(alice, first, quantity="0.05")
    assert held(alice, "BTC") == D("0.1")  # until the engine applies it
    btc_engine.run()
    reduced = refresh(reduced)
    assert (reduced.status, reduced.priority_kept) == (AmendStatus.APPLIED, True)
    assert refresh(first).quantity == D("0.05") and held(alice, "BTC") == D("0.05")
    place(buyer, side="buy", price="65000.00", quantity="0.05")
    btc_engine.run()
    assert SpotTrade.objects.get().maker_order_id == first.pk  # still ahead of the second
    assert refresh(first).status == SpotStatus.FILLED and held(alice, "BTC") == 0

    # the second is alone at 65000 now; alice's new order at 65010 moves down to it: behind
    third = place(alice, side="sell", price="65010.00", quantity="0.1")
    btc_engine.run()
    moved = amend(alice, third, price="65000.00")
    btc_engine.run()
    assert refresh(moved).priority_kept is False
    place(buyer, side="buy", price="65000.00", quantity="0.1")
    btc_engine.run()
    assert SpotTrade.objects.latest("seq").maker_order_id == second.pk
    assert refresh(third).status == SpotStatus.OPEN and refresh(third).price == D("65000.00")

    # a larger quantity re-queues it behind an order that came later
    fourth = place(bob, side="sell", price="65000.00", quantity="0.1")
    btc_engine.run()
    grown = amend(alice, third, quantity="0.2")
    assert refresh(grown).reserve == D("0.1") and held(alice, "BTC") == D("0.2")
    btc_engine.run()
    assert refresh(grown).priority_kept is False and held(alice, "BTC") == D("0.2")
    place(buyer, side="buy", price="65000.00", quantity="0.1")
    btc_engine.run()
    assert SpotTrade.objects.latest("seq").maker_order_id == fourth.pk
    assert refresh(third).remaining_quantity == D("0.2")
    call_command("ledger_audit")


def test_a_buy_hold_follows_price_times_remaining_and_a_change_the_funds_do_not_cover_writes_nothing(btc_engine):
    trader = funded_trader(usdt="10000", btc="0")
    buy = place(trader, side="buy", price="60000.00", quantity="0.1")
    btc_engine_run = btc_engine.run
    btc_engine_run()
    assert held(trader, "USDT") == D("6000")

    up = amend(trader, buy, price="61000.00")
    assert refresh(up).reserve == D("100") and held(trader, "USDT") == D("6100")
    btc_engine_run()
    assert refresh(up).status == AmendStatus.APPLIED
    assert held(trader, "USDT") == D("6100") and available(trader, "USDT") == D("3900")
    assert refresh(buy).hold_amount == D("6100") and refresh(buy).price == D("61000.00")

    down = amend(trader, buy, quantity="0.05")
    assert refresh(down).reserve == 0
    btc_engine_run()
    assert refresh(down).priority_kept is True and held(trader, "USDT") == D("3050")

    amends = SpotAmend.objects.count()
    with pytest.raises(LedgerRejected) as refused:
        amend(trader, buy, quantity="0.2")  # 12,200 USDT against 10,000
    assert refused.value.code == "insufficient_funds"
    assert SpotAmend.objects.count() == amends and held(trader, "USDT") == D("3050")
    assert refresh(buy).quantity == D("0.05")
    call_command("ledger_audit")


def test_a_crossing_price_trades_at_once_from_the_new_hold(alice, bob, btc_engine):
    sell = place(alice, side="sell", price="64900.00", quantity="0.05")
    buy = place(bob, side="buy", price="64000.00", quantity="0.1")
    btc_engine.run()
    before = available(bob, "USDT")

    amend(bob, buy, price="65000.00")
    btc_engine.run()
    trade = SpotTrade.objects.get()
    assert (trade.taker_order_id, trade.price, trade.quantity) == (buy.pk, D("64900.00"), D("0.05"))
    buy, sell = refresh(buy), refresh(sell)
    assert sell.status == SpotStatus.FILLED
    # the new hold was 65,000 x 0.1; the fill spent 64,900 x 0.05 of it and the rest stays held
    assert buy.status == SpotStatus.PARTIALLY_FILLED and buy.hold_amount == D("3255")
    assert held(bob, "USDT") == D("3255")
    assert available(bob, "USDT") == before + D("6400") - D("3245") - D("3255")

    with pytest.raises(ValidationFailed):
        amend(bob, buy, quantity="0.05")  # not more than what filled
    spot_order_cancel(user=bob, order_id=buy.pk, wait=0)
    btc_engine.run()
    assert held(bob, "USDT") == 0
    with pytest.raises(Conflict) as ended:
        amend(bob, buy, price="64000.00")
    assert ended.value.code == "order_not_open"
    call_command("ledger_audit")


def test_the_engine_refuses_a_post_only_that_would_take_and_the_reserve_is_released(alice, bob, btc_engine):
    place(alice, side="sell", price="65000.00", quantity="0.1")
    maker = place(bob, side="buy", price="64000.00", quantity="0.1", post_only=True)
    btc_engine.run()
    refused = amend(bob, maker, price="65000.00", quantity="0.2")
    assert held(bob, "USDT") == D("6400") + refresh(refused).reserve
    btc_engine.run()
    refused = refresh(refused)
    assert (refused.status, refused.reason) == (AmendStatus.REJECTED, "post_only_would_take")
    maker = refresh(maker)
    assert (maker.price, maker.quantity, maker.status) == (D("64000.00"), D("0.1"), SpotStatus.OPEN)
    assert held(bob, "USDT") == D("6400") and not SpotTrade.objects.exists()
    call_command("ledger_audit")


def test_an_order_still_new_is_amended_once_the_engine_has_placed_it(alice, btc_engine):
    sell = place(alice, side="sell", price="65000.00", quantity="0.1")
    pending = amend(alice, sell, quantity="0.04")
    btc_engine.run()
    assert refresh(pending).status == AmendStatus.APPLIED
    sell = refresh(sell)
    assert (sell.status, sell.quantity, sell.hold_amount) == (SpotStatus.OPEN, D("0.04"), D("0.04"))
    # a restarted runner rebuilds the amended order as it is
    btc_engine.restart()
    rebuilt = btc_engine.runner.book.order(sell.pk)
    assert (rebuilt.qty, rebuilt.remaining) == (btc_engine.runner.units.qty_to_lots(D("0.04")),) * 2
    assert held(alice, "BTC") == D("0.04")


# --- the API -----------------------------------------------------------------------------------------


def _error(response, status, code):
    assert response.status_code == status, response.content[:400]
    assert response.json()["error"]["code"] == code, response.json()
    return response.json()["error"]


def test_patch_amends_answers_the_contract_errors_and_replays_an_idempotency_key(alice, bob, btc_engine, settings):
    settings.SPOT_ORDER_WAIT_SECONDS = 0.05  # the engine runs by hand below
    api = client_for(alice)
    order = place(alice, side="buy", price="60000.00", quantity="0.1")
    btc_engine.run()
    url = f"/api/v1/orders/{order.pk}"

    response = api.patch(url, {"price": "60500.00"}, format="json", headers={"Idempotency-Key": "amend-1"})
    assert response.status_code == 202, response.content[:400]
    body = response.json()
    assert body["id"] == order.pk and body["amend"]["status"] == "pending" and D(body["amend"]["price"]) == D("60500")
    btc_engine.run()
    again = api.patch(url, {"price": "60500.00"}, format="json", headers={"Idempotency-Key": "amend-1"})
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["amend"]["id"] == body["amend"]["id"] and D(again.json()["price"]) == D("60500")
    assert D(again.json()["held"]["amount"]) == D("6050")
    _error(
        api.patch(url, {"price": "60600.00"}, format="json", headers={"Idempotency-Key": "amend-1"}),
        409,
        "idempotency_conflict",
    )

    assert _error(api.patch(url, {}, format="json"), 400, "validation_error")["fields"]
    assert "price" in _error(api.patch(url, {"price": "60500.005"}, format="json"), 400, "validation_error")["fields"]
    _error(api.patch(url, {"quantity": "-1"}, format="json"), 400, "validation_error")
    _error(api.patch(url, {"price": 1.5}, format="json"), 400, "validation_error")
    _error(api.patch(url, {"price": "60500.00"}, format="json"), 400, "validation_error")  # no change
    print_index("BTC", INDEX["BTC"])  # the band is checked against a fresh index
    _error(api.patch(url, {"price": "1000.00"}, format="json"), 400, "price_out_of_band")
    _error(client_for(bob).patch(url, {"quantity": "0.05"}, format="json"), 404, "not_found")
    _error(api.patch("/api/v1/orders/999999999", {"quantity": "0.05"}, format="json"), 404, "not_found")

    stop = place(alice, side="sell", type="stop_market", stop_price="60000.00", quantity="0.1")
    _error(api.patch(f"/api/v1/orders/{stop.pk}", {"price": "59000.00"}, format="json"), 400, "validation_error")

    api.patch(url, {"quantity": "0.09"}, format="json")
    _error(api.patch(url, {"quantity": "0.08"}, format="json"), 409, "amend_pending")
    btc_engine.run()

    post_only = place(alice, side="buy", price="60000.00", quantity="0.1", post_only=True)
    place(bob, side="sell", price="61000.00", quantity="0.1")
    btc_engine.run()
    post_url = f"/api/v1/orders/{post_only.pk}"
    asked = api.patch(post_url, {"price": "61000.00"}, format="json", headers={"Idempotency-Key": "k2"})
    assert asked.status_code == 202
    btc_engine.run()
    refusal = _error(
        api.patch(post_url, {"price": "61000.00"}, format="json", headers={"Idempotency-Key": "k2"}),
        409,
        "amend_rejected",
    )
    assert "post-only" in refusal["message"]

    api.delete(url)
    btc_engine.run()
    _error(api.patch(url, {"quantity": "0.05"}, format="json"), 409, "order_not_open")
    assert SpotOrder.objects.get(pk=order.pk).quantity == D("0.09")
    call_command("ledger_audit")


# --- the trader is told --------------------------------------------------------------------------------


def test_each_amend_verdict_is_told_once_in_the_app(alice, bob, btc_engine):
    from notifications.models import Notification

    def told():
        return list(Notification.objects.filter(user=bob, kind="order_amended").order_by("id"))

    place(alice, side="sell", price="65000.00", quantity="0.1")
    buy = place(bob, side="buy", price="64000.00", quantity="0.1", post_only=True)
    btc_engine.run()
    assert told() == []

    kept = amend(bob, buy, quantity="0.05")
    btc_engine.run()
    [first] = told()
    assert first.title == f"Buy BTC-USDT order {buy.pk} changed"
    assert first.body == "Now quantity 0.05 BTC. It kept its place in the queue."
    assert first.data["amend_id"] == kept.pk and first.data["priority_kept"] is True
    assert (first.data["order_id"], first.data["status"], D(first.data["quantity"])) == (buy.pk, "applied", D("0.05"))

    amend(bob, buy, price="64100.00")
    btc_engine.run()
    assert told()[-1].body == "Now price 64,100.00 USDT. It moved to the back of the queue at its price."

    refused = amend(bob, buy, price="65000.00")  # a post-only order that would take
    btc_engine.run()
    last = told()[-1]
    assert last.title == f"Change to Buy BTC-USDT order {buy.pk} refused"
    assert last.body == (
        "Reason: at the new price the post-only order would have traded at once. The order is unchanged."
    )
    assert (last.data["amend_id"], last.data["status"], last.data["reason"]) == (
        refused.pk,
        "rejected",
        "post_only_would_take",
    )
    # one message per verdict, listed by the API like every other notification
    assert len(told()) == 3 and not Notification.objects.filter(user=alice, kind="order_amended").exists()
    listed = client_for(bob).get("/api/v1/notifications").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [n["kind"] for n in rows if n["kind"] == "order_amended"] == ["order_amended"] * 3
    assert rows[0]["title"] == last.title and rows[0]["read_at"] is None
