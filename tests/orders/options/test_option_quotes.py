"""POST /api/v1/options/quotes: the counter's price is the chain's (mark from the smile, ask
to buy, bid to sell), firm for OPTION_QUOTE_TTL_SECONDS, stored; and every refusal."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.models import Instrument
from marketdata.options import chain, spread_params
from marketdata.pricing import black76_price, black76_valuation, default_smile, year_fraction
from marketdata.pricing.smile import DEFAULT_ATM_VOL
from marketdata.pricing.spread import half_spread
from orders.models import OptionQuote
from orders.options.services import options_quote
from tests.accounts.helpers import assert_error

from ..conftest import INDEX, client_for, pick_series, print_index, trader

pytestmark = pytest.mark.django_db

URL = "/api/v1/options/quotes"
QUOTE_FIELDS = {
    "quote_id",
    "series",
    "side",
    "contracts",
    "price_usdt",
    "total_usdt",
    "index_price",
    "iv",
    "expires_at",
}
DECIMAL = re.compile(r"^\d+(\.\d+)?$")


def chain_leg(series: Instrument, *, now: datetime) -> dict:
    body = chain(underlying=series.base, expiry=series.expiry, now=now)
    [block] = body["expiries"]
    [row] = [row for row in block["rows"] if Decimal(row["strike"]) == series.strike]
    return row["call" if series.option_type == "C" else "put"]


def test_quote_answers_the_api_md_shape_with_the_chain_ask(funded_api, btc_call, settings):
    before = timezone.now()
    response = funded_api.post(URL, {"series": btc_call.symbol, "side": "buy", "contracts": "0.5"}, format="json")
    assert response.status_code == 201, response.content[:500]
    body = response.json()
    assert set(body) >= QUOTE_FIELDS, body
    for field in ("contracts", "price_usdt", "total_usdt", "index_price", "iv"):
        assert isinstance(body[field], str) and DECIMAL.match(body[field]), (field, body[field])
    assert (body["series"], body["side"], body["contracts"]) == (btc_call.symbol, "buy", "0.50")
    assert Decimal(body["index_price"]) == INDEX["BTC"]
    price, total = Decimal(body["price_usdt"]), Decimal(body["total_usdt"])
    assert total == price * Decimal("0.5")
    # the chain's ask for this series (the API calls happen milliseconds apart: a cent of theta at most)
    leg = chain_leg(btc_call, now=timezone.now())
    assert abs(price - Decimal(leg["ask_usdt"])) <= Decimal("0.01"), (price, leg)
    assert abs(Decimal(body["iv"]) - Decimal(leg["iv"])) <= Decimal("0.0001")
    # firm for the configured time
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    ttl = timedelta(seconds=settings.OPTION_QUOTE_TTL_SECONDS)
    assert before + ttl <= expires <= timezone.now() + ttl
    # stored, so another web process can honour it
    stored = OptionQuote.objects.get(pk=body["quote_id"])
    assert body["id"] == body["quote_id"]  # the name RFQ quotes use, too
    assert (stored.user_id, stored.series, stored.side, stored.price_usdt, stored.total_usdt) == (
        funded_api.user.pk,
        btc_call.symbol,
        "buy",
        price,
        total,
    )


@pytest.mark.parametrize(
    "underlying,option_type,offset", [("BTC", "C", 0), ("BTC", "P", -2), ("ETH", "C", 3), ("ETH", "P", 0)]
)
def test_buy_pays_mark_plus_spread_and_sell_receives_mark_minus_spread(listed, underlying, option_type, offset):
    """At one instant the quote equals the chain's numbers, which are Black-76 at the smile's
    vol with the counter's spread around the mark."""
    series = pick_series(underlying, option_type, offset=offset)
    user = trader()
    from orders.options.services import options_order_place

    options_order_place(user=user, series=series.symbol, side="buy", contracts="1", limit_price_usdt="1000000")
    now = timezone.now()
    leg = chain_leg(series, now=now)
    buy = options_quote(user=user, series=series.symbol, side="buy", contracts="0.3", now=now)
    sell = options_quote(user=user, series=series.symbol, side="sell", contracts="0.3", now=now)
    assert buy.price_usdt == Decimal(leg["ask_usdt"]) and sell.price_usdt == Decimal(leg["bid_usdt"])
    assert buy.mark_usdt == sell.mark_usdt == Decimal(leg["mark_usdt"])
    assert f"{buy.iv:f}" == leg["iv"]
    assert buy.total_usdt == buy.price_usdt * Decimal("0.3") and sell.total_usdt == sell.price_usdt * Decimal("0.3")
    # the mark is Black-76 on the index at the smile's vol, the spread the configured one
    years = year_fraction(now, series.expiry)
    vol = default_smile(DEFAULT_ATM_VOL[underlying], years).vol(float(series.strike), float(INDEX[underlying]))
    kind = "call" if option_type == "C" else "put"
    exact = black76_price(kind, float(INDEX[underlying]), float(series.strike), years, vol)
    assert abs(float(buy.mark_usdt) - exact) <= 0.005 + 1e-9
    # the half-spread is the vega model's (pricing.spread) at this series' greeks
    valued = black76_valuation(kind, float(INDEX[underlying]), float(series.strike), years, vol)
    half = half_spread(
        price=exact,
        vega=valued.vega,
        delta=valued.delta,
        forward=float(INDEX[underlying]),
        days=years * 365,
        params=spread_params(underlying),
    )
    assert abs((buy.price_usdt - buy.mark_usdt) - max(Decimal(repr(float(half))), Decimal("0.01"))) <= Decimal("0.01")
    assert buy.price_usdt > buy.mark_usdt > sell.price_usdt
    # the stored spread is the ask's half-spread as a share of the mark
    assert buy.index_price == INDEX[underlying] and Decimal(buy.spread) == (
        (buy.price_usdt - buy.mark_usdt) / buy.mark_usdt
    ).quantize(Decimal("0.00000001"))


def test_a_near_expiry_series_carries_a_wider_spread(listed):
    """At the money the half-spread is about the same share of the premium at any expiry
    (vega and premium both grow with the square root of time), and wider in the last week."""
    user = trader()
    now = timezone.now()
    near = pick_series("BTC", "C", min_days=0.05)
    far = pick_series("BTC", "C", min_days=60)
    near_quote = options_quote(user=user, series=near.symbol, side="buy", contracts="1", now=now)
    far_quote = options_quote(user=user, series=far.symbol, side="buy", contracts="1", now=now)
    assert near.expiry - now < timedelta(days=7)
    assert near_quote.spread > far_quote.spread
    # a few percent of the mark, not the 3 % (6 % in the last day) of a flat spread
    assert Decimal("0.005") < far_quote.spread < Decimal("0.025"), far_quote.spread
    assert near_quote.spread < Decimal("0.04"), near_quote.spread


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"side": "buy", "contracts": "1"}, "series"),
        ({"series": "X", "side": "hold", "contracts": "1"}, "side"),
        ({"series": "X", "side": "buy"}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": 0.5}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": "0.005"}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": "-1"}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": "0"}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": "abc"}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": "NaN"}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": "1e30"}, "contracts"),
        ({"series": "X", "side": "buy", "contracts": ["1"]}, "contracts"),
    ],
)
def test_bad_input_is_a_400_validation_error(funded_api, btc_call, payload, field):
    payload = {key: (btc_call.symbol if value == "X" else value) for key, value in payload.items()}
    assert_error(funded_api.post(URL, payload, format="json"), 400, "validation_error", field=field)
    assert not OptionQuote.objects.exists()


def test_unknown_series_is_404(funded_api, listed):
    for series in ("BTC-20991231-100000-C", "BTC-USDT", "nonsense"):
        assert_error(
            funded_api.post(URL, {"series": series, "side": "buy", "contracts": "1"}, format="json"), 404, "not_found"
        )


def test_an_expired_or_expiring_series_is_refused(funded_api, btc_call, settings):
    payload = {"series": btc_call.symbol, "side": "buy", "contracts": "1"}
    Instrument.objects.filter(pk=btc_call.pk).update(active=False)
    assert_error(funded_api.post(URL, payload, format="json"), 409, "series_expired")
    Instrument.objects.filter(pk=btc_call.pk).update(active=True, expiry=timezone.now() - timedelta(minutes=1))
    assert_error(funded_api.post(URL, payload, format="json"), 409, "series_expired")
    # inside the cut-off before expiry
    Instrument.objects.filter(pk=btc_call.pk).update(
        expiry=timezone.now() + timedelta(seconds=settings.OPTION_TRADING_CUTOFF_SECONDS / 2)
    )
    assert_error(funded_api.post(URL, payload, format="json"), 409, "series_expired")
    Instrument.objects.filter(pk=btc_call.pk).update(expiry=timezone.now() + timedelta(hours=2))
    assert funded_api.post(URL, payload, format="json").status_code == 201


def test_a_stale_index_is_503(funded_api, btc_call):
    print_index("BTC", None, stale=True)
    assert_error(
        funded_api.post(URL, {"series": btc_call.symbol, "side": "buy", "contracts": "1"}, format="json"),
        503,
        "index_stale",
    )
    eth = pick_series("ETH", "C")
    assert (
        funded_api.post(URL, {"series": eth.symbol, "side": "buy", "contracts": "1"}, format="json").status_code == 201
    )


def test_a_sell_quote_needs_a_position(funded_api, btc_call):
    error = assert_error(
        funded_api.post(URL, {"series": btc_call.symbol, "side": "sell", "contracts": "1"}, format="json"),
        409,
        "insufficient_position",
    )
    assert "contracts" in error["fields"]


def test_quotes_need_authentication(api, btc_call):
    response = api.post(URL, {"series": btc_call.symbol, "side": "buy", "contracts": "1"}, format="json")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not OptionQuote.objects.exists()


def test_lowercase_series_is_accepted(btc_call):
    user = trader()
    response = client_for(user).post(
        URL, {"series": btc_call.symbol.lower(), "side": "buy", "contracts": "2"}, format="json"
    )
    assert response.status_code == 201 and response.json()["series"] == btc_call.symbol


def test_unused_quotes_are_purged_a_day_after_they_expire(btc_call):
    from orders.options.services import option_quotes_purge, options_order_place
    from orders.tasks import option_quotes_purge as purge_task

    user = trader()
    now = timezone.now()
    options_quote(user=user, series=btc_call.symbol, side="buy", contracts="1", now=now - timedelta(days=2))
    used = options_quote(user=user, series=btc_call.symbol, side="buy", contracts="1")
    options_order_place(user=user, quote_id=str(used.pk))
    OptionQuote.objects.filter(pk=used.pk).update(expires_at=now - timedelta(days=2))
    fresh = options_quote(user=user, series=btc_call.symbol, side="buy", contracts="1", now=now - timedelta(hours=1))
    assert option_quotes_purge(now=now) == 1
    assert set(OptionQuote.objects.values_list("pk", flat=True)) == {used.pk, fresh.pk}
    assert purge_task.apply().get() == 0
