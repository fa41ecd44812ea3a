"""POST /api/v1/options/orders: buy to open and sell to close move the right USDT between the
trader and OPTION_CLEARING (balances API and ledger agree), keep the position, write the
outbox event the back office settles; every refusal leaves nothing behind."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from ledger.models import Transfer
from marketdata.models import Instrument
from orders.models import OptionOrder, OptionPosition, OptionQuote
from orders.options.services import options_order_place, options_quote
from tests.accounts.helpers import assert_error
from tests.risk.helpers import limit_set
from trading.models import OutboxEvent

from ..conftest import FUNDS, INDEX, clearing_usdt, client_for, pick_series, print_index, trader, usdt_available

pytestmark = pytest.mark.django_db

QUOTES = "/api/v1/options/quotes"
ORDERS = "/api/v1/options/orders"
ORDER_FIELDS = {
    "id",
    "series",
    "side",
    "contracts",
    "price_usdt",
    "total_usdt",
    "status",
    "position",
    "settlement_state",
}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def quote(client, series, side="buy", contracts="1") -> dict:
    response = client.post(QUOTES, {"series": series.symbol, "side": side, "contracts": contracts}, format="json")
    assert response.status_code == 201, response.content[:500]
    return response.json()


def order(client, **payload):
    return client.post(ORDERS, payload, format="json")


def filled(response) -> dict:
    assert response.status_code == 201, response.content[:500]
    return response.json()


def nothing_written(*, orders=0, outbox=0):
    assert OptionOrder.objects.count() == orders
    assert OutboxEvent.objects.filter(topic="options.order").count() == outbox


# --- buy to open ------------------------------------------------------------------------------------


def test_buy_from_a_quote_debits_usdt_opens_the_position_and_writes_the_event(funded_api, btc_call):
    q = quote(funded_api, btc_call, contracts="0.5")
    body = filled(order(funded_api, quote_id=q["quote_id"]))
    assert set(body) >= ORDER_FIELDS, body
    assert (body["series"], body["side"], body["kind"], body["contracts"], body["status"]) == (
        btc_call.symbol,
        "buy",
        "open",
        "0.50",
        "filled",
    )
    assert (body["price_usdt"], body["total_usdt"]) == (q["price_usdt"], q["total_usdt"])
    assert body["settlement_state"] == "pending" and body["quote_id"] == q["quote_id"]
    total = Decimal(q["total_usdt"])
    assert body["position"] == {
        "series": btc_call.symbol,
        "status": "open",
        "contracts": "0.50",
        "average_price_usdt": f"{Decimal(q['price_usdt']):.6f}",
        "realized_pnl_usdt": "0.000000",
    }

    # the balances API and the ledger agree: USDT left the trader for OPTION_CLEARING
    assert usdt_available(funded_api) == FUNDS - total
    assert clearing_usdt() == total
    transfer = Transfer.objects.get(id=f"optord:{body['id']}:premium")
    assert (transfer.asset, transfer.amount, transfer.code, transfer.reference) == (
        "USDT",
        total,
        "option_open",
        f"option_order:{body['id']}",
    )
    assert transfer.debit_account.user_id == funded_api.user.pk and transfer.credit_account.role == "option_clearing"
    history = funded_api.get("/api/v1/ledger").json()["results"]
    assert (
        history[0]["id"] == transfer.id and history[0]["direction"] == "out" and Decimal(history[0]["amount"]) == total
    )

    # the outbox event, exactly the settlement contract
    [event] = OutboxEvent.objects.filter(topic="options.order")
    key = f"option_order:{body['id']}"
    assert event.key == key
    payload = dict(event.payload)
    created_at = payload.pop("created_at")
    assert ISO_Z.match(created_at)
    assert payload == {
        "ref": key,
        "kind": "open",
        "order_id": body["id"],
        "user_id": funded_api.user.pk,
        "series": btc_call.symbol,
        "underlying": "BTC",
        "contracts": "0.50",
        "usdt": f"{total:.6f}",
        "underlying_qty": f"{(total / INDEX['BTC']).quantize(Decimal('0.00000001'), rounding='ROUND_DOWN'):.8f}",
        "index_price": "65000.12",
    }


def test_buying_again_adds_to_the_position_at_the_average_price(funded_api, btc_call):
    first = filled(order(funded_api, quote_id=quote(funded_api, btc_call, contracts="1")["quote_id"]))
    print_index("BTC", INDEX["BTC"] + 100)  # the price moves a little
    second = filled(order(funded_api, quote_id=quote(funded_api, btc_call, contracts="3")["quote_id"]))
    paid = Decimal(first["total_usdt"]) + Decimal(second["total_usdt"])
    assert Decimal(second["price_usdt"]) > Decimal(first["price_usdt"])
    position = OptionPosition.objects.get(user=funded_api.user, instrument=btc_call)
    assert (position.contracts, position.cost_usdt, position.status) == (Decimal(4), paid, "open")
    assert position.average_price_usdt == (paid / 4).quantize(Decimal("0.000001"))
    assert second["position"]["contracts"] == "4.00"
    assert usdt_available(funded_api) == FUNDS - paid
    assert OutboxEvent.objects.filter(topic="options.order").count() == 2


def test_a_limit_order_fills_at_the_counter_price_when_the_limit_allows(funded_api, btc_call):
    ask = Decimal(quote(funded_api, btc_call)["price_usdt"])
    body = filled(
        order(funded_api, series=btc_call.symbol, side="buy", contracts="2", limit_price_usdt=f"{ask + 50:f}")
    )
    # the live price, not the limit
    assert Decimal(body["price_usdt"]) == ask and Decimal(body["limit_price_usdt"]) == ask + 50
    assert Decimal(body["total_usdt"]) == ask * 2 and body["quote_id"] is None
    assert usdt_available(funded_api) == FUNDS - ask * 2


def test_a_limit_below_the_ask_is_refused_and_writes_nothing(funded_api, btc_call):
    ask = Decimal(quote(funded_api, btc_call)["price_usdt"])
    error = assert_error(
        order(
            funded_api, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt=f"{ask - Decimal('0.01'):f}"
        ),
        409,
        "price_limit_exceeded",
    )
    assert "limit_price_usdt" in error["fields"]
    nothing_written()
    assert usdt_available(funded_api) == FUNDS and not OptionPosition.objects.exists()


# --- sell to close ----------------------------------------------------------------------------------


def test_buy_then_close_credits_the_proceeds_and_records_the_realized_pnl(funded_api, btc_call):
    bought = filled(order(funded_api, quote_id=quote(funded_api, btc_call, contracts="2")["quote_id"]))
    cost = Decimal(bought["total_usdt"])
    sell_quote = quote(funded_api, btc_call, side="sell", contracts="2")
    assert Decimal(sell_quote["price_usdt"]) < Decimal(bought["price_usdt"])  # the counter's spread
    sold = filled(order(funded_api, quote_id=sell_quote["quote_id"]))
    proceeds = Decimal(sold["total_usdt"])
    assert (sold["side"], sold["kind"], proceeds) == ("sell", "close", Decimal(sell_quote["price_usdt"]) * 2)
    assert Decimal(sold["realized_pnl_usdt"]) == proceeds - cost < 0
    assert sold["position"]["status"] == "closed" and sold["position"]["contracts"] == "0.00"
    assert Decimal(sold["position"]["realized_pnl_usdt"]) == proceeds - cost

    assert usdt_available(funded_api) == FUNDS - cost + proceeds
    assert clearing_usdt() == cost - proceeds
    transfer = Transfer.objects.get(id=f"optord:{sold['id']}:premium")
    assert transfer.code == "option_close" and transfer.amount == proceeds
    assert transfer.credit_account.user_id == funded_api.user.pk and transfer.debit_account.role == "option_clearing"
    history = funded_api.get("/api/v1/ledger").json()["results"]
    assert history[0]["id"] == transfer.id and history[0]["direction"] == "in"

    event = OutboxEvent.objects.get(key=f"option_order:{sold['id']}")
    assert event.payload["kind"] == "close" and event.payload["usdt"] == f"{proceeds:.6f}"
    assert (
        event.payload["underlying_qty"]
        == f"{(proceeds / INDEX['BTC']).quantize(Decimal('0.00000001'), rounding='ROUND_DOWN'):.8f}"
    )
    position = OptionPosition.objects.get(user=funded_api.user)
    assert (position.status, position.contracts, position.cost_usdt) == ("closed", 0, 0) and position.closed_at


def test_a_partial_close_releases_cost_pro_rata(funded_api, btc_call):
    bought = filled(order(funded_api, series=btc_call.symbol, side="buy", contracts="3", limit_price_usdt="999999"))
    cost = Decimal(bought["total_usdt"])
    sold = filled(order(funded_api, series=btc_call.symbol, side="sell", contracts="1", limit_price_usdt="0.01"))
    position = OptionPosition.objects.get(user=funded_api.user)
    released = (cost / 3).quantize(Decimal("0.000001"))
    assert position.contracts == 2 and position.status == "open"
    assert position.cost_usdt == cost - released
    assert Decimal(sold["realized_pnl_usdt"]) == Decimal(sold["total_usdt"]) - released
    assert sold["position"]["contracts"] == "2.00"
    # the rest closes against exactly what is left of the cost
    rest = filled(order(funded_api, series=btc_call.symbol, side="sell", contracts="2", limit_price_usdt="0.01"))
    assert Decimal(rest["realized_pnl_usdt"]) == Decimal(rest["total_usdt"]) - (cost - released)
    position.refresh_from_db()
    assert (
        position.cost_usdt == 0
        and position.realized_pnl_usdt == Decimal(sold["total_usdt"]) + Decimal(rest["total_usdt"]) - cost
    )


def test_a_sell_limit_above_the_bid_is_refused(funded_api, btc_call):
    filled(order(funded_api, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="999999"))
    bid = Decimal(quote(funded_api, btc_call, side="sell")["price_usdt"])
    assert_error(
        order(
            funded_api,
            series=btc_call.symbol,
            side="sell",
            contracts="1",
            limit_price_usdt=f"{bid + Decimal('0.01'):f}",
        ),
        409,
        "price_limit_exceeded",
    )
    nothing_written(orders=1, outbox=1)
    assert OptionPosition.objects.get().contracts == 1


def test_selling_more_than_held_is_refused(funded_api, btc_call):
    assert_error(
        order(funded_api, series=btc_call.symbol, side="sell", contracts="1", limit_price_usdt="0.01"),
        409,
        "insufficient_position",
    )
    filled(order(funded_api, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="999999"))
    error = assert_error(
        order(funded_api, series=btc_call.symbol, side="sell", contracts="1.01", limit_price_usdt="0.01"),
        409,
        "insufficient_position",
    )
    assert error["fields"]["contracts"] == ["At most 1."]
    # a quote for the held amount, then the position shrinks below it before the order
    sell_quote = quote(funded_api, btc_call, side="sell", contracts="1")
    filled(order(funded_api, series=btc_call.symbol, side="sell", contracts="0.5", limit_price_usdt="0.01"))
    assert_error(order(funded_api, quote_id=sell_quote["quote_id"]), 409, "insufficient_position")
    nothing_written(orders=2, outbox=2)
    assert OptionPosition.objects.get().contracts == Decimal("0.5")


def test_closing_needs_no_kyc(btc_call):
    user = trader()
    client = client_for(user)
    filled(order(client, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="999999"))
    from accounts.models import KycProfile, KycStatus

    KycProfile.objects.filter(user=user).update(status=KycStatus.REJECTED)
    assert_error(
        order(client, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="999999"), 403, "kyc_required"
    )
    filled(order(client, series=btc_call.symbol, side="sell", contracts="1", limit_price_usdt="0.01"))


# --- refusals ---------------------------------------------------------------------------------------


def test_an_expired_quote_is_refused(funded_api, btc_call):
    q = quote(funded_api, btc_call)
    OptionQuote.objects.filter(pk=q["quote_id"]).update(expires_at=timezone.now() - timedelta(milliseconds=1))
    assert_error(order(funded_api, quote_id=q["quote_id"]), 409, "quote_expired")
    nothing_written()
    assert usdt_available(funded_api) == FUNDS


def test_a_quote_whose_index_moved_too_far_is_refused(funded_api, btc_call, settings):
    tolerance = Decimal(repr(settings.OPTION_QUOTE_INDEX_TOLERANCE))
    q = quote(funded_api, btc_call)
    print_index("BTC", INDEX["BTC"] * (1 + tolerance * 2))
    assert_error(order(funded_api, quote_id=q["quote_id"]), 409, "quote_index_moved")
    print_index("BTC", INDEX["BTC"] * (1 - tolerance * 2))
    assert_error(order(funded_api, quote_id=q["quote_id"]), 409, "quote_index_moved")
    nothing_written()
    # within the tolerance the quote is honoured, at its own price
    print_index("BTC", INDEX["BTC"] * (1 + tolerance / 2))
    body = filled(order(funded_api, quote_id=q["quote_id"]))
    assert body["price_usdt"] == q["price_usdt"]
    assert Decimal(body["index_price"]) == (INDEX["BTC"] * (1 + tolerance / 2)).quantize(Decimal("0.00000001"))


def test_a_stale_index_refuses_orders(funded_api, btc_call):
    q = quote(funded_api, btc_call)
    print_index("BTC", None, stale=True)
    assert_error(order(funded_api, quote_id=q["quote_id"]), 503, "index_stale")
    assert_error(
        order(funded_api, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="99999"),
        503,
        "index_stale",
    )
    nothing_written()


def test_a_buy_quote_the_trader_cannot_pay_is_refused_at_quote_time_with_the_reason(btc_call):
    poor = trader(usdt="10")
    client = client_for(poor)
    response = client.post(QUOTES, {"series": btc_call.symbol, "side": "buy", "contracts": "1"}, format="json")
    error = assert_error(response, 409, "insufficient_funds", field="contracts")
    assert "is more than the 10.00 USDT you have available" in error["message"]
    smallest = "Not enough for 0.01 contracts, the smallest order: deposit USDT first."
    assert error["fields"]["contracts"] == [smallest] or re.match(
        r"At most 0\.\d+ contracts at this price\.", error["fields"]["contracts"][0]
    )
    assert not OptionQuote.objects.filter(user=poor).exists()
    # what it says is the most they can buy does get a quote
    rich = trader(usdt="2000")
    error = assert_error(
        client_for(rich).post(QUOTES, {"series": btc_call.symbol, "side": "buy", "contracts": "50"}, format="json"),
        409,
        "insufficient_funds",
    )
    # the amounts as the pages write them: USDT at two places with thousands separators
    assert re.match(r"^\d{1,3}(,\d{3})+\.\d{2} USDT for this quote is more than the 2,000\.00 USDT", error["message"])
    most = re.match(r"At most ([0-9.]+) contracts", error["fields"]["contracts"][0]).group(1)
    assert Decimal(quote(client_for(rich), btc_call, contracts=most)["total_usdt"]) <= 2000
    # selling needs no USDT: a sell quote is checked against the position instead
    assert_error(
        client.post(QUOTES, {"series": btc_call.symbol, "side": "sell", "contracts": "1"}, format="json"),
        409,
        "insufficient_position",
    )


def test_usdt_gone_between_quote_and_order_is_refused_with_nothing_written(btc_call):
    from ledger.services import deposit_credit
    from ledger.services.funding import withdrawal_create

    buyer = trader(usdt="100000")
    client = client_for(buyer)
    q = quote(client, btc_call, contracts="1")
    spare = usdt_available(client) - Decimal(q["total_usdt"]) + 1  # hold all but a little less than the quote
    withdrawal_create(user=buyer, asset="USDT", amount=spare, address="0x" + "ab" * 20, idempotency_key="")
    assert_error(order(client, quote_id=q["quote_id"]), 409, "insufficient_funds")
    nothing_written()
    assert not OptionPosition.objects.exists()
    assert clearing_usdt() == 0
    assert not Transfer.objects.filter(code="option_open").exists()
    # the quote was not spent by the failure: with funds it fills
    deposit_credit(user=buyer, asset="USDT", amount=Decimal("100000"), txid="top-up")
    filled(order(client, quote_id=q["quote_id"]))


def test_position_and_exposure_limits(funded_api, btc_call):
    limit_set("max_series_contracts", 2, target="BTC")
    filled(order(funded_api, series=btc_call.symbol, side="buy", contracts="1.5", limit_price_usdt="999999"))
    error = assert_error(
        order(funded_api, series=btc_call.symbol, side="buy", contracts="0.51", limit_price_usdt="999999"),
        422,
        "position_limit",
    )
    assert error["fields"]["contracts"] == ["At most 0.5 more."]
    filled(order(funded_api, series=btc_call.symbol, side="buy", contracts="0.5", limit_price_usdt="999999"))
    # the premium paid for all open positions together
    paid = OptionPosition.objects.get().cost_usdt
    other = pick_series("BTC", "P")
    price = Decimal(quote(funded_api, other)["price_usdt"])
    limit_set("max_option_premium", paid + price - Decimal("0.01"))
    assert_error(
        order(funded_api, series=other.symbol, side="buy", contracts="1", limit_price_usdt="999999"),
        422,
        "position_limit",
    )
    nothing_written(orders=2, outbox=2)
    limit_set("max_option_premium", paid + price)
    filled(order(funded_api, series=other.symbol, side="buy", contracts="1", limit_price_usdt=f"{price:f}"))


def test_unknown_expired_and_foreign_things_are_refused(funded_api, btc_call):
    limit = {"side": "buy", "contracts": "1", "limit_price_usdt": "99999"}
    assert_error(order(funded_api, series="BTC-20991231-100000-C", **limit), 404, "not_found")
    assert_error(order(funded_api, quote_id=str(uuid.uuid4())), 404, "not_found")
    # another trader's quote is not yours to use
    stranger = client_for(trader())
    foreign = quote(stranger, btc_call)
    error = assert_error(order(funded_api, quote_id=foreign["quote_id"]), 404, "not_found")
    assert foreign["quote_id"] not in error["message"]
    # an expired series, also through a quote taken before
    q = quote(funded_api, btc_call)
    Instrument.objects.filter(pk=btc_call.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert_error(order(funded_api, series=btc_call.symbol, **limit), 409, "series_expired")
    assert_error(order(funded_api, quote_id=q["quote_id"]), 409, "series_expired")
    nothing_written()


def test_a_quote_fills_once(funded_api, btc_call):
    q = quote(funded_api, btc_call)
    filled(order(funded_api, quote_id=q["quote_id"]))
    assert_error(order(funded_api, quote_id=q["quote_id"]), 409, "quote_used")
    nothing_written(orders=1, outbox=1)


@pytest.mark.parametrize(
    "payload,field",
    [
        ({}, "side"),
        ({"quote_id": "not-a-uuid"}, "quote_id"),
        ({"quote_id": "00000000-0000-0000-0000-000000000000", "series": "X"}, "quote_id"),
        ({"series": "X", "side": "buy", "contracts": "1"}, "limit_price_usdt"),
        ({"series": "X", "side": "buy", "contracts": "1", "limit_price_usdt": "10.001"}, "limit_price_usdt"),
        ({"series": "X", "side": "buy", "contracts": "1", "limit_price_usdt": 10.5}, "limit_price_usdt"),
        ({"series": "X", "side": "buy", "contracts": "0.001", "limit_price_usdt": "10"}, "contracts"),
        ({"series": "X", "side": "short", "contracts": "1", "limit_price_usdt": "10"}, "side"),
        ({"series": "", "side": "buy", "contracts": "1", "limit_price_usdt": "10"}, "series"),
        (
            {"series": "X", "side": "buy", "contracts": "1", "limit_price_usdt": "10", "client_order_id": "has space"},
            "client_order_id",
        ),
        (
            {"series": "X", "side": "buy", "contracts": "1", "limit_price_usdt": "10", "client_order_id": "x" * 65},
            "client_order_id",
        ),
    ],
)
def test_bad_input_is_a_400(funded_api, btc_call, payload, field):
    payload = {key: (btc_call.symbol if value == "X" else value) for key, value in payload.items()}
    assert_error(order(funded_api, **payload), 400, "validation_error", field=field)
    nothing_written()


def test_buying_needs_approved_kyc(btc_call):
    client = client_for(trader(kyc=False))
    q = quote(client, btc_call)  # a price is free to ask for
    assert_error(order(client, quote_id=q["quote_id"]), 403, "kyc_required")
    assert_error(
        order(client, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="99999"), 403, "kyc_required"
    )
    nothing_written()
    assert usdt_available(client) == FUNDS


def test_kyc_can_be_switched_off(btc_call, settings):
    settings.OPTION_KYC_REQUIRED = False
    client = client_for(trader(kyc=False))
    filled(order(client, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="99999"))


def test_orders_need_authentication(api, btc_call):
    response = order(api, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="99999")
    assert response.status_code in (401, 403) and response.json()["error"]["code"] == "not_authenticated"
    nothing_written()


# --- idempotency --------------------------------------------------------------------------------------


def test_a_replayed_client_order_id_returns_the_original_order(funded_api, btc_call):
    payload = {
        "series": btc_call.symbol,
        "side": "buy",
        "contracts": "1",
        "limit_price_usdt": "99999",
        "client_order_id": "abc-1",
    }
    first = funded_api.post(ORDERS, payload, format="json")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    print_index("BTC", INDEX["BTC"] + 500)  # the price moved: a second fill would cost more
    again = funded_api.post(ORDERS, payload, format="json")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["total_usdt"] == first.json()["total_usdt"]
    assert again.json()["client_order_id"] == "abc-1"
    nothing_written(orders=1, outbox=1)
    assert usdt_available(funded_api) == FUNDS - Decimal(first.json()["total_usdt"])
    # the same id with another payload is a conflict
    assert_error(funded_api.post(ORDERS, {**payload, "contracts": "2"}, format="json"), 409, "idempotency_conflict")
    q = quote(funded_api, btc_call)
    assert_error(order(funded_api, quote_id=q["quote_id"], client_order_id="abc-1"), 409, "idempotency_conflict")
    nothing_written(orders=1, outbox=1)
    # ... and another trader may use the same id for their own order
    other = client_for(trader())
    assert filled(other.post(ORDERS, payload, format="json"))["id"] != first.json()["id"]


def test_a_replayed_quote_order_returns_the_original(funded_api, btc_call):
    q = quote(funded_api, btc_call)
    first = filled(order(funded_api, quote_id=q["quote_id"], client_order_id="q-1"))
    OptionQuote.objects.filter(pk=q["quote_id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = filled(order(funded_api, quote_id=q["quote_id"], client_order_id="q-1"))  # even after the quote expired
    assert again["id"] == first["id"]
    nothing_written(orders=1, outbox=1)


def test_a_failed_order_can_be_retried_with_its_client_order_id(btc_call):
    user = trader(usdt="1")
    client = client_for(user)
    payload = {
        "series": btc_call.symbol,
        "side": "buy",
        "contracts": "1",
        "limit_price_usdt": "99999",
        "client_order_id": "retry-me",
    }
    assert_error(client.post(ORDERS, payload, format="json"), 409, "insufficient_funds")
    from ledger.services import deposit_credit

    deposit_credit(user=user, asset="USDT", amount=Decimal("100000"), txid="retry-top-up")
    assert filled(client.post(ORDERS, payload, format="json"))["client_order_id"] == "retry-me"


# --- one transaction ----------------------------------------------------------------------------------


def test_a_failure_after_the_money_moved_rolls_everything_back(funded_api, btc_call):
    """The outbox write is the last step of the fill: when it fails, the order, the position
    and the ledger transfer are gone with it."""
    q = quote(funded_api, btc_call)
    with (
        mock.patch("orders.options.services.outbox_write", side_effect=RuntimeError("outbox down")),
        pytest.raises(RuntimeError),
    ):
        options_order_place(user=funded_api.user, quote_id=q["quote_id"])
    nothing_written()
    assert not OptionPosition.objects.exists()
    assert not Transfer.objects.filter(code="option_open").exists()
    assert usdt_available(funded_api) == FUNDS and clearing_usdt() == 0
    # and the quote is still good
    filled(order(funded_api, quote_id=q["quote_id"]))


def test_orders_write_one_event_each_and_refusals_none(funded_api, btc_call):
    filled(order(funded_api, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt="99999"))
    for payload in (
        {"series": btc_call.symbol, "side": "sell", "contracts": "5", "limit_price_usdt": "0.01"},
        {"series": btc_call.symbol, "side": "buy", "contracts": "1", "limit_price_usdt": "0.01"},
        {"quote_id": str(uuid.uuid4())},
    ):
        assert order(funded_api, **payload).status_code in (404, 409)
    filled(order(funded_api, series=btc_call.symbol, side="sell", contracts="1", limit_price_usdt="0.01"))
    events = list(OutboxEvent.objects.filter(topic="options.order").order_by("id"))
    orders = list(OptionOrder.objects.order_by("id"))
    assert [e.key for e in events] == [f"option_order:{o.pk}" for o in orders]
    assert [e.payload["kind"] for e in events] == ["open", "close"]


def test_the_service_prices_at_one_instant(btc_call):
    """A quote and an order placed at the same instant fill at the same price."""
    user = trader()
    now = timezone.now()
    q = options_quote(user=user, series=btc_call.symbol, side="buy", contracts="1", now=now)
    placed, replayed = options_order_place(
        user=user, series=btc_call.symbol, side="buy", contracts="1", limit_price_usdt=f"{q.price_usdt:f}", now=now
    )
    assert not replayed and placed.price_usdt == q.price_usdt and placed.mark_usdt == q.mark_usdt
