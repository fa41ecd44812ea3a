"""Where a trader lands after signing in: the trade page ("Trade" in the navigation), unless
``next`` names another page of the site."""

import pytest
from django.test import Client

from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def log_in(client, user, next_path=None):
    data = {"email": user.email, "password": DEFAULT_PASSWORD}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/login/", data)


def test_login_lands_on_the_trade_page_of_btc_usdt(markets):
    client = Client()
    response = log_in(client, UserFactory())
    assert (response.status_code, response["Location"]) == (302, "/trade/")
    response = client.get("/trade/")
    assert (response.status_code, response["Location"]) == (302, "/markets/BTC-USDT/")
    page = client.get("/markets/BTC-USDT/")
    assert page.status_code == 200
    assert b'href="/trade/" aria-current="page">Trade</a>' in page.content


def test_next_still_wins_and_an_outside_next_does_not(markets):
    assert log_in(Client(), UserFactory(), "/wallet/")["Location"] == "/wallet/"
    assert log_in(Client(), UserFactory(), "https://evil.example/")["Location"] == "/trade/"


def test_with_no_market_listed_yet_trade_is_the_markets_list(db):
    response = Client().get("/trade/")
    assert (response.status_code, response["Location"]) == (302, "/markets/")
