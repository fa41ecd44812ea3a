"""A trader with every kind of history, made through the platform's own entry paths: deposits,
fills on our book as taker and maker, a smart order split between our book and a venue, an
RFQ, an option bought and partly sold back, and a withdrawal paid out."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings as django_settings
from rest_framework.test import APIClient

from accounts.models import KycProfile, KycStatus
from ledger.models import Withdrawal
from ledger.selectors import balances_for
from ledger.services import deposit_credit, withdrawal_approve, withdrawal_create
from marketdata.services import instruments_sync
from tests.factories import UserFactory
from tests.orders.conftest import INDEX, pick_series, print_index
from tests.orders.spot.conftest import Engine
from tests.orders.spot.routing_helpers import venues

D = Decimal
BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def trader(**funds):
    user = UserFactory()
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    for asset, amount in funds.items():
        deposit_credit(user=user, asset=asset.upper(), amount=D(amount), txid=f"pf-{user.pk}-{asset}")
    return user


def order(client, **data) -> dict:
    body = {"symbol": "BTC-USDT", "type": "limit", **data}
    response = client.post("/api/v1/orders", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def markets(settings) -> None:
    settings.INDEX_MAX_AGE_SECONDS = 3600
    settings.SPOT_ORDER_WAIT_SECONDS = 0.01
    settings.SPOT_VENUES = venues()
    settings.SMART_ORDER_WAIT_SECONDS = 0
    settings.RFQ_TTL_SECONDS = 30
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


def build(settings, capture_on_commit) -> dict:
    """``capture_on_commit``: pytest-django's ``django_capture_on_commit_callbacks`` (the
    smart order's children run on its commit, as the worker would)."""
    markets(settings)
    maker = trader(usdt="1000000", btc="50")
    maker.email = django_settings.MARKET_MAKER_EMAIL
    maker.save(update_fields=["email"])
    alice = trader(usdt="100000", btc="1")
    bob = trader(usdt="1000000", btc="10", eth="10")
    a, b = client_for(alice), client_for(bob)
    engine = Engine("BTC-USDT")

    # alice buys as taker, then sells as maker, then buys in two fills of one order
    order(b, side="sell", quantity="0.5", price="65000")
    engine.run()
    order(a, side="buy", quantity="0.3", price="65000")
    engine.run()
    order(a, side="sell", quantity="0.2", price="66000")
    engine.run()
    order(b, side="buy", quantity="0.2", price="66000")
    engine.run()
    order(b, side="sell", quantity="0.1", price="64000")
    order(b, side="sell", quantity="0.1", price="64100")
    engine.run()
    order(a, side="buy", quantity="0.15", price="64100")
    engine.run()

    # a smart sell: part on our book (bob's bid, the best net of fees), part at a venue
    order(b, side="buy", quantity="0.1", price="65100")
    engine.run()
    with capture_on_commit(execute=True):
        smart = order(a, side="sell", type="market", quantity="0.3", route="smart")
    engine.run()

    # an RFQ buy
    quote = a.post("/api/v1/rfq", {"symbol": "BTC-USDT", "side": "buy", "quantity": "0.05"}, format="json")
    assert quote.status_code == 201, quote.content
    accepted = a.post(f"/api/v1/rfq/{quote.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.content

    # an option bought, then partly sold back
    series = pick_series("BTC", "C", min_days=3).symbol
    option_quote = a.post(
        "/api/v1/options/quotes", {"series": series, "side": "buy", "contracts": "0.5"}, format="json"
    )
    assert option_quote.status_code == 201, option_quote.content
    assert (
        a.post("/api/v1/options/orders", {"quote_id": option_quote.json()["quote_id"]}, format="json").status_code
        == 201
    )
    sold = a.post(
        "/api/v1/options/orders",
        {"series": series, "side": "sell", "contracts": "0.2", "limit_price_usdt": "0.01"},
        format="json",
    )
    assert sold.status_code == 201, sold.content

    # a withdrawal paid out
    withdrawal = withdrawal_create(user=alice, asset="BTC", amount=D("0.01"), address=BTC_ADDRESS)
    withdrawal_approve(withdrawal_id=withdrawal.pk, actor=None)
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == "approved"
    return {
        "alice": alice,
        "bob": bob,
        "maker": maker,
        "a": a,
        "b": b,
        "engine": engine,
        "series": series,
        "smart": smart,
    }


def ledger_totals(user) -> dict[str, Decimal]:
    return {balance.asset: balance.total for balance in balances_for(user=user)}
