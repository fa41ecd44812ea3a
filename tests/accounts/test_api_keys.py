"""API keys for bots (API.md "API keys"): made and revoked with 2FA, signed requests with a
timestamp window and no replays, scopes, the IP allowlist, and the security notice."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import requests
from django.test import override_settings
from rest_framework.test import APIClient

from accounts import api_keys
from accounts.models import ApiKey
from notifications.models import Notification
from tests.factories import enable_totp, totp_code
from tests.orders.spot.conftest import funded_trader, markets  # noqa: F401  (the fixture)
from trading.models import AuditRecord

from .helpers import assert_error, next_time_step

pytestmark = pytest.mark.django_db
KEYS = "/api/v1/api-keys"


@pytest.fixture
def trader(markets):  # noqa: F811
    user = funded_trader(usdt="10000", btc="1")
    user.device = enable_totp(user)
    return user


def session(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def make_key(user, scopes=("read", "trade"), **extra) -> dict:
    next_time_step(user.device)
    response = session(user).post(
        "/api/v1/api-keys",
        {"label": "grid bot", "scopes": list(scopes), "otp": totp_code(user.device), **extra},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def signed(key: dict, method: str, path: str, body: dict | None = None, *, timestamp=None, ip="127.0.0.1", sign=True):
    """A request signed as a bot would: headers X-API-KEY, X-API-TIMESTAMP, X-API-SIGNATURE."""
    raw = json.dumps(body).encode() if body is not None else b""
    ts = str(timestamp if timestamp is not None else int(time.time() * 1000))
    signature = api_keys.sign(key["secret"], ts, method, path, raw) if sign else "0" * 64
    client = APIClient(REMOTE_ADDR=ip)
    headers = {"HTTP_X_API_KEY": key["key"], "HTTP_X_API_TIMESTAMP": ts, "HTTP_X_API_SIGNATURE": signature}
    send = getattr(client, method.lower())
    if body is None:
        return send(path, **headers), headers
    return send(path, data=raw, content_type="application/json", **headers), headers


def test_a_key_is_made_with_a_fresh_code_and_its_secret_is_shown_once(trader):
    key = make_key(trader, ip_allowlist=["203.0.113.7", "198.51.100.0/24"])
    assert key["scopes"] == ["read", "trade"] and key["status"] == "active"
    assert key["ip_allowlist"] == ["203.0.113.7/32", "198.51.100.0/24"]
    assert len(key["secret"]) == 64 and len(key["key"]) == 40
    stored = ApiKey.objects.get(pk=key["id"])
    assert key["secret"].encode() not in bytes(stored.secret_encrypted)  # kept encrypted
    listed = session(trader).get("/api/v1/api-keys").json()
    assert [k["id"] for k in listed] == [key["id"]] and "secret" not in listed[0]

    notices = Notification.objects.filter(user=trader, kind="api_key_created")
    assert notices.count() == 1
    notice = notices.get()
    assert notice.title == "API key created: grid bot" and key["secret"] not in notice.body
    assert "read, trade" in notice.body and notice.dedupe_key == f"api_key:{key['id']}:created"
    assert AuditRecord.objects.filter(action="auth.api_key_created", actor=trader).count() == 1


def test_making_a_key_needs_2fa_a_good_code_and_sane_input(markets):  # noqa: F811
    plain = funded_trader()
    response = session(plain).post(KEYS, {"label": "x", "scopes": ["read"], "otp": "123456"}, format="json")
    assert_error(response, 400, "otp_not_configured")

    user = funded_trader()
    user.device = enable_totp(user)
    client = session(user)
    code = totp_code(user.device)
    assert_error(
        client.post("/api/v1/api-keys", {"label": "x", "scopes": ["admin"], "otp": code}, format="json"),
        400,
        "validation_error",
        field="scopes",
    )
    assert_error(
        client.post(
            KEYS, {"label": "x", "scopes": ["read"], "ip_allowlist": ["not-an-ip"], "otp": code}, format="json"
        ),
        400,
        "validation_error",
        field="ip_allowlist",
    )
    assert_error(
        client.post("/api/v1/api-keys", {"label": "  ", "scopes": ["read"], "otp": code}, format="json"),
        400,
        "validation_error",
        field="label",
    )
    assert_error(
        client.post("/api/v1/api-keys", {"label": "w", "scopes": ["read", "withdraw"], "otp": code}, format="json"),
        409,
        "whitelist_required",
    )
    bad = str((int(code) + 1) % 1_000_000).zfill(6)
    assert client.post(KEYS, {"label": "x", "scopes": ["read"], "otp": bad}, format="json").status_code == 401
    assert ApiKey.objects.filter(user=user).count() == 0  # nothing written by any refusal


def test_a_signed_request_is_served_and_records_its_use(trader):
    key = make_key(trader, scopes=["read"])
    response, _ = signed(key, "GET", "/api/v1/balances")
    assert response.status_code == 200, response.content
    assert {row["asset"] for row in response.json()} >= {"USDT", "BTC"}
    stored = ApiKey.objects.get(pk=key["id"])
    assert stored.last_used_at is not None and stored.last_used_ip == "127.0.0.1"
    with_query, _ = signed(key, "GET", "/api/v1/orders?status=open&symbol=BTC-USDT")
    assert with_query.status_code == 200 and with_query.json()["count"] == 0


def test_an_order_needs_the_trade_scope(trader):
    order = {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "60000.00", "quantity": "0.01"}
    reader = make_key(trader, scopes=["read"])
    response, _ = signed(reader, "POST", "/api/v1/orders", order)
    assert_error(response, 403, "scope_required")
    trading = make_key(trader, scopes=["read", "trade"])
    response, _ = signed(trading, "POST", "/api/v1/orders", order)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "new"


def test_replays_stale_timestamps_and_wrong_signatures_are_refused(trader):
    key = make_key(trader)
    first, headers = signed(key, "GET", "/api/v1/balances")
    assert first.status_code == 200
    again = APIClient().get("/api/v1/balances", **headers)
    assert_error(again, 401, "signature_replayed")

    stale, _ = signed(key, "GET", "/api/v1/balances", timestamp=int(time.time() * 1000) - 6_000)
    assert_error(stale, 401, "timestamp_out_of_window")
    future, _ = signed(key, "GET", "/api/v1/balances", timestamp=int(time.time() * 1000) + 6_000)
    assert_error(future, 401, "timestamp_out_of_window")
    garbage, _ = signed(key, "GET", "/api/v1/balances", timestamp="12e3")
    assert_error(garbage, 401, "timestamp_out_of_window")
    wrong, _ = signed(key, "GET", "/api/v1/balances", sign=False)
    assert_error(wrong, 401, "invalid_signature")

    # the body is signed: a changed quantity does not pass
    order = {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "60000.00", "quantity": "0.01"}
    ts = str(int(time.time() * 1000))
    signature = api_keys.sign(key["secret"], ts, "POST", "/api/v1/orders", json.dumps(order).encode())
    tampered = APIClient().post(
        "/api/v1/orders",
        data=json.dumps({**order, "quantity": "0.5"}),
        content_type="application/json",
        HTTP_X_API_KEY=key["key"],
        HTTP_X_API_TIMESTAMP=ts,
        HTTP_X_API_SIGNATURE=signature,
    )
    assert_error(tampered, 401, "invalid_signature")
    unknown = dict(key, key="f" * 40)
    response, _ = signed(unknown, "GET", "/api/v1/balances")
    assert_error(response, 401, "invalid_signature")


def test_a_revoked_key_stops_at_once(trader):
    key = make_key(trader)
    next_time_step(trader.device)
    revoked = session(trader).post(f"{KEYS}/{key['id']}/revoke", {"otp": totp_code(trader.device)}, format="json")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    response, _ = signed(key, "GET", "/api/v1/balances")
    assert_error(response, 401, "api_key_revoked")
    assert Notification.objects.filter(user=trader, kind="api_key_revoked").count() == 1
    # another trader's key is not found, and a revoke needs a code
    other = funded_trader()
    other.device = enable_totp(other)
    assert_error(
        session(other).post(f"/api/v1/api-keys/{key['id']}/revoke", {"otp": totp_code(other.device)}, format="json"),
        404,
        "not_found",
    )
    assert_error(session(trader).post(f"{KEYS}/{key['id']}/revoke", {}, format="json"), 400, "validation_error")


def test_the_ip_allowlist(trader):
    key = make_key(trader, ip_allowlist=["203.0.113.0/24"])
    refused, _ = signed(key, "GET", "/api/v1/balances", ip="127.0.0.1")
    assert_error(refused, 403, "ip_not_allowed")
    allowed, _ = signed(key, "GET", "/api/v1/balances", ip="203.0.113.7")
    assert allowed.status_code == 200


def test_a_key_cannot_manage_the_account(trader):
    key = make_key(trader)
    for path, body in (
        ("/api/v1/api-keys", {"label": "more", "scopes": ["read"], "otp": "000000"}),
        ("/api/v1/auth/password", {"current_password": "x", "new_password": "y"}),
        ("/api/v1/auth/2fa/disable", {"password": "x"}),
    ):
        response, _ = signed(key, "POST", path, body)
        assert_error(response, 403, "scope_required")
    listing, _ = signed(key, "GET", "/api/v1/api-keys")
    assert_error(listing, 403, "scope_required")


@override_settings(API_KEYS_MAX_PER_USER=2)
def test_at_most_the_configured_number_of_active_keys(trader):
    first = make_key(trader)
    make_key(trader)
    next_time_step(trader.device)
    response = session(trader).post(
        "/api/v1/api-keys", {"label": "third", "scopes": ["read"], "otp": totp_code(trader.device)}, format="json"
    )
    assert_error(response, 409, "api_key_limit_reached")
    next_time_step(trader.device)
    session(trader).post(f"/api/v1/api-keys/{first['id']}/revoke", {"otp": totp_code(trader.device)}, format="json")
    make_key(trader)  # a revoked key makes room


@pytest.mark.django_db(transaction=True)
def test_a_signed_request_over_real_http(live_server, markets):  # noqa: F811
    """The same signing over a real HTTP server, with a query string, as the README's example."""
    user = funded_trader()
    user.device = enable_totp(user)
    key = make_key(user, scopes=["read"])
    path = "/api/v1/orders?status=all&symbol=BTC-USDT"
    ts = str(int(time.time() * 1000))
    response = requests.get(
        live_server.url + path,
        headers={
            "X-API-KEY": key["key"],
            "X-API-TIMESTAMP": ts,
            "X-API-SIGNATURE": api_keys.sign(key["secret"], ts, "GET", path),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 0


def _readme_block(language: str, containing: str) -> str:
    """The README's ``language`` code block that contains ``containing``, unindented."""
    import re
    import textwrap
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", readme, flags=re.DOTALL | re.MULTILINE)
    [code] = [textwrap.dedent(body) for _indent, body in blocks if containing in body]
    return code


@pytest.mark.django_db(transaction=True)
def test_the_readmes_python_and_curl_signing_examples_work_as_written(live_server, markets):  # noqa: F811
    """The README's examples, run as a bot's author would paste them (only the key, secret and
    address filled in): the Python one lists orders and places one, the curl one reads balances."""
    import subprocess

    from orders.models import SpotOrder

    user = funded_trader(usdt="10000")
    user.device = enable_totp(user)
    key = make_key(user, scopes=["read", "trade"])

    python = _readme_block("python", "def call(method")
    assert 'KEY, SECRET, BASE = "<key>", "<secret>", "http://127.0.0.1:8000"' in python
    python = python.replace('"<key>"', repr(key["key"])).replace('"<secret>"', repr(key["secret"]))
    python = python.replace('"http://127.0.0.1:8000"', repr(live_server.url))
    python = python.replace(
        'call("GET", "/api/v1/orders?status=open")', 'listed = call("GET", "/api/v1/orders?status=open")'
    )
    python = python.replace('call(\n    "POST"', 'placed = call(\n    "POST"')
    scope: dict = {}
    exec(compile(python, "README.md (python)", "exec"), scope)  # our own README's example
    assert scope["listed"]["count"] == 0, scope["listed"]
    placed = scope["placed"]
    assert placed["symbol"] == "BTC-USDT" and placed["side"] == "buy", placed
    order = SpotOrder.objects.get(pk=placed["id"], user=user)
    assert (order.price, order.quantity) == (Decimal("60000"), Decimal("0.01"))

    shell = _readme_block("sh", "openssl dgst")
    shell = shell.replace("http://127.0.0.1:8000", live_server.url)
    done = subprocess.run(
        ["bash", "-c", shell],
        env={"PATH": "/usr/bin:/bin", "KEY": key["key"], "SECRET": key["secret"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    balances = {row["asset"]: row for row in json.loads(done.stdout)}
    assert balances["USDT"]["total"].startswith("10000"), balances
    assert ApiKey.objects.get(pk=key["id"]).last_used_at is not None
