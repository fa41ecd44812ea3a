"""POST/GET/DELETE /api/v1/alerts: validation, the limit per trader, others' alerts are 404."""

import pytest

from marketdata.services import instruments_sync
from notifications.models import PriceAlert, PriceAlertStatus
from tests.accounts.helpers import assert_error
from tests.orders.conftest import INDEX, print_index

pytestmark = pytest.mark.django_db

ALERTS = "/api/v1/alerts"
FIELDS = {
    "id",
    "symbol",
    "condition",
    "value",
    "window",
    "frequency",
    "status",
    "fire_count",
    "last_fired_at",
    "last_fired_price",
    "created_at",
}


@pytest.fixture(autouse=True)
def markets(db):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


def body(**overrides):
    payload = {"symbol": "BTC-USDT", "condition": "price_above", "value": "70000", "frequency": "once"}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def test_create_answers_201_with_the_alert_active(auth_api, user):
    response = auth_api.post(ALERTS, body(), format="json")
    assert response.status_code == 201, response.content
    alert = response.json()
    assert set(alert) == FIELDS
    assert alert["status"] == "active"
    assert alert["symbol"] == "BTC-USDT" and alert["value"] == "70000" and alert["window"] is None
    stored = PriceAlert.objects.get(pk=alert["id"])
    assert stored.user == user and stored.status == PriceAlertStatus.ACTIVE


def test_index_and_change_alerts(auth_api):
    index = auth_api.post(ALERTS, body(symbol="index:ETH", condition="price_below", value="3000.5"), format="json")
    assert index.status_code == 201, index.content
    change = auth_api.post(
        ALERTS, body(condition="change_pct", value="-2.5", window="1h", frequency="every_time"), format="json"
    )
    assert change.status_code == 201, change.content
    assert change.json()["window"] == "1h" and change.json()["value"] == "-2.5"
    listed = auth_api.get(ALERTS).json()
    assert [row["id"] for row in listed["results"]] == [change.json()["id"], index.json()["id"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"symbol": "DOGE-USDT"}, "symbol"),
        ({"symbol": "index:DOGE"}, "symbol"),
        ({"condition": "price_near"}, "condition"),
        ({"frequency": "sometimes"}, "frequency"),
        ({"value": "70000.005"}, "value"),  # off the 0.01 tick
        ({"value": "-1"}, "value"),
        ({"value": 70000.5}, "value"),  # a float, not a decimal string
        ({"value": "abc"}, "value"),
        ({"window": "1h"}, "window"),  # a price alert has no window
        ({"condition": "change_pct", "value": "5"}, "window"),
        ({"condition": "change_pct", "value": "0", "window": "5m"}, "value"),
        ({"condition": "change_pct", "value": "1000.01", "window": "5m"}, "value"),
        ({"condition": "change_pct", "value": "1.001", "window": "5m"}, "value"),
        ({"condition": "change_pct", "value": "5", "window": "2d"}, "window"),
    ],
)
def test_bad_input_names_its_field_and_writes_nothing(auth_api, overrides, field):
    response = auth_api.post(ALERTS, body(**overrides), format="json")
    assert_error(response, 400, "validation_error", field=field)
    assert PriceAlert.objects.count() == 0


def test_at_most_n_active_alerts_per_trader(auth_api, api, other_user, settings):
    settings.PRICE_ALERTS_MAX_ACTIVE = 2
    first = auth_api.post(ALERTS, body(), format="json").json()
    auth_api.post(ALERTS, body(value="71000"), format="json")
    refused = auth_api.post(ALERTS, body(value="72000"), format="json")
    assert_error(refused, 409, "alert_limit_reached")
    assert PriceAlert.objects.count() == 2
    # another trader has their own allowance
    api.force_authenticate(other_user)
    assert api.post(ALERTS, body(), format="json").status_code == 201
    # a deleted (or triggered) alert frees its place
    assert auth_api.delete(f"{ALERTS}/{first['id']}").status_code == 204
    assert auth_api.post(ALERTS, body(value="72000"), format="json").status_code == 201
    PriceAlert.objects.filter(user__in=[other_user]).update(status=PriceAlertStatus.TRIGGERED)
    assert api.post(ALERTS, body(), format="json").status_code == 201


def test_delete_removes_it_from_the_list(auth_api):
    alert = auth_api.post(ALERTS, body(), format="json").json()
    assert auth_api.delete(f"{ALERTS}/{alert['id']}").status_code == 204
    assert auth_api.get(ALERTS).json()["count"] == 0
    assert PriceAlert.objects.get(pk=alert["id"]).status == PriceAlertStatus.DELETED
    assert_error(auth_api.delete(f"{ALERTS}/{alert['id']}"), 404, "not_found")


def test_another_traders_alert_is_404_and_not_listed(auth_api, api, other_user):
    api.force_authenticate(other_user)
    theirs = api.post(ALERTS, body(), format="json").json()
    assert_error(auth_api.delete(f"{ALERTS}/{theirs['id']}"), 404, "not_found")
    assert auth_api.get(ALERTS).json()["count"] == 0
    assert PriceAlert.objects.get(pk=theirs["id"]).status == PriceAlertStatus.ACTIVE


def test_alerts_need_a_signed_in_trader(api):
    assert api.post(ALERTS, body(), format="json").status_code == 401
    assert api.get(ALERTS).status_code == 401
