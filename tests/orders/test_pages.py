"""The trading pages are rendered by the orders app: the market page (chart, book and trades
for everyone; the desk for a signed-in trader) and the options page."""

import pytest
from django.test import Client

from tests.orders.conftest import list_series

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_market_page_shows_the_desk_only_to_a_signed_in_trader(signed_in):
    list_series()
    anonymous = Client().get("/markets/BTC-USDT/")
    assert anonymous.status_code == 200 and b'id="last-price"' in anonymous.content
    assert b'id="spot-ticket"' not in anonymous.content
    page = signed_in.get("/markets/btc-usdt/")
    assert page.status_code == 200 and b'id="spot-ticket"' in page.content
    assert Client().get("/markets/NOPE-USDT/").status_code == 404


def test_the_options_page_shows_the_ticket_to_a_signed_in_trader(signed_in):
    list_series()
    assert b'id="options-trading"' not in Client().get("/options/").content
    page = signed_in.get("/options/")
    assert page.status_code == 200 and b'id="options-trading"' in page.content
