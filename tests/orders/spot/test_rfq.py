"""RFQ: a firm quote from the market maker priced off the aggregated book, accepted at exactly
that price in one ledger transaction; expiry, reuse, replay, another trader's quote, and a
trader who cannot pay."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from ledger.models import Transfer
from orders.models import RfqQuote
from orders.spot.routing_selectors import route_sources
from tests.factories import UserFactory

from .conftest import available, client_for, funded_trader
from .routing_helpers import venues

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def rfq(settings, markets):
    settings.SPOT_VENUES = venues()
    settings.RFQ_SPREAD_BPS = "10"
    settings.RFQ_TTL_SECONDS = 5
    maker = funded_trader(usdt="1000000", btc="50")
    maker.email = django_settings.MARKET_MAKER_EMAIL
    maker.save(update_fields=["email"])
    return maker


def ask(user, **data):
    return client_for(user).post(
        "/api/v1/rfq", {"symbol": "BTC-USDT", "side": "buy", "quantity": "1", **data}, format="json"
    )


def test_a_quote_is_the_aggregated_vwap_plus_the_spread_and_accepting_trades_at_exactly_it(rfq):
    trader = funded_trader()
    response = ask(trader)
    assert response.status_code == 201, response.content
    quote = response.json()
    assert set(quote) >= {"id", "symbol", "side", "quantity", "price", "expires_at"}
    assert quote["quote_id"] == quote["id"]  # the name option quotes use, too
    sources, _ = route_sources(symbol="BTC-USDT", depth=20)
    levels = sorted((p, q) for s in sources for p, q in s.asks)
    left, cost = D("1"), D(0)
    for price, qty in levels:
        take = min(left, qty)
        cost, left = cost + price * take, left - take
        if not left:
            break
    expected = (cost * D("1.001") / D("0.01")).to_integral_value(ROUND_CEILING) * D("0.01")
    assert D(quote["price"]) == expected
    expires = datetime.fromisoformat(quote["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=4) < expires - timezone.now() <= timedelta(seconds=5)

    usdt, btc = available(trader, "USDT"), available(trader, "BTC")
    mm_usdt, mm_btc = available(rfq, "USDT"), available(rfq, "BTC")
    accepted = client_for(trader).post(f"/api/v1/rfq/{quote['id']}/accept", HTTP_IDEMPOTENCY_KEY="k-1")
    assert accepted.status_code == 200, accepted.content
    amount = expected  # 1 BTC
    assert accepted.json()["status"] == "accepted" and D(accepted.json()["quote_amount"]) == amount
    assert available(trader, "USDT") == usdt - amount and available(trader, "BTC") == btc + 1
    assert available(rfq, "USDT") == mm_usdt + amount and available(rfq, "BTC") == mm_btc - 1
    assert Transfer.objects.filter(pk__in=[f"rfq:{quote['id']}:quote", f"rfq:{quote['id']}:base"]).count() == 2

    replay = client_for(trader).post(f"/api/v1/rfq/{quote['id']}/accept", HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true" and replay.json() == accepted.json()
    reused = client_for(trader).post(f"/api/v1/rfq/{quote['id']}/accept")
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "quote_used"
    assert available(trader, "BTC") == btc + 1  # once


def test_a_sell_quote_is_below_the_bids_vwap(rfq):
    trader = funded_trader()
    quote = ask(trader, side="sell", quantity="0.5").json()
    sources, _ = route_sources(symbol="BTC-USDT", depth=20)
    best_bid = max(p for s in sources for p, _ in s.bids)
    assert D(quote["price"]) < best_bid
    assert client_for(trader).post(f"/api/v1/rfq/{quote['id']}/accept").status_code == 200
    assert available(trader, "BTC") == D("9.5")


def test_an_expired_quote_is_refused_and_nothing_moves(rfq, settings):
    settings.RFQ_TTL_SECONDS = 0
    trader = funded_trader()
    quote = ask(trader).json()
    response = client_for(trader).post(f"/api/v1/rfq/{quote['id']}/accept")
    assert response.status_code == 409 and response.json()["error"]["code"] == "quote_expired"
    assert available(trader, "BTC") == D("10") and not Transfer.objects.filter(pk__startswith="rfq:").exists()


def test_another_traders_quote_is_not_found(rfq):
    owner, intruder = funded_trader(), funded_trader()
    quote = ask(owner).json()
    response = client_for(intruder).post(f"/api/v1/rfq/{quote['id']}/accept")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert quote["id"] not in response.json()["error"]["message"]
    assert RfqQuote.objects.get(pk=quote["id"]).accepted_at is None
    assert client_for(intruder).post("/api/v1/rfq/not-a-uuid/accept").status_code == 404


def test_a_trader_who_cannot_pay_gets_insufficient_funds_and_nothing_is_written(rfq):
    poor = funded_trader(usdt="100", btc="0")
    quote = ask(poor).json()
    response = client_for(poor).post(f"/api/v1/rfq/{quote['id']}/accept")
    assert response.status_code == 409 and response.json()["error"]["code"] == "insufficient_funds"
    assert RfqQuote.objects.get(pk=quote["id"]).accepted_at is None
    assert not Transfer.objects.filter(pk__startswith="rfq:").exists() and available(poor, "USDT") == D("100")


def test_bad_requests_are_4xx(rfq):
    trader = UserFactory()
    assert ask(trader, quantity="0.000001").status_code == 400  # not a whole lot
    assert ask(trader, side="hold").status_code == 400
    assert ask(trader, symbol="NOPE-USDT").status_code == 404
    too_big = ask(trader, quantity="1000")
    assert too_big.status_code == 409 and too_big.json()["error"]["code"] == "insufficient_liquidity"
