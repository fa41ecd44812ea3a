"""IDOR sweep: every API endpoint that addresses an object by a path parameter answers
another user's object with 404 ``not_found`` (API.md › Conventions), on every method.

The URL patterns are discovered from the resolver, so a new object endpoint makes this
test FAIL until it gets an entry in ``OBJECT_FACTORIES`` below.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.test import APIClient

from accounts.models import KycProfile, KycStatus
from notifications.services import notification_create
from tests.accounts.helpers import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")


# --- one entry per object endpoint: create an object owned by `owner`, return (object, kwargs) ---


def _notification(owner):
    notification = notification_create(user=owner, kind="test", title="Private to the owner", body="secret")
    return notification, {"notification_id": notification.pk}


def _withdrawal(owner):
    from ledger.services.funding import deposit_credit, withdrawal_create

    KycProfile.objects.filter(user=owner).update(status=KycStatus.APPROVED)
    deposit_credit(user=owner, asset="USDT", amount=Decimal("500"), txid=f"idor-sweep-{owner.pk}")
    withdrawal = withdrawal_create(
        user=owner, asset="USDT", amount=Decimal("100"), address="0x" + "ab" * 20, idempotency_key=""
    )
    return withdrawal, {"withdrawal_id": withdrawal.pk}


def _watchlist_item(owner):
    from marketdata.services import instruments_sync, watchlist_add

    instruments_sync(index_prices={})
    item = watchlist_add(user=owner, symbol="BTC-USDT")
    return item, {"symbol": "BTC-USDT"}


def _rfq_quote(owner):
    """A live quote of the owner's, with a funded market maker, so the owner's accept succeeds."""
    from django.conf import settings

    from ledger.services.funding import deposit_credit
    from marketdata.services import instruments_sync
    from orders.spot.services.rfq import rfq_quote_create
    from tests.orders.conftest import INDEX, print_index

    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)
    maker = UserFactory(email=settings.MARKET_MAKER_EMAIL)
    deposit_credit(user=maker, asset="BTC", amount=Decimal("5"), txid=f"idor-sweep-mm-{maker.pk}")
    deposit_credit(user=owner, asset="USDT", amount=Decimal("100000"), txid=f"idor-sweep-rfq-{owner.pk}")
    quote = rfq_quote_create(user=owner, symbol="BTC-USDT", side="buy", quantity="0.1")
    return quote, {"quote_id": str(quote.pk)}


def _spot_order(owner):
    from ledger.services.funding import deposit_credit
    from marketdata.services import instruments_sync
    from orders.spot.services import order_request, spot_order_place
    from tests.orders.conftest import INDEX, print_index

    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)
    deposit_credit(user=owner, asset="USDT", amount=Decimal("10000"), txid=f"idor-sweep-spot-{owner.pk}")
    order, _ = spot_order_place(
        user=owner,
        request=order_request(
            **{"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "60000.00", "quantity": "0.01"}
        ),
    )
    return order, {"order_id": order.pk}


def _price_alert(owner):
    from marketdata.services import instruments_sync
    from notifications.alert_services import price_alert_create
    from tests.orders.conftest import INDEX

    instruments_sync(index_prices=INDEX)
    alert = price_alert_create(user=owner, symbol="BTC-USDT", condition="price_above", value="70000", frequency="once")
    return alert, {"alert_id": alert.pk}


def _api_key(owner):
    """A key of the owner's, who has 2FA on (revoking asks for a code: ``_owner_code``)."""
    from accounts.api_key_services import api_key_create
    from tests.factories import enable_totp, totp_code

    device = enable_totp(owner)
    key, _secret = api_key_create(user=owner, label="bot", scopes=["read"], otp=totp_code(device))
    device.refresh_from_db()
    return key, {"key_id": key.pk}


def _owner_code(owner) -> dict:
    """A fresh code from the owner's device, for the next time step (the last was used)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.factories import totp_code

    return {"otp": totp_code(TOTPDevice.objects.get(user=owner), offset_steps=1)}


def _rebalance_batch(owner):
    """A rebalance as the service records it (one planned sell, entered)."""
    from portfolio.models import RebalanceBatch

    batch = RebalanceBatch.objects.create(
        user=owner,
        client_id="idor-sweep",
        request_hash="0" * 64,
        targets={"USDT": "1"},
        tolerance=Decimal("0.02"),
        status="placed",
        value_usdt=Decimal("1000"),
        drift_before=Decimal("0.5"),
        drift_after=Decimal("0"),
        orders=[],
    )
    return batch, {"batch_id": batch.pk}


def _sign_in_session(owner):
    from accounts.models import UserSession

    session = UserSession.objects.create(user=owner, kind="browser", session_key=f"idor-sweep-{owner.pk}")
    return session, {"session_id": session.pk}


def _withdrawal_address(owner):
    from ledger.services.withdrawal_safety import withdrawal_address_add

    entry = withdrawal_address_add(
        user=owner, asset="BTC", address="bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", label="cold"
    )
    return entry, {"address_id": entry.pk}


# Path parameters that name public market data (a symbol), not an object someone owns.
PUBLIC_ENDPOINTS = {"api:ticker", "api:orderbook", "api:trades", "api:candles", "api:aggregated_book"}

OBJECT_FACTORIES = {
    "api:watchlist_item": _watchlist_item,
    "api:notification": _notification,
    "api:notification_read": _notification,
    "api:withdrawal": _withdrawal,
    "api:rfq_accept": _rfq_quote,
    "api:spot_order": _spot_order,
    "api:price_alert": _price_alert,
    "api:portfolio_rebalance_detail": _rebalance_batch,
    "api:api_key_revoke": _api_key,
    "api:session": _sign_in_session,
    "api:withdrawal_address": _withdrawal_address,
    "api:withdrawal_cancel": _withdrawal,
}

# Request bodies for methods that take one (the default is an empty JSON object): give a
# *valid* body, so a refusal cannot come from input validation instead of the ownership check.
# A callable is given the owner and answers the body (a fresh 2FA code of theirs).
PAYLOADS: dict[str, dict] = {
    "api:api_key_revoke": {"post": _owner_code},
    # an amend the owner may ask: the order waits for an engine, so the answer is 202 pending
    "api:spot_order": {"patch": {"quantity": "0.005"}},
}


# --- discovery ------------------------------------------------------------------------------------


def _params_of(pattern) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return list(pattern.converters)
    if isinstance(pattern, RegexPattern):
        names = list(pattern.regex.groupindex)
        return names or [f"<group {n}>" for n in range(pattern.regex.groups)]
    return []


def object_endpoints():
    """[(route name or None, route, params, callback)] for every api/v1/ pattern with a path parameter."""
    found = []

    def walk(patterns, prefix, namespace, params):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            here = params + _params_of(entry.pattern)
            if isinstance(entry, URLResolver):
                space = namespace
                if entry.namespace:
                    space = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                walk(entry.url_patterns, route, space, here)
            elif isinstance(entry, URLPattern) and route.lstrip("^").startswith(API_PREFIX) and here:
                name = (f"{namespace}:{entry.name}" if namespace else entry.name) if entry.name else None
                found.append((name, route, here, entry.callback))

    walk(get_resolver().url_patterns, "", "", [])
    return [endpoint for endpoint in found if endpoint[0] not in PUBLIC_ENDPOINTS]


def implemented_methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)  # DRF viewsets
    if actions:
        return [method for method in METHODS if method in actions]
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return list(METHODS)  # a plain function view: probe everything
    return [method for method in METHODS if hasattr(view_class, method)]


def _call(client, method, url, body=None):
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body if body is not None else {}, format="json")


# --- the sweep ---------------------------------------------------------------------------------------


def test_other_users_objects_answer_404_on_every_object_endpoint():
    endpoints = object_endpoints()
    names = {name for name, *_ in endpoints}

    unnamed = [route for name, route, *_ in endpoints if name is None]
    assert not unnamed, f"Object endpoints need a URL name to be covered by the IDOR sweep: {unnamed}"
    missing = sorted(names - set(OBJECT_FACTORIES))
    assert not missing, (
        f"New object endpoint(s) {missing} under /{API_PREFIX}: add an entry to OBJECT_FACTORIES in "
        f"{__file__} that creates an object owned by a user, so the sweep checks that other users get 404."
    )
    stale = sorted(set(OBJECT_FACTORIES) - names)
    assert not stale, f"OBJECT_FACTORIES lists endpoints that no longer exist: {stale}"

    owner, intruder = UserFactory(), UserFactory()
    owner_api, intruder_api = APIClient(), APIClient()
    owner_api.force_authenticate(owner)
    intruder_api.force_authenticate(intruder)

    checked = []
    for name, _route, params, callback in sorted(endpoints, key=lambda item: item[0]):
        obj, kwargs = OBJECT_FACTORIES[name](owner)
        assert set(kwargs) == set(params), (name, kwargs, params)
        url = reverse(name, kwargs=kwargs)
        methods = implemented_methods(callback)
        assert methods, (name, "implements no HTTP method")
        before = model_to_dict(obj)

        for method in methods:
            body = PAYLOADS.get(name, {}).get(method)
            body = body(owner) if callable(body) else body
            response = _call(intruder_api, method, url, body)
            error = assert_error(response, 404, "not_found")
            assert str(obj.pk) not in error["message"], (name, method, error)
            checked.append((name, method.upper()))
        # GET and POST are always probed: where the view lacks one, it is 405, never data.
        for method in {"get", "post"} - set(methods):
            assert_error(_call(intruder_api, method, url), 405, "method_not_allowed")

        obj.refresh_from_db()
        assert model_to_dict(obj) == before, f"{name}: another user's request changed the object"

        # The owner reaches the same URL, so the 404s above are about ownership, not a bad URL.
        for method in methods:
            if method == "delete":
                continue
            body = PAYLOADS.get(name, {}).get(method)
            response = _call(owner_api, method, url, body(owner) if callable(body) else body)
            assert 200 <= response.status_code < 300, (name, method, response.status_code, response.content[:500])

    assert {name for name, _ in checked} == names
    assert ("api:notification", "GET") in checked and ("api:notification_read", "POST") in checked


def test_unknown_object_ids_answer_404_too(auth_api):
    for name in ("api:notification", "api:withdrawal"):
        param = next(params for n, _, params, _ in object_endpoints() if n == name)[0]
        assert_error(auth_api.get(reverse(name, kwargs={param: 987654321})), 404, "not_found")
    assert_error(
        auth_api.post(reverse("api:notification_read", kwargs={"notification_id": 987654321})), 404, "not_found"
    )
