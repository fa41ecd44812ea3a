"""The price alerts page (/alerts/): what it is drawn with (the trader's alerts, the symbols
an alert can watch), the bell of the navigation and of the market page, and the sign-in it
needs. The page's behaviour in a browser is tests/browser/test_price_alerts.py."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from notifications.alert_services import price_alert_create, price_alert_delete
from notifications.services import notification_create
from tests.orders.spot.conftest import markets  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

URL = "/alerts/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def config_of(response) -> dict:
    match = re.search(r'<script id="alerts-config" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "the page carries no alerts-config"
    return json.loads(match.group(1))


def test_the_page_is_drawn_with_the_traders_alerts_and_the_symbols(markets, user, other_user):  # noqa: F811
    mine = price_alert_create(user=user, symbol="BTC-USDT", condition="price_above", value="70000", frequency="once")
    move = price_alert_create(
        user=user, symbol="index:ETH", condition="change_pct", value="-5", window="1h", frequency="every_time"
    )
    gone = price_alert_create(user=user, symbol="ETH-USDT", condition="price_below", value="3000", frequency="once")
    price_alert_delete(user=user, alert_id=gone.pk)
    price_alert_create(user=other_user, symbol="BTC-USDT", condition="price_below", value="1", frequency="once")

    response = signed_in(user).get(URL)

    assert response.status_code == 200
    cfg = config_of(response)
    assert cfg["symbols"] == ["BTC-USDT", "ETH-USDT", "index:BTC", "index:ETH"]
    assert cfg["symbol"] == "BTC-USDT"
    assert cfg["ticks"] == {"BTC-USDT": "0.01", "ETH-USDT": "0.01", "index:BTC": "0.01", "index:ETH": "0.01"}
    assert cfg["conditions"] == ["price_above", "price_below", "change_pct"]
    assert cfg["windows"] == ["5m", "1h", "24h"]
    assert cfg["frequencies"] == ["once", "every_time", "once_per_minute"]
    assert [a["id"] for a in cfg["alerts"]] == [move.pk, mine.pk]  # newest first, deleted and others' left out
    assert cfg["alerts"][0] == {
        "id": move.pk,
        "symbol": "index:ETH",
        "condition": "change_pct",
        "value": "-5",
        "window": "1h",
        "frequency": "every_time",
        "status": "active",
        "fire_count": 0,
        "last_fired_at": None,
        "last_fired_price": None,
        "created_at": cfg["alerts"][0]["created_at"],
    }


def test_a_symbol_in_the_link_is_chosen_when_it_can_be_watched(markets, user):  # noqa: F811
    client = signed_in(user)
    assert config_of(client.get(URL, {"symbol": "index:BTC"}))["symbol"] == "index:BTC"
    assert config_of(client.get(URL, {"symbol": "DOGE-USDT"}))["symbol"] == "BTC-USDT"


def test_the_notifications_page_links_the_alerts(user):
    html = signed_in(user).get("/notifications/").content.decode()
    assert 'href="/alerts/"' in html


def test_the_navigation_bell_is_drawn_with_no_unread_too(user):
    client = signed_in(user)
    html = client.get("/notifications/").content.decode()
    # present but hidden at zero, so a live notification has a badge to count in
    assert re.search(r'<span class="nav-badge" data-unread aria-label="0 unread" hidden>0</span>', html)
    notification_create(user=user, kind="system", title="Hello")
    html = client.get("/notifications/").content.decode()
    assert re.search(r'<span class="nav-badge" data-unread aria-label="1 unread">1</span>', html)


def test_the_market_page_has_the_alert_bell_for_a_signed_in_trader(markets, user):  # noqa: F811
    html = signed_in(user).get("/markets/BTC-USDT/").content.decode()
    assert 'id="alert-bell"' in html and 'id="quick-alert"' in html
    anonymous = Client().get("/markets/BTC-USDT/").content.decode()
    assert 'id="alert-bell"' not in anonymous and 'id="last-price"' in anonymous


def test_the_page_needs_a_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]
