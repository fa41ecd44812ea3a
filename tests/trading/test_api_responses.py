"""Every answer of the API is declared field by field in the schema at /api/schema/.

One funded world (filled and open spot orders, a smart order with a child on our book and
one at a venue, an RFQ, option orders and positions, a withdrawal, a notification, settlement
records, candles), then every documented GET operation and the POSTs and DELETEs a test can
drive cheaply are called, and each JSON body is walked against the schema of its status:
a key the schema does not declare, at any depth, fails the test. (schemathesis checks types
and required fields in tests/trading/test_api_fuzz.py; the schema closes response objects
with ``additionalProperties: false``, so it now fails on undeclared keys as well.)

A GET operation added to the API without a call here fails ``test_every_get_operation_is_called``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import KycProfile, KycStatus
from ledger.services import deposit_credit
from marketdata.backfill import backfill
from marketdata.models import Instrument, InstrumentKind
from marketdata.services import instruments_sync
from notifications.services import notification_create
from settlement import services as settlement_services
from tests.accounts.helpers import tiny_png
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory, enable_totp, totp_code
from tests.orders.conftest import INDEX, print_index
from tests.orders.spot.conftest import Engine
from tests.orders.spot.routing_helpers import venues
from trading.models import OutboxEvent
from trading.outbox import outbox_message

pytestmark = pytest.mark.django_db

JSON = "application/json"
BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


# --- the walk ------------------------------------------------------------------------------------------


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def undeclared(schema: dict, node: dict, value, where: str = "$") -> list[str]:
    """The places in ``value`` that ``node`` does not declare: keys no ``properties`` (or
    ``additionalProperties`` schema) covers, objects and arrays where the schema says none."""
    node = _resolve(schema, node)
    if value is None:
        return []
    for combinator in ("allOf",):
        if combinator in node:
            return [problem for sub in node[combinator] for problem in undeclared(schema, sub, value, where)]
    for combinator in ("oneOf", "anyOf"):
        if combinator in node:
            tries = [undeclared(schema, sub, value, where) for sub in node[combinator]]
            return [] if any(not problems for problems in tries) else min(tries, key=len)
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties", False)
        if not properties and extra is False:
            return [f"{where}: an object the schema does not describe ({sorted(value)})"]
        problems = []
        for key, item in value.items():
            if key in properties:
                problems += undeclared(schema, properties[key], item, f"{where}.{key}")
            elif isinstance(extra, dict) and extra:
                problems += undeclared(schema, extra, item, f"{where}.{key}")
            elif extra is False:
                problems.append(f"{where}.{key}")
        return problems
    if isinstance(value, list):
        if "items" not in node:
            return [f"{where}: an array the schema does not describe"]
        return [
            problem
            for i, item in enumerate(value)
            for problem in undeclared(schema, node["items"], item, f"{where}[{i}]")
        ]
    return []


def check(schema: dict, method: str, template: str, response) -> None:
    """``response`` is a documented status of the operation, and its JSON body declares every key."""
    operation = schema["paths"][template][method]
    status = str(response.status_code)
    assert status in operation["responses"], (method, template, status, response.content[:500])
    content = operation["responses"][status].get("content", {})
    if response.status_code == 204:
        assert not response.content
        return
    assert JSON in content, (method, template, status)
    body = json.loads(response.content)
    problems = undeclared(schema, content[JSON]["schema"], body)
    assert not problems, f"{method.upper()} {template} {status}: undeclared {problems}"


def test_the_walk_finds_an_undeclared_key_at_any_depth(schema):
    order = {"$ref": "#/components/schemas/SpotOrderDetail"}
    page = {"$ref": "#/components/schemas/PaginatedSpotOrderList"}
    assert undeclared(schema, order, {"id": 1, "held": {"asset": "BTC", "amount": "1", "secret": 1}}) == [
        "$.held.secret"
    ]
    assert undeclared(schema, page, {"count": 1, "results": [{"id": 1, "fills": [{"trade_id": 1, "x": 2}]}]}) == [
        "$.results[0].fills"
    ]  # a page's orders are not details: fills is not theirs
    assert undeclared(schema, order, {"fills": [{"trade_id": 1, "x": 2}]}) == ["$.fills[0].x"]
    book = {"$ref": "#/components/schemas/AggregatedBook"}
    assert undeclared(schema, book, {"bids": [["1", "2", {"simx": "2"}]]}) == []
    error = {"$ref": "#/components/schemas/Error"}
    assert undeclared(schema, error, {"error": {"code": "x", "message": "y", "fields": {"a": ["b"]}, "debug": 1}}) == [
        "$.error.debug"
    ]


def test_response_objects_are_closed_and_request_bodies_open(schema):
    components = schema["components"]["schemas"]
    assert components["SpotOrder"]["additionalProperties"] is False
    assert components["Error"]["additionalProperties"] is False
    assert components["Error"]["properties"]["error"]["additionalProperties"] is False
    assert components["Error"]["properties"]["error"]["properties"]["fields"]["additionalProperties"] == {}
    assert "additionalProperties" not in components["SpotOrderInputRequest"]


def test_every_operation_has_a_summary(schema):
    missing = [
        (method, path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if not operation.get("summary")
    ]
    assert missing == []


# --- the world -------------------------------------------------------------------------------------------


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def world(settings, django_capture_on_commit_callbacks, eager_tasks):
    settings.INDEX_MAX_AGE_SECONDS = 3600
    settings.SPOT_ORDER_WAIT_SECONDS = 0.01
    settings.DEMO_MODE = True
    settings.SPOT_VENUES = venues()
    settings.SMART_ORDER_WAIT_SECONDS = 0
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)
    backfill(days=0.02)
    maker = UserFactory(email=settings.MARKET_MAKER_EMAIL)
    alice, bob = UserFactory(), UserFactory()
    for user in (alice, bob, maker):
        KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
        for asset, amount in (("USDT", "1000000"), ("BTC", "10"), ("ETH", "100")):
            deposit_credit(user=user, asset=asset, amount=Decimal(amount), txid=f"world-{user.pk}-{asset}")
    a, b = _client(alice), _client(bob)
    w = {"alice": alice, "bob": bob, "a": a, "b": b, "staff": _client(StaffFactory()), "anon": _client()}

    engine = Engine("BTC-USDT")
    sell = a.post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "sell", "type": "limit", "quantity": "0.5", "price": "65010.5"},
        format="json",
    )
    b.post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.2", "price": "65010.5"},
        format="json",
    )
    a.post(
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.5", "price": "65000"},
        format="json",
    )
    engine.run()
    with django_capture_on_commit_callbacks(execute=True):
        smart = b.post(
            "/api/v1/orders",
            {"symbol": "BTC-USDT", "side": "sell", "type": "market", "quantity": "0.8", "route": "smart"},
            format="json",
        )
    assert smart.status_code == 201, smart.content
    w["order_id"], w["smart_id"] = sell.json()["id"], smart.json()["id"]

    series = Instrument.objects.filter(
        kind=InstrumentKind.OPTION, base="BTC", active=True, expiry__gt=timezone.now() + timedelta(days=3)
    ).order_by("expiry", "strike")
    w["series"] = min(series.filter(expiry=series[0].expiry), key=lambda i: abs(i.strike - INDEX["BTC"])).symbol
    quote = a.post("/api/v1/options/quotes", {"series": w["series"], "side": "buy", "contracts": "0.5"}, format="json")
    a.post("/api/v1/options/orders", {"quote_id": quote.json()["quote_id"]}, format="json")
    a.post(
        "/api/v1/options/orders",
        {"series": w["series"], "side": "sell", "contracts": "0.1", "limit_price_usdt": "0.01"},
        format="json",
    )
    ids = settlement_services.settlements_accept(events=[outbox_message(e) for e in OutboxEvent.objects.order_by("id")])
    settlement_services.settlements_run(ids=ids, to_step=1)

    device = enable_totp(alice)
    withdrawal = a.post(
        "/api/v1/withdrawals",
        {"asset": "BTC", "amount": "0.01", "address": BTC_ADDRESS, "otp": totp_code(device)},
        format="json",
    )
    assert withdrawal.status_code == 201, withdrawal.content
    w["withdrawal_id"] = withdrawal.json()["id"]
    w["notification_id"] = notification_create(user=alice, kind="test", title="hello", body="world").pk
    a.post("/api/v1/watchlist", {"symbol": "BTC-USDT"}, format="json")
    alert = {"symbol": "index:BTC", "condition": "change_pct", "value": "-5", "window": "1h", "frequency": "every_time"}
    w["alert_id"] = a.post("/api/v1/alerts", alert, format="json").json()["id"]
    settings.PORTFOLIO_REBALANCE_WAIT_SECONDS = 0.01
    rebalance = {"targets": {"BTC": "0.3", "ETH": "0.3", "USDT": "0.4"}, "client_id": "world-1"}
    w["batch_id"] = a.post("/api/v1/portfolio/rebalance", rebalance, format="json").json()["id"]
    return w


# Every documented GET operation: who asks, and the paths (with their queries) that reach it.
GETS = {
    "/api/v1/balances": [("a", "/api/v1/balances")],
    "/api/v1/fills": [
        ("a", "/api/v1/fills"),
        ("b", "/api/v1/fills?limit=2&symbol=BTC-USDT"),
        ("a", "/api/v1/fills?limit=0"),
        ("b", "/api/v1/fills?array=1&limit=2"),
    ],
    "/api/v1/instruments": [
        ("anon", "/api/v1/instruments"),
        ("anon", "/api/v1/instruments?kind=option&underlying=eth"),
        ("anon", "/api/v1/instruments?kind=bad"),
    ],
    "/api/v1/kyc": [("a", "/api/v1/kyc")],
    "/api/v1/ledger": [("a", "/api/v1/ledger"), ("a", "/api/v1/ledger?page=99")],
    "/api/v1/markets/{symbol}/aggregated-book": [("anon", "/api/v1/markets/BTC-USDT/aggregated-book?depth=3")],
    "/api/v1/markets/{symbol}/candles": [
        ("anon", "/api/v1/markets/BTC-USDT/candles?interval=1m&limit=3"),
        ("anon", "/api/v1/markets/BTC-USDT/candles?start=yesterday"),
    ],
    "/api/v1/markets/{symbol}/orderbook": [
        ("anon", "/api/v1/markets/BTC-USDT/orderbook?depth=5"),
        ("anon", "/api/v1/markets/XRP-USDT/orderbook"),
    ],
    "/api/v1/markets/{symbol}/ticker": [
        ("anon", "/api/v1/markets/BTC-USDT/ticker"),
        ("anon", "/api/v1/markets/ETH-USDT/ticker"),
    ],
    "/api/v1/markets/{symbol}/trades": [("anon", "/api/v1/markets/BTC-USDT/trades")],
    "/api/v1/me": [("a", "/api/v1/me"), ("anon", "/api/v1/me")],
    "/api/v1/me/settings": [("a", "/api/v1/me/settings"), ("anon", "/api/v1/me/settings")],
    "/api/v1/api-keys": [("a", "/api/v1/api-keys"), ("anon", "/api/v1/api-keys")],
    "/api/v1/alerts": [("a", "/api/v1/alerts"), ("anon", "/api/v1/alerts")],
    "/api/v1/notifications": [("a", "/api/v1/notifications"), ("a", "/api/v1/notifications?unread=1")],
    "/api/v1/notifications/preferences": [
        ("a", "/api/v1/notifications/preferences"),
        ("anon", "/api/v1/notifications/preferences"),
    ],
    "/api/v1/notifications/{notification_id}": [
        ("a", "/api/v1/notifications/{notification_id}"),
        ("b", "/api/v1/notifications/{notification_id}"),
    ],
    "/api/v1/ops/risk/exposure": [("staff", "/api/v1/ops/risk/exposure"), ("a", "/api/v1/ops/risk/exposure")],
    "/api/v1/ops/analytics": [("staff", "/api/v1/ops/analytics"), ("a", "/api/v1/ops/analytics")],
    "/api/v1/ops/health": [
        ("staff", "/api/v1/ops/health"),
        ("staff", "/api/v1/ops/health?hours=nope"),
        ("a", "/api/v1/ops/health"),
    ],
    "/api/v1/ops/aml/cases": [
        ("staff", "/api/v1/ops/aml/cases"),
        ("staff", "/api/v1/ops/aml/cases?status=nope"),
        ("a", "/api/v1/ops/aml/cases"),
    ],
    "/api/v1/ops/settlements": [
        ("staff", "/api/v1/ops/settlements"),
        ("staff", "/api/v1/ops/settlements?state=nope"),
        ("a", "/api/v1/ops/settlements"),
    ],
    "/api/v1/options/chain": [("anon", "/api/v1/options/chain?underlying=BTC")],
    "/api/v1/options/exercises": [("a", "/api/v1/options/exercises")],
    "/api/v1/options/orders": [("a", "/api/v1/options/orders")],
    "/api/v1/options/positions": [
        ("a", "/api/v1/options/positions?status=all"),
        ("a", "/api/v1/options/positions?status=x"),
    ],
    "/api/v1/orders": [("a", "/api/v1/orders"), ("b", "/api/v1/orders?status=open&symbol=BTC-USDT")],
    "/api/v1/portfolio": [("a", "/api/v1/portfolio?method=average"), ("a", "/api/v1/portfolio?method=x")],
    "/api/v1/portfolio/lots": [
        ("a", "/api/v1/portfolio/lots?asset=BTC"),
        ("a", "/api/v1/portfolio/lots?asset={series}&method=average"),
        ("a", "/api/v1/portfolio/lots?asset=DOGE"),
    ],
    "/api/v1/portfolio/pnl": [("a", "/api/v1/portfolio/pnl"), ("a", "/api/v1/portfolio/pnl?start=2030-01-01")],
    "/api/v1/portfolio/performance": [
        ("a", "/api/v1/portfolio/performance?period=all"),
        ("a", "/api/v1/portfolio/performance?period=x"),
    ],
    "/api/v1/portfolio/rebalance": [("a", "/api/v1/portfolio/rebalance")],
    "/api/v1/portfolio/rebalance/{batch_id}": [
        ("a", "/api/v1/portfolio/rebalance/{batch_id}"),
        ("b", "/api/v1/portfolio/rebalance/{batch_id}"),
    ],
    "/api/v1/portfolio/targets": [("a", "/api/v1/portfolio/targets"), ("b", "/api/v1/portfolio/targets")],
    "/api/v1/portfolio/suggestions": [("a", "/api/v1/portfolio/suggestions")],
    "/api/v1/statements": [("a", "/api/v1/statements"), ("a", "/api/v1/statements?format=x")],
    # its answer is a CSV file (tests/portfolio/test_exports.py reads it); a refusal is JSON
    "/api/v1/exports/transactions": [("a", "/api/v1/exports/transactions?format=x")],
    "/api/v1/reports/trades": [("a", "/api/v1/reports/trades"), ("b", "/api/v1/reports/trades?year=1999")],
    "/api/v1/reports/tax": [
        ("a", "/api/v1/reports/tax?method=average"),
        ("b", "/api/v1/reports/tax"),
        ("a", "/api/v1/reports/tax?format=x"),
    ],
    "/api/v1/orders/{order_id}": [
        ("a", "/api/v1/orders/{order_id}"),
        ("b", "/api/v1/orders/{smart_id}"),
        ("b", "/api/v1/orders/{order_id}"),
    ],
    "/api/v1/risk/limits": [("a", "/api/v1/risk/limits")],
    "/api/v1/wallet/deposit-address": [
        ("a", "/api/v1/wallet/deposit-address?asset=ETH"),
        ("a", "/api/v1/wallet/deposit-address"),
    ],
    "/api/v1/watchlist": [("a", "/api/v1/watchlist")],
    "/api/v1/withdrawals": [("a", "/api/v1/withdrawals")],
    "/api/v1/withdrawals/{withdrawal_id}": [("a", "/api/v1/withdrawals/{withdrawal_id}")],
    "/api/v1/sessions": [("a", "/api/v1/sessions"), ("anon", "/api/v1/sessions")],
    "/api/v1/login-history": [("a", "/api/v1/login-history?limit=5"), ("a", "/api/v1/login-history?limit=x")],
    "/api/v1/anti-phishing-code": [("a", "/api/v1/anti-phishing-code")],
    "/api/v1/withdrawal-addresses": [("a", "/api/v1/withdrawal-addresses")],
    "/api/v1/withdrawal-addresses/mode": [("a", "/api/v1/withdrawal-addresses/mode")],
}


def test_every_get_operation_is_called(schema):
    documented = {path for path, item in schema["paths"].items() if "get" in item}
    assert documented == set(GETS), (
        f"add calls for {sorted(documented - set(GETS))}; drop {sorted(set(GETS) - documented)}"
    )


def test_every_get_answer_is_declared(schema, world):
    statuses = set()
    for template, calls in GETS.items():
        for who, path in calls:
            response = world[who].get(path.format(**world))
            check(schema, "get", template, response)
            statuses.add(response.status_code)
    assert statuses >= {200, 400, 401, 403, 404}
    smart = world["b"].get(f"/api/v1/orders/{world['smart_id']}").json()
    assert {child["venue"] for child in smart["children"]} >= {"book", "simx"}  # both kinds of child were walked


def test_the_writes_a_test_can_drive_answer_what_they_declare(schema, world):
    a, b, anon = world["a"], world["b"], world["anon"]

    def call(client, method, template, path=None, body=None, **kwargs):
        response = getattr(client, method)((path or template).format(**world), body, format="json", **kwargs)
        check(schema, method, template, response)
        return response

    call(anon, "post", "/api/v1/auth/register", body={"email": "new@example.com", "password": "a-Long-enough-pw-1"})
    tokens = call(
        anon, "post", "/api/v1/auth/token", body={"email": "new@example.com", "password": "a-Long-enough-pw-1"}
    )
    call(anon, "post", "/api/v1/auth/token/refresh", body={"refresh": tokens.json()["refresh"]})
    call(anon, "post", "/api/v1/auth/token", body={"email": "new@example.com", "password": "wrong-password-1"})
    newcomer = _client(UserFactory())
    call(newcomer, "post", "/api/v1/auth/2fa/setup", body={})
    call(newcomer, "post", "/api/v1/auth/2fa/confirm", body={"otp": "000000"})
    call(newcomer, "post", "/api/v1/auth/email", body={"password": DEFAULT_PASSWORD, "new_email": "moved@example.com"})
    call(
        newcomer,
        "post",
        "/api/v1/auth/password",
        body={"current_password": DEFAULT_PASSWORD, "new_password": "another-Long-pw-2"},
    )
    document = SimpleUploadedFile("id.png", tiny_png(), content_type="image/png")
    response = newcomer.post(
        "/api/v1/kyc",
        {"full_name": "Ada Lovelace", "country": "GB", "date_of_birth": "1990-01-02", "document": document},
        format="multipart",
    )
    check(schema, "post", "/api/v1/kyc", response)

    call(a, "post", "/api/v1/wallet/faucet", body={"asset": "ETH"})
    call(a, "post", "/api/v1/withdrawals", body={"asset": "BTC", "amount": "0.000000001", "address": BTC_ADDRESS})
    call(a, "post", "/api/v1/watchlist", body={"symbol": "ETH-USDT"})
    call(a, "delete", "/api/v1/watchlist/{symbol}", "/api/v1/watchlist/ETH-USDT")
    call(a, "post", "/api/v1/notifications/{notification_id}/read")
    call(a, "post", "/api/v1/notifications/read-all")
    preferences = "/api/v1/notifications/preferences"
    call(a, "put", preferences, body={"events": {"order_filled": {"email": True}}, "webhook_url": "https://h.example"})
    call(a, "put", preferences, body={"events": {"security": {"email": False}}})
    alert = {"symbol": "BTC-USDT", "condition": "price_above", "value": "70000", "frequency": "once"}
    call(a, "post", "/api/v1/alerts", body=alert)
    call(a, "post", "/api/v1/alerts", body={**alert, "symbol": "DOGE-USDT"})
    call(b, "delete", "/api/v1/alerts/{alert_id}")
    call(a, "delete", "/api/v1/alerts/{alert_id}")

    call(
        b,
        "post",
        "/api/v1/orders",
        body={
            "symbol": "BTC-USDT",
            "side": "buy",
            "type": "limit",
            "quantity": "0.01",
            "price": "64000",
            "client_order_id": "resp-1",
        },
    )
    call(
        b,
        "post",
        "/api/v1/orders",
        body={
            "symbol": "BTC-USDT",
            "side": "buy",
            "type": "limit",
            "quantity": "0.01",
            "price": "64000",
            "client_order_id": "resp-1",
        },
    )
    placed = b.get("/api/v1/orders?status=open").json()["results"][0]["id"]
    call(b, "delete", "/api/v1/orders/{order_id}", f"/api/v1/orders/{placed}")
    call(
        b,
        "post",
        "/api/v1/orders",
        body={"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "0.01", "price": "63000"},
    )
    call(b, "post", "/api/v1/orders/cancel-all", body={"symbol": "BTC-USDT"})
    call(b, "delete", "/api/v1/orders", "/api/v1/orders?symbol=ETH-USDT")
    call(b, "post", "/api/v1/orders/cancel-all", body={"symbol": "NOPE-USDT"})
    call(b, "post", "/api/v1/orders", body={"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": "-1"})

    quote = call(b, "post", "/api/v1/rfq", body={"symbol": "BTC-USDT", "side": "buy", "quantity": "0.1"})
    call(b, "post", "/api/v1/rfq/{quote_id}/accept", f"/api/v1/rfq/{quote.json()['id']}/accept")
    call(b, "post", "/api/v1/rfq/{quote_id}/accept", f"/api/v1/rfq/{quote.json()['id']}/accept")

    option_quote = call(
        b, "post", "/api/v1/options/quotes", body={"series": world["series"], "side": "buy", "contracts": "0.25"}
    )
    call(b, "post", "/api/v1/options/orders", body={"quote_id": option_quote.json()["quote_id"]})
    call(
        b,
        "post",
        "/api/v1/options/orders",
        body={
            "series": world["series"],
            "side": "buy",
            "contracts": "0.1",
            "limit_price_usdt": "100000",
            "client_order_id": "resp-o",
        },
    )
    call(b, "post", "/api/v1/options/quotes", body={"series": world["series"], "side": "sell", "contracts": "99"})

    targets = {"targets": {"BTC": "0.5", "USDT": "0.5"}, "tolerance": "0.01"}
    call(b, "post", "/api/v1/portfolio/rebalance/preview", body=targets)
    call(b, "post", "/api/v1/portfolio/rebalance/preview", body={"targets": {"BTC": "0.5", "DOGE": "0.5"}})
    call(b, "post", "/api/v1/portfolio/rebalance", body={**targets, "client_id": "resp-r"})
    call(b, "post", "/api/v1/portfolio/rebalance", body={**targets, "client_id": "resp-r"})
    call(b, "put", "/api/v1/portfolio/targets", body=targets)
    call(b, "put", "/api/v1/portfolio/targets", body={"targets": {"BTC": "0.5"}})

    # account safety
    call(a, "put", "/api/v1/anti-phishing-code", body={"code": "x"})
    call(a, "put", "/api/v1/anti-phishing-code", body={"code": "blue-harbor"})  # 2FA on: otp_required
    call(b, "put", "/api/v1/anti-phishing-code", body={"code": "blue-harbor"})
    book = "/api/v1/withdrawal-addresses"
    entry = call(b, "post", book, body={"asset": "BTC", "address": BTC_ADDRESS, "label": "cold"})
    call(b, "post", book, body={"asset": "BTC", "address": BTC_ADDRESS, "label": "again"})
    call(b, "post", book, body={"asset": "BTC", "address": "nope", "label": "bad"})
    call(b, "put", f"{book}/mode", body={"whitelist_only": True})
    call(b, "put", f"{book}/mode", body={"whitelist_only": False})  # no 2FA: two_factor_required
    call(b, "delete", book + "/{address_id}", f"{book}/{entry.json()['id']}")
    call(b, "delete", book + "/{address_id}", f"{book}/{entry.json()['id']}")
    call(b, "post", "/api/v1/sessions/revoke-others")
    call(b, "delete", "/api/v1/sessions/{session_id}", "/api/v1/sessions/999999")
    call(a, "post", "/api/v1/withdrawals/{withdrawal_id}/cancel")
    call(a, "post", "/api/v1/withdrawals/{withdrawal_id}/cancel")
