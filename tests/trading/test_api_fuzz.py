"""Schema-based fuzzing of every operation under /api/v1/ with schemathesis.

The schema is the one the project serves at /api/schema/. For each operation schemathesis
sends its documented examples, then boundary cases (coverage phase), then generated
requests, valid and invalid (fuzzing phase), as a signed-in trader with funds, approved
KYC and 2FA off; no operation is left out. A response fails the test when it is a 5xx, when
its status is not documented for the operation, or when its body does not match the
documented schema. Generation is derandomized and keeps no example database, so every run
sends the same requests.

Requests go through the WSGI application in this process, inside the test's transaction,
so everything they write is rolled back with the test.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from accounts.api import AuthThrottle
from accounts.models import KycProfile, KycStatus
from ledger.services import deposit_credit
from marketdata.models import IndexPrint
from marketdata.series import series_for
from marketdata.services import instruments_sync
from tests.factories import UserFactory
from trading.wsgi import application

# Generated requests per operation in the fuzzing phase, on top of the examples and the
# coverage phase's boundary cases; writes get more, as they parse amounts.
MAX_EXAMPLES = 25
MAX_EXAMPLES_WRITES = 100
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

INDEX = {"BTC": Decimal("65000.12"), "ETH": Decimal("3400.55")}
FUNDS = {"USDT": Decimal("1000000"), "BTC": Decimal("10"), "ETH": Decimal("100")}

# Amounts as clients get them wrong, in the pattern (zero, negative, finer than any lot,
# longer than any column) and outside it (exponents, other digits, floats, non-numbers).
# Generated requests rarely spell a number in one of these particular ways: each is sent
# once into a documented example (test_odd_amounts).
ODD_AMOUNTS = [
    "0",
    "-1",
    "00001.50",
    "0.000000001",
    "99999999999999999999",
    "1" + "0" * 40,
    "0." + "1" * 60,
    "1e-999999999",
    "1e19",
    "1E+400",
    "1_000",
    "\uff11",
    "\u0661\u0662",
    "NaN",
    "-Infinity",
    "sNaN",
    " 1",
    "+1",
    "0x10",
    ".5",
    "5.",
    "1.2.3",
    "",
    "\x00",
    "1\x00",
    0.1,
    1e300,
    -0.0,
    True,
    [],
    {},
]


def _series_near_the_money(now) -> list[str]:
    """A call and a put near the money a few days out for each underlying: the series the
    fixture lists, so that options quotes and orders get past the series lookup."""
    symbols = []
    for underlying, index in INDEX.items():
        specs = [s for s in series_for(underlying, index, now) if s.expiry > now + timedelta(days=3)]
        expiry = min(s.expiry for s in specs)
        nearest = min((s for s in specs if s.expiry == expiry), key=lambda s: abs(s.strike - index))
        symbols += [s.symbol for s in specs if s.expiry == expiry and s.strike == nearest.strike]
    return symbols


LIVE_SERIES = _series_near_the_money(timezone.now())

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "operations": [
            {"include-method": ["POST", "PATCH", "DELETE"], "generation": {"max-examples": MAX_EXAMPLES_WRITES}}
        ],
        "phases": {"stateful": {"enabled": False}},
        "dictionaries": {
            "series": {"values": LIVE_SERIES},
            "symbols": {"values": ["BTC-USDT", "ETH-USDT", "btc-usdt", LIVE_SERIES[0]]},
        },
        "parameters": {
            "body.series": {"dictionary": "series", "probability": 0.7},
            "path.symbol": {"dictionary": "symbols", "probability": 0.7},
        },
    }
)

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)


def _amount_bodies(raw: dict) -> dict[str, tuple[list[str], dict]]:
    """Operation label -> (the JSON body fields the schema declares as decimal strings, a
    documented request example that has the most of them, with the live series in place of
    the example's)."""
    components = raw["components"]["schemas"]
    found = {}
    for path, methods in raw["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref")
            properties = components[ref.rsplit("/", 1)[1]]["properties"] if ref else {}
            fields = [name for name, prop in properties.items() if prop.get("format") == "decimal"]
            examples = [example["value"] for example in content.get("examples", {}).values()]
            if fields and examples:
                example = max(examples, key=lambda value: len(set(value) & set(fields)))
                found[f"{method.upper()} {path}"] = (
                    fields,
                    {**example, **({"series": LIVE_SERIES[0]} if "series" in example else {})},
                )
    return found


AMOUNT_BODIES = _amount_bodies(schema.raw_schema)


@pytest.fixture
def trader(db, settings):
    """A funded trader with approved KYC and 2FA off, on markets with a fresh index."""
    settings.INDEX_MAX_AGE_SECONDS = 3600  # the prints below stay fresh for the whole run
    settings.SPOT_ORDER_WAIT_SECONDS = 0.05  # no engine runs here: ?wait=1 would wait in vain
    for underlying, price in INDEX.items():
        IndexPrint.objects.create(underlying=underlying, ts=timezone.now(), price=price, stale=False, sources={})
    instruments_sync(index_prices=INDEX)
    user = UserFactory()
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    maker = UserFactory(email=settings.MARKET_MAKER_EMAIL)  # the RFQ counterparty
    for owner in (user, maker):
        for asset, amount in FUNDS.items():
            deposit_credit(user=owner, asset=asset, amount=amount, txid=f"fuzz-{owner.pk}-{asset}")
    return user


@pytest.fixture
def wsgi_in_test_transaction(monkeypatch):
    # The sign-in throttles would turn most auth requests into 429s after the first few.
    monkeypatch.setattr(AuthThrottle, "THROTTLE_RATES", {"auth": "100000/min", "otp": "100000/min"})
    # As Django's test client does: the WSGI handler would otherwise close the connection
    # that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _call(case, headers):
    """One request in a savepoint: a request that failed in the database (a 5xx) would
    otherwise leave the test's transaction aborted for every request after it."""
    atomic = transaction.atomic()
    # Marks the savepoint like a TestCase's own, so the services' durable atomic blocks may
    # open inside it as they do inside the test's transaction.
    atomic._from_testcase = True
    with atomic:
        response = case.call(headers=headers)
        if response.status_code >= 500:
            transaction.set_rollback(True)
    return response


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_fuzz(case, trader, wsgi_in_test_transaction):
    response = _call(case, {"Authorization": f"Bearer {AccessToken.for_user(trader)}"})
    case.validate_response(response, checks=CHECKS)


def _open_order(trader) -> int:
    from orders.spot.services import order_request, spot_order_place

    order, _ = spot_order_place(
        user=trader,
        request=order_request(symbol="BTC-USDT", side="buy", type="limit", price="60000.00", quantity="0.01"),
    )
    return order.pk


@pytest.mark.parametrize(
    "label, field", [(label, field) for label, (fields, _) in sorted(AMOUNT_BODIES.items()) for field in fields]
)
def test_odd_amounts(label, field, trader, wsgi_in_test_transaction):
    """Each odd amount in one field of a documented example body: a documented answer (a
    400 for all but the few the operation may take), never a 5xx."""
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    example = AMOUNT_BODIES[label][1]
    # an operation on one of the trader's orders (an amend) gets an open order of theirs
    path_parameters = {"order_id": _open_order(trader)} if "{order_id}" in path else None
    failures = []
    for value in ODD_AMOUNTS:
        case = operation.Case(
            body={**example, field: value}, media_type="application/json", path_parameters=path_parameters
        )
        response = _call(case, {"Authorization": f"Bearer {AccessToken.for_user(trader)}"})
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup:  # collect every value's, not just the first
            failures.append(f"{field}={value!r}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
