"""Every limit through the entry path that enforces it, at its boundary: just inside passes,
just outside refuses with its code and the limit's name, and nothing is written. Overrides per
target, tier and user; the trader's view of their limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import KycProfile, KycStatus
from ledger.models import Transfer
from orders.models import OptionOrder, SpotOrder
from risk import selectors
from risk.models import RiskLimit
from tests.orders.conftest import client_for, pick_series, trader
from tests.orders.spot.conftest import funded_trader
from tests.risk.helpers import limit_set

D = Decimal
pytestmark = pytest.mark.django_db


def post(client, **data):
    data.setdefault("symbol", "BTC-USDT")
    data.setdefault("type", "limit")
    return client.post("/api/v1/orders", data, format="json")


def refused(response, status, code, limit=None):
    assert response.status_code == status, response.content[:400]
    body = response.json()["error"]
    assert body["code"] == code, body
    if limit is not None:
        assert body["fields"]["limit"] == [limit], body
    return body


def written():
    return SpotOrder.objects.count(), OptionOrder.objects.count(), Transfer.objects.count()


@pytest.mark.parametrize(
    "name, value, inside, outside, status, code",
    [
        # quantities: limit orders and market orders separately
        (
            "max_order_quantity",
            "0.5",
            {"quantity": "0.5", "price": "65000.00"},
            {"quantity": "0.50001", "price": "65000.00"},
            422,
            "risk_limit",
        ),
        (
            "max_market_quantity",
            "0.2",
            {"type": "market", "quantity": "0.2"},
            {"type": "market", "quantity": "0.20001"},
            422,
            "risk_limit",
        ),
        # value
        (
            "max_notional",
            "6500",
            {"quantity": "0.1", "price": "65000.00"},
            {"quantity": "0.1", "price": "65000.01"},
            400,
            "max_order_size",
        ),
        (
            "min_notional",
            "6500",
            {"quantity": "0.1", "price": "65000.00"},
            {"quantity": "0.1", "price": "64999.99"},
            400,
            "min_notional",
        ),
        # band by side: a buy at most 1 % above the index (65000.12)
        (
            "buy_band_above",
            "0.01",
            {"quantity": "0.1", "price": "65650.12"},
            {"quantity": "0.1", "price": "65650.13"},
            400,
            "price_out_of_band",
        ),
        (
            "sell_band_below",
            "0.01",
            {"side": "sell", "quantity": "0.1", "price": "64350.12"},
            {"side": "sell", "quantity": "0.1", "price": "64350.11"},
            400,
            "price_out_of_band",
        ),
    ],
)
def test_each_order_limit_at_its_boundary(alice, name, value, inside, outside, status, code):
    limit_set(name, value, target="BTC-USDT")
    client = client_for(alice)
    before = written()
    body = refused(post(client, **{"side": "buy", **outside}), status, code, limit=name)
    assert body["message"]
    assert written() == before
    response = post(client, **{"side": "buy", **inside})
    assert response.status_code == 201, response.content[:400]


def test_the_position_limit_counts_the_holding(markets):
    alice = funded_trader(usdt="100000", btc="1.5")
    limit_set("max_position", "2", target="BTC")
    client = client_for(alice)
    before = written()
    body = refused(post(client, side="buy", quantity="0.50001", price="65000.00"), 422, "risk_limit", "max_position")
    assert body["fields"]["quantity"] == ["At most 0.5 more."]
    assert written() == before
    assert post(client, side="buy", quantity="0.5", price="65000.00").status_code == 201
    # selling is never held to it
    assert post(client, side="sell", quantity="1.5", price="65000.00").status_code == 201


def test_open_orders_limit(alice):
    limit_set("max_open_orders", 2)
    client = client_for(alice)
    for _ in range(2):
        assert post(client, side="buy", quantity="0.01", price="60000.00").status_code == 201
    before = written()
    refused(post(client, side="buy", quantity="0.01", price="60000.00"), 409, "max_open_orders", "max_open_orders")
    assert written() == before


def test_overrides_resolve_user_then_tier_then_everyone_target_first(markets):
    alice, bob = funded_trader(), funded_trader()
    KycProfile.objects.filter(user=bob).update(status=KycStatus.APPROVED)  # bob is tier 1
    selectors.cache_clear()
    value = lambda user: selectors.limit_value(  # noqa: E731
        "max_order_quantity", target="BTC-USDT", tier=selectors.tier_of(user), user_id=user.pk
    )
    assert value(alice) == D("100")  # the platform default in settings
    limit_set("max_order_quantity", "50")
    assert value(alice) == D("50")  # everyone, any target
    limit_set("max_order_quantity", "40", target="BTC-USDT")
    assert value(alice) == D("40")  # everyone, this target
    limit_set("max_order_quantity", "30", tier=1)
    assert (value(alice), value(bob)) == (D("40"), D("30"))  # bob's tier
    limit_set("max_order_quantity", "20", tier=1, target="BTC-USDT")
    assert value(bob) == D("20")
    limit_set("max_order_quantity", "10", user=alice)
    limit_set("max_order_quantity", "5", user=alice, target="BTC-USDT")
    assert (value(alice), value(bob)) == (D("5"), D("20"))
    assert selectors.limit_value("max_order_quantity", target="ETH-USDT", tier=0, user_id=alice.pk) == D("10")


def test_a_change_in_the_admin_is_audited_and_seen_at_once(alice, admin_client_otp):
    response = admin_client_otp.post(
        "/admin/risk/risklimit/add/",
        {"name": "max_order_quantity", "target": "btc-usdt", "value": "0.3", "note": "desk request"},
    )
    assert response.status_code == 302, response.content[:2000]
    row = RiskLimit.objects.get()
    assert (row.target, row.value) == ("BTC-USDT", D("0.3"))
    from trading.models import AuditRecord

    record = AuditRecord.objects.filter(action="risk.limit_created").get()
    assert record.data["value"] == "0.30000000" or D(record.data["value"]) == D("0.3")
    refused(post(client_for(alice), side="buy", quantity="0.31", price="65000.00"), 422, "risk_limit")


def test_options_limits_through_the_counter(listed):
    user = trader()
    series = pick_series("BTC", "C")
    limit_set("max_series_contracts", "1", target="BTC")
    client = client_for(user)
    before = written()
    response = client.post(
        "/api/v1/options/orders",
        {"series": series.symbol, "side": "buy", "contracts": "1.01", "limit_price_usdt": "999999"},
        format="json",
    )
    refused(response, 422, "position_limit", "max_series_contracts")
    # the quote is refused the same way: nobody could trade it
    response = client.post(
        "/api/v1/options/quotes", {"series": series.symbol, "side": "buy", "contracts": "1.01"}, format="json"
    )
    refused(response, 422, "position_limit", "max_series_contracts")
    assert written() == before


def test_the_daily_withdrawal_limit_comes_from_risk(db):
    from ledger.services import withdrawal_create
    from trading.errors import DomainError

    user = trader(usdt="500")
    limit_set("daily_withdrawal", "100", target="USDT", user=user)
    with pytest.raises(DomainError) as refusal:
        withdrawal_create(user=user, asset="USDT", amount=D("100.01"), address="0x" + "a" * 40)
    assert (refusal.value.code, refusal.value.fields["limit"]) == ("limit_exceeded", ["daily_withdrawal"])
    withdrawal_create(user=user, asset="USDT", amount=D("100"), address="0x" + "a" * 40)


def test_the_trader_sees_every_limit_and_its_usage(alice):
    limit_set("max_open_orders", 4)
    client = client_for(alice)
    assert post(client, side="buy", quantity="0.01", price="60000.00").status_code == 201
    body = client.get("/api/v1/risk/limits").json()
    assert body["trading_state"] == "active"
    lines = {(line["name"], line["scope"]): line for line in body["limits"]}
    assert lines[("max_open_orders", "account")]["limit"] == "4"
    assert lines[("max_open_orders", "account")]["used"] == "1"
    assert lines[("max_open_orders", "account")]["used_percent"] == "25"
    assert lines[("max_position", "BTC")]["used"] == "10"  # alice's BTC
    assert lines[("max_order_quantity", "BTC-USDT")]["used"] is None
    assert lines[("min_notional", "ETH-USDT")]["limit"]
    assert lines[("daily_withdrawal", "USDT")]["limit"] == "0"  # tier 0
    assert {line["name"] for line in body["limits"]} >= {
        "buy_band_above",
        "sell_band_below",
        "max_notional",
        "max_market_quantity",
        "order_rate",
        "order_burst",
        "max_series_contracts",
        "max_option_premium",
    }
