"""The Portfolio page as the server renders it: signed-in only, in the navigation, with the
configuration its script reads (the page paints itself from the portfolio API, which
tests/browser/test_portfolio.py drives in a real browser)."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_signed_out_visitors_are_sent_to_log_in():
    response = Client().get("/portfolio/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/portfolio/"


def test_the_page_and_its_link_in_the_navigation(settings):
    client = Client()
    client.force_login(UserFactory())
    response = client.get("/portfolio/")
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<a class="nav-link" href="/portfolio/" aria-current="page">Portfolio</a>', html)
    script = re.search(r'<script id="portfolio-config" type="application/json">(.*?)</script>', html)
    config = json.loads(script.group(1))
    assert config["assets"] == ["USDT", "BTC", "ETH"]
    assert config["methods"] == ["fifo", "average"] and config["method"] == "fifo"
    assert config["tolerance"] == settings.PORTFOLIO_REBALANCE_TOLERANCE
    assert config["statement_start"].endswith("-01")
    for target in ("#assets", "#option-positions", "#allocation-chart", "#equity-chart", "#rebalance-form"):
        assert f'id="{target[1:]}"' in html
    # every other page links to it for a signed-in trader, and not for a visitor
    assert 'href="/portfolio/"' in client.get("/wallet/").content.decode()
    assert 'href="/portfolio/"' not in Client().get("/markets/").content.decode()
