"""A trader's history through every path the platform has, for the statement and export tests:
deposits, spot fills on the book as maker and taker, a smart order split between the book and
an outside venue, an RFQ block, a withdrawal with its fee, and an option bought and partly
sold. Made with the services themselves (in a test with real commits: the venue children run
as their orders commit)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings as django_settings

from accounts.models import KycProfile, KycStatus
from ledger.services import withdrawal_approve, withdrawal_create
from orders.options.services import options_order_place
from orders.spot.services import order_request, spot_order_place
from orders.spot.services.routing import smart_order_refresh
from tests.orders.conftest import pick_series
from tests.orders.spot.conftest import Engine, client_for, funded_trader
from tests.orders.spot.routing_helpers import venues
from tests.portfolio.report_helpers import ETH_ADDRESS

D = Decimal


def place(user, **data):
    data.setdefault("symbol", "BTC-USDT")
    order, _ = spot_order_place(user=user, request=order_request(**data))
    return order


def build(settings) -> dict:
    """Needs the ``markets`` (listed pairs and series at a fresh index) and ``eager_tasks``
    fixtures, in a ``transaction=True`` test."""
    settings.INDEX_MAX_AGE_SECONDS = 3600  # the index printed at the start stays usable however slow the build
    settings.SPOT_VENUES = venues()
    settings.SMART_ORDER_WAIT_SECONDS = 0
    settings.RFQ_SPREAD_BPS = "10"
    settings.RFQ_TTL_SECONDS = 5
    maker = funded_trader(usdt="1000000", btc="50")
    maker.email = django_settings.MARKET_MAKER_EMAIL
    maker.save(update_fields=["email"])
    alice, bob = funded_trader(), funded_trader(usdt="300000", eth="3")
    for user in (alice, bob):
        KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    engine = Engine("BTC-USDT")

    # on the book: alice rests a sell, bob takes part of it (bob taker, alice maker)
    place(alice, side="sell", type="limit", price="65000.00", quantity="0.5")
    engine.run()
    place(bob, side="buy", type="limit", price="65100.00", quantity="0.2")
    engine.run()
    # bob sells back to a resting bid of alice's (bob taker on the sell side)
    place(alice, side="buy", type="limit", price="64900.00", quantity="0.1")
    engine.run()
    place(bob, side="sell", type="limit", price="64900.00", quantity="0.1")
    engine.run()

    # smart: the rest of alice's 65000 offer on the book, the remainder at the venue
    parent = place(bob, side="buy", type="limit", time_in_force="IOC", price="65200.00", quantity="1", route="smart")
    engine.run()
    smart_order_refresh(parent_id=parent.pk)

    # an RFQ block bought from the market maker
    quote = client_for(bob).post("/api/v1/rfq", {"symbol": "BTC-USDT", "side": "buy", "quantity": "0.5"}, format="json")
    assert quote.status_code == 201, quote.content
    accepted = client_for(bob).post(f"/api/v1/rfq/{quote.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.content

    # a withdrawal of ETH, sent
    withdrawal = withdrawal_create(user=bob, asset="ETH", amount=D("1.5"), address=ETH_ADDRESS)
    withdrawal_approve(withdrawal_id=withdrawal.pk, actor=None)

    # an option bought, part of it sold back
    series = pick_series("BTC", "C")
    options_order_place(user=bob, series=series.symbol, side="buy", contracts="0.5", limit_price_usdt="999999")
    options_order_place(user=bob, series=series.symbol, side="sell", contracts="0.2", limit_price_usdt="0.01")
    return {"alice": alice, "bob": bob, "maker": maker, "engine": engine, "series": series, "parent": parent}
