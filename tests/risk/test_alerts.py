"""Risk alerts: once per crossing of 80 % and 100 % of a limit (to the trader and to staff),
and on every trading-state change; an order that stays above a threshold says nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from notifications.models import Notification
from risk import alerts, services
from tests.factories import UserFactory
from tests.orders.conftest import client_for
from tests.orders.spot.conftest import funded_trader
from tests.risk.helpers import limit_set

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "before, after, threshold",
    [
        ("0", "7.99", None),
        ("7.99", "8", 80),
        ("8", "9", None),  # already past 80 %: no second alert
        ("9", "10", 100),
        ("7", "10", 100),  # straight past both: the higher one
        ("10", "9", None),  # falling: nothing
    ],
)
def test_crossings(before, after, threshold):
    assert alerts.crossed(D("10"), D(before), D(after)) == threshold
    assert alerts.crossed(None, D(before), D(after)) is None


def risk_alerts(user) -> list[str]:
    return list(
        Notification.objects.filter(user=user, kind="risk_alert").order_by("id").values_list("title", flat=True)
    )


def test_open_orders_alert_at_80_and_100_percent_once_each(markets):
    staff = UserFactory(is_staff=True)
    alice = funded_trader()
    limit_set("max_open_orders", 5)
    client = client_for(alice)
    for n in range(1, 6):
        response = client.post(
            "/api/v1/orders",
            {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.01", "price": "60000.00"},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert len(risk_alerts(alice)) == {1: 0, 2: 0, 3: 0, 4: 1, 5: 2}[n]
    titles = risk_alerts(alice)
    assert "80%" in titles[0] and "open spot orders" in titles[0]
    assert "100%" in titles[1]
    assert len(risk_alerts(staff)) == 2 and alice.email in risk_alerts(staff)[0]
    # a refused order alerts nobody
    response = client.post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.01", "price": "60000.00"},
        format="json",
    )
    assert response.status_code == 409
    assert len(risk_alerts(alice)) == 2


def test_position_alert_when_a_buy_brings_the_holding_past_80_percent(markets):
    alice = funded_trader(usdt="100000", btc="1")
    limit_set("max_position", "2", target="BTC")
    client = client_for(alice)
    order = {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "60000.00"}
    assert client.post("/api/v1/orders", {**order, "quantity": "0.5"}, format="json").status_code == 201
    assert risk_alerts(alice) == []  # 1 held + 0.5 in an open buy: 75 % of 2
    assert client.post("/api/v1/orders", {**order, "quantity": "0.1"}, format="json").status_code == 201
    [title] = risk_alerts(alice)  # 1.6 of 2
    assert "80%" in title and "(BTC)" in title
    # the open buys count: 0.41 more would make 2.01
    response = client.post("/api/v1/orders", {**order, "quantity": "0.41"}, format="json")
    assert response.status_code == 422 and response.json()["error"]["fields"]["quantity"] == ["At most 0.4 more."]


def test_state_changes_alert_staff_and_the_trader_concerned(markets):
    staff = UserFactory(is_staff=True)
    alice = funded_trader()
    services.trading_state_set(scope="user", target=str(alice.pk), state="halted", reason="review", actor=staff)
    assert risk_alerts(alice) == ["Trading on your account is halted"]
    assert risk_alerts(staff) == [f"Trading halted user {alice.pk}"]
    services.trading_state_set(scope="platform", state="reduce_only", reason="incident", actor=staff)
    assert risk_alerts(staff)[-1] == "Trading reduce-only platform-wide"
    assert len(risk_alerts(alice)) == 1  # a platform change is for staff
    # setting the same state again changes nothing and says nothing
    services.trading_state_set(scope="platform", state="reduce_only", reason="still", actor=staff)
    assert len(risk_alerts(staff)) == 2


# --- exactly once -------------------------------------------------------------------------------


def keys(user) -> list[str]:
    return list(
        Notification.objects.filter(user=user, kind="risk_alert").order_by("id").values_list("dedupe_key", flat=True)
    )


def test_a_crossing_told_again_for_the_same_operation_is_one_message_each():
    staff = UserFactory(is_staff=True)
    alice = UserFactory()
    for _ in range(2):  # the same operation delivered twice
        assert (
            alerts.usage_alert(
                user=alice, name="max_open_orders", target="", limit=5, before=3, after=4, operation="spot_order:abc"
            )
            == 80
        )
    assert keys(alice) == [f"risk:max_open_orders:-:80:{alice.pk}:spot_order:abc"]
    assert keys(staff) == keys(alice)
    (note,) = Notification.objects.filter(user=alice, kind="risk_alert")
    assert note.data == {
        "limit": "max_open_orders",
        "target": "",
        "threshold": 80,
        "used": "4",
        "value": "5",
        "user_id": alice.pk,
    }
    # another operation crossing the same threshold later (usage fell back in between) is news
    alerts.usage_alert(user=alice, name="max_open_orders", target="", limit=5, before=3, after=4, operation="op2")
    assert len(keys(alice)) == 2 and len(keys(staff)) == 2


def test_an_order_replayed_with_its_client_order_id_alerts_once(markets):
    alice = funded_trader()
    limit_set("max_open_orders", 1)
    client = client_for(alice)
    body = {
        "symbol": "BTC-USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.01",
        "price": "60000.00",
        "client_order_id": "bot-1",
    }
    first = client.post("/api/v1/orders", body, format="json")
    again = client.post("/api/v1/orders", body, format="json")
    assert first.status_code == 201 and again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert keys(alice) == [f"risk:max_open_orders:-:100:{alice.pk}:spot_order:bot-1"]


def test_without_a_client_id_the_transaction_is_the_operation(markets):
    alice = funded_trader()
    limit_set("max_open_orders", 1)
    response = client_for(alice).post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.01", "price": "60000.00"},
        format="json",
    )
    assert response.status_code == 201
    (key,) = keys(alice)
    prefix = f"risk:max_open_orders:-:100:{alice.pk}:tx"
    assert key.startswith(prefix) and key[len(prefix) :].isdigit()


def test_a_state_change_is_one_message_per_person_even_told_twice(markets):
    staff, other_staff = UserFactory(is_staff=True), UserFactory(is_staff=True)
    alice = funded_trader()
    change = services.trading_state_set(
        scope="user", target=str(alice.pk), state="reduce_only", reason="margin call", actor=staff
    )
    (key,) = keys(alice)
    assert key.startswith("risk_state:")
    assert keys(staff) == keys(other_staff) == [key]
    # the same change delivered again (its audit record's number is its key): nothing new
    alerts.state_alert(change=change, user_id=alice.pk, change_id=key.split(":")[1])
    assert keys(alice) == keys(staff) == [key]
    note = Notification.objects.get(user=alice, kind="risk_alert")
    assert note.data["state"] == "reduce_only" and note.data["previous"] == "active"
    assert note.data["reason"] == "margin call"
