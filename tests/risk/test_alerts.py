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
