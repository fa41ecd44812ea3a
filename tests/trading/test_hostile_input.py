"""Hostile input answers 4xx in the API's error shape, never a 500, and writes nothing.

Numbers go through one strict parser (``trading.money.parse_decimal``); bodies and URLs
through ``trading.parsers``. The property tests throw generated strings and numbers at
every numeric field of every entry point; what is accepted must satisfy the engine's unit
rules, so no accepted order can stop a runner."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import AsyncClient, Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import KycProfile, KycStatus
from ledger.services import deposit_credit
from marketdata.models import Instrument
from orders.models import OptionQuote, RfqQuote, SpotOrder
from orders.spot.engine import Units
from tests.factories import UserFactory
from tests.orders.conftest import list_series, pick_series, print_index

D = Decimal
pytestmark = pytest.mark.django_db

HOSTILE_NUMBERS = [
    "1e-999999999",
    "1E+400",
    "1e19",
    "1e-9",
    "0E-8",
    "-0",
    "0",
    "-1",
    "+1",
    "1_000",
    "\uff11",
    "\u0663",
    "\u0661.\u0665",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "sNaN",
    " 1",
    "1 ",
    "1\x00",
    "0x10",
    "1e",
    ".5",
    "5.",
    "1.2.3",
    "",
    "9" * 80,
    "0." + "0" * 70 + "1",
    "1e99",
    1e400,
    float("nan"),
    10**40,
    -5,
    True,
    None,
    [],
    {},
]


def _hostile_strategy():
    return st.one_of(
        st.sampled_from(HOSTILE_NUMBERS),
        st.text(max_size=24),
        st.from_regex(r"[+-]?[0-9]{0,12}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,12})?", fullmatch=True),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(),
    )


def _bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}"}


@pytest.fixture
def trader(db):
    user = UserFactory()
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    for asset, amount in (("USDT", "1000000"), ("BTC", "10")):
        deposit_credit(user=user, asset=asset, amount=D(amount), txid=f"hostile-{asset}-{user.pk}")
    list_series()
    return user


@pytest.fixture
def client(trader):
    client = Client(**_bearer(trader))
    client.user = trader
    return client


def post(client, path: str, body) -> tuple[int, dict]:
    response = client.post(
        path, json.dumps(body) if not isinstance(body, (bytes, str)) else body, content_type="application/json"
    )
    return response.status_code, response.json() if response.content else {}


def assert_refused(status: int, body: dict, *, code: str = "validation_error", field: str | None = None, expect=400):
    assert status == expect, (status, body)
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if field is not None:
        assert field in body["error"]["fields"], body


# --- the defects as found --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, base",
    [
        ("display_quantity", {"type": "limit", "price": "65000.00", "quantity": "0.01"}),
        ("trail_amount", {"type": "trailing_stop", "quantity": "0.01"}),
        ("quantity", {"type": "limit", "price": "65000.00"}),
        ("price", {"type": "limit", "quantity": "0.01"}),
    ],
)
def test_an_underflowing_number_is_refused_at_entry(client, field, base):
    status, body = post(client, "/api/v1/orders", {"symbol": "BTC-USDT", "side": "buy", **base, field: "1e-999999999"})
    assert_refused(status, body, field=field)
    assert not SpotOrder.objects.exists()


def test_an_option_quote_and_an_rfq_for_an_underflowing_size_are_refused(client):
    series = pick_series("BTC").symbol
    status, body = post(
        client, "/api/v1/options/quotes", {"series": series, "side": "buy", "contracts": "1e-999999999"}
    )
    assert_refused(status, body, field="contracts")
    status, body = post(
        client,
        "/api/v1/options/orders",
        {"series": series, "side": "buy", "contracts": "1e-999999999", "limit_price_usdt": "100"},
    )
    assert_refused(status, body, field="contracts")
    status, body = post(client, "/api/v1/rfq", {"symbol": "BTC-USDT", "side": "buy", "quantity": "1e-999999999"})
    assert_refused(status, body, field="quantity")
    assert not OptionQuote.objects.exists() and not RfqQuote.objects.exists()


@pytest.mark.parametrize("text", ["\uff11", "\u0663", "1_000", "\u0661.5"])
def test_digits_other_than_ascii_and_underscores_are_not_numbers(client, text):
    status, body = post(
        client,
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "65000.00", "quantity": text},
    )
    assert_refused(status, body, field="quantity")
    status, body = post(client, "/api/v1/withdrawals", {"asset": "USDT", "amount": text, "address": "x", "otp": "1"})
    assert status == 400 or status in (401, 403), body  # refused before or at the 2FA gate; never accepted


def test_an_option_quote_beyond_the_position_limit_is_not_issued(client):
    series = pick_series("BTC").symbol
    status, body = post(client, "/api/v1/options/quotes", {"series": series, "side": "buy", "contracts": "1e19"})
    assert_refused(status, body, field="contracts")
    status, body = post(client, "/api/v1/options/quotes", {"series": series, "side": "buy", "contracts": "60"})
    assert_refused(status, body, code="position_limit", field="contracts", expect=422)
    assert not OptionQuote.objects.exists()


def test_a_deeply_nested_body_is_a_400_even_before_authentication():
    client = Client()
    for path in ("/api/v1/auth/token", "/api/v1/auth/register"):
        response = client.post(path, b"[" * 100_000, content_type="application/json")
        assert_refused(response.status_code, response.json(), field="body")
        nested = b"[" * 40 + b"]" * 40
        response = client.post(path, nested, content_type="application/json")
        assert_refused(response.status_code, response.json(), field="body")


def test_a_body_larger_than_the_limit_is_refused(client, settings):
    settings.API_MAX_BODY_BYTES = 1000
    status, body = post(client, "/api/v1/orders", {"symbol": "BTC-USDT", "note": "x" * 2000})
    assert_refused(status, body, field="body")


def test_json_constants_that_are_not_json_are_refused(client):
    status, body = post(client, "/api/v1/orders", b'{"symbol": "BTC-USDT", "quantity": NaN}')
    assert_refused(status, body, code="parse_error")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders?symbol=BTC%00USDT",
        "/api/v1/markets/BTC%00USDT/aggregated-book",
        "/api/v1/markets/BTC%00/ticker",
        "/api/v1/orders?sym%00bol=1",
        "/api/v1/markets/BTC%0AUSDT/orderbook",
        "/api/v1/orders/1%00",
    ],
)
def test_control_characters_in_a_path_or_query_are_refused(client, path):
    response = client.get(path)
    assert_refused(response.status_code, response.json())


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/v1/orders", {"symbol": "BTC\x00USDT", "side": "buy"}, "symbol"),
        ("/api/v1/rfq", {"symbol": "BTC\x00USDT", "side": "buy", "quantity": "1"}, "symbol"),
        ("/api/v1/orders", {"symbol": "BTC-USDT", "client_order_id": "a\x07b"}, "client_order_id"),
        ("/api/v1/options/quotes", {"series": "BTC\x1b[0m", "side": "buy", "contracts": "1"}, "series"),
        ("/api/v1/watchlist", {"symbol": "\ud800"}, "symbol"),
        ("/api/v1/orders", {"sym\x00bol": "BTC-USDT"}, "body"),
        ("/api/v1/orders", {"nested": {"deep": ["ok", "bad\x00"]}}, "nested.deep.1"),
    ],
)
def test_control_characters_and_lone_surrogates_in_a_body_are_refused(client, path, body, field):
    raw = json.dumps(body).encode()  # \u0000 and \ud800 travel as JSON escapes
    status, data = post(client, path, raw)
    assert_refused(status, data, field=field)


def test_a_nul_in_a_form_field_is_refused(client):
    body = b'--x\r\nContent-Disposition: form-data; name="full_name"\r\n\r\nab\x00c\r\n--x--\r\n'
    response = client.generic("POST", "/api/v1/kyc", body, content_type="multipart/form-data; boundary=x")
    assert_refused(response.status_code, response.json(), field="full_name")


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\x01"]
)
@pytest.mark.django_db(transaction=True)
def test_multipart_without_a_boundary_is_an_api_error_over_asgi(content_type):
    """Through the ASGI handler, as daphne serves it."""
    import asyncio

    token = _bearer(UserFactory())["HTTP_AUTHORIZATION"]

    async def send():
        return await AsyncClient().generic(
            "POST", "/api/v1/kyc", b"garbage", content_type=content_type, headers={"Authorization": token}
        )

    response = asyncio.run(send())
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("parse_error", "validation_error")


# --- properties --------------------------------------------------------------------------------

SPOT_FIELDS = {
    "quantity": {"type": "limit", "price": "65000.00"},
    "price": {"type": "limit", "quantity": "0.01"},
    "display_quantity": {"type": "limit", "price": "65000.00", "quantity": "0.01"},
    "stop_price": {"type": "stop_limit", "price": "65000.00", "quantity": "0.01"},
    "trail_amount": {"type": "trailing_stop", "quantity": "0.01"},
    "trail_percent": {"type": "trailing_stop", "quantity": "0.01"},
    "quote_quantity": {"type": "market"},
}
PROPERTY = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _engine_accepts(order: SpotOrder) -> None:
    """What the runner converts for the engine converts without error."""
    instrument = Instrument.objects.get(symbol=order.symbol)
    units = Units(instrument.tick_size.normalize(), instrument.lot_size.normalize())
    for name in ("quantity", "display_quantity"):
        if getattr(order, name) is not None:
            units.qty_to_lots(getattr(order, name))
    for name in ("price", "protect_price", "stop_price", "trail_amount"):
        if getattr(order, name) is not None:
            units.price_to_ticks(getattr(order, name))
    if order.trail_percent is not None:
        Units.percent_to_ppm(order.trail_percent)
    if order.quote_quantity is not None:
        units.quote_to_int(order.quote_quantity)
    if order.display_quantity is not None:
        assert order.display_quantity <= order.quantity


@PROPERTY
@given(field=st.sampled_from(sorted(SPOT_FIELDS)), value=_hostile_strategy(), side=st.sampled_from(["buy", "sell"]))
def test_spot_order_entry_answers_4xx_or_an_order_the_engine_can_take(client, field, value, side):
    print_index("BTC", D("65000.12"))
    body = {"symbol": "BTC-USDT", "side": side, **SPOT_FIELDS[field], field: value}
    status, data = post(client, "/api/v1/orders", body)
    assert status < 500, (status, data)
    if status in (200, 201):
        _engine_accepts(SpotOrder.objects.get(pk=data["id"]))
    else:
        assert 400 <= status < 500 and data["error"]["code"], data


@PROPERTY
@given(value=_hostile_strategy(), which=st.sampled_from(["quote", "order", "rfq", "withdrawal", "depth", "limit"]))
def test_every_other_numeric_input_answers_4xx_or_a_valid_result(client, value, which):
    print_index("BTC", D("65000.12"))
    if which == "quote":
        status, data = post(
            client, "/api/v1/options/quotes", {"series": pick_series("BTC").symbol, "side": "buy", "contracts": value}
        )
        if status == 201:
            assert D(data["contracts"]) > 0 and D(data["contracts"]) % D("0.01") == 0
    elif which == "order":
        status, data = post(
            client,
            "/api/v1/options/orders",
            {"series": pick_series("BTC").symbol, "side": "buy", "contracts": "0.01", "limit_price_usdt": value},
        )
    elif which == "rfq":
        status, data = post(client, "/api/v1/rfq", {"symbol": "BTC-USDT", "side": "buy", "quantity": value})
        if status == 201:
            assert D(data["quantity"]) > 0
    elif which == "withdrawal":
        status, data = post(
            client, "/api/v1/withdrawals", {"asset": "USDT", "amount": value, "address": "x", "otp": "1"}
        )
    else:
        path = {"depth": "/api/v1/markets/BTC-USDT/orderbook?depth=", "limit": "/api/v1/fills?limit="}[which]
        response = client.get(
            path + (str(value) if not isinstance(value, str) else value).replace("#", "%23").replace("&", "%26")
        )
        status, data = response.status_code, response.json()
    # 503 is a refusal too (no market maker quoting, a stale index), never a fault
    assert status < 500 or (status == 503 and data["error"]["code"] in ("rfq_unavailable", "index_stale")), (
        which,
        value,
        status,
        data,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_daphne_answers_malformed_multipart_and_nul_paths_in_the_api_shape(tmp_path):
    """Daphne's HTTP layer (Twisted) used to answer a multipart body without a boundary
    with a bare 400 and no body, before Django saw the request."""
    import os
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    from django.conf import settings

    from tests.processes import Child, free_port, test_database_url

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "0",
        "HTTPS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    daphne = Child(
        "daphne",
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "trading.asgi:application"],
        env,
        tmp_path,
    ).start()
    token = _bearer(UserFactory())["HTTP_AUTHORIZATION"]

    def send(path, body=None, content_type=None):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body else "GET")
        request.add_header("Authorization", token)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if send("/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        status, body = send("/api/v1/kyc", b"garbage", "multipart/form-data")
        assert status == 400 and json.loads(body)["error"]["code"] == "parse_error", body
        status, body = send("/api/v1/markets/BTC%00USDT/aggregated-book")
        assert status == 400 and json.loads(body)["error"]["fields"] == {"path": [ANY_TEXT]}, body
    finally:
        daphne.stop()


class _AnyText(str):
    def __eq__(self, other):
        return isinstance(other, str) and bool(other)

    __hash__ = str.__hash__


ANY_TEXT = _AnyText("any text")


@pytest.mark.parametrize(
    "path", ["/api/v1/markets/BTC-USDT/orderbook", "/api/v1/markets/BTC-USDT/trades", "/api/v1/markets/BTC-USDT/ticker"]
)
def test_market_reads_answer_503_not_500_while_redis_is_away(client, settings, path):
    """The engines' book snapshots live in Redis: while it is away these reads are refused
    in the API's shape, with a hint to retry."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    response = client.get(path)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"
