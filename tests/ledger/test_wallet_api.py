"""Wallet API: balances, ledger history, deposit addresses, demo faucet (API.md "Wallet")."""

from decimal import Decimal

import pytest

from ledger.models import LedgerAccount, Transfer
from ledger.selectors import balance_of
from ledger.services.funding import FAUCET_AMOUNTS, address_network
from tests.accounts.helpers import assert_error

pytestmark = pytest.mark.django_db

BALANCES = "/api/v1/balances"
LEDGER = "/api/v1/ledger"
DEPOSIT_ADDRESS = "/api/v1/wallet/deposit-address"
FAUCET = "/api/v1/wallet/faucet"


def _by_asset(rows):
    return {row["asset"]: row for row in rows}


# --- balances ---------------------------------------------------------------------------------------


def test_balances_list_every_asset_as_decimal_strings_at_the_asset_scale(auth_api, fund):
    fund(auth_api.user, "USDT", "1000.5")
    fund(auth_api.user, "BTC", "0.015")

    response = auth_api.get(BALANCES)

    assert response.status_code == 200
    rows = response.json()
    assert [row["asset"] for row in rows] == ["USDT", "BTC", "ETH"]
    by_asset = _by_asset(rows)
    assert by_asset["USDT"] == {"asset": "USDT", "available": "1000.500000", "held": "0.000000", "total": "1000.500000"}
    assert by_asset["BTC"] == {"asset": "BTC", "available": "0.01500000", "held": "0.00000000", "total": "0.01500000"}
    assert by_asset["ETH"] == {"asset": "ETH", "available": "0.00000000", "held": "0.00000000", "total": "0.00000000"}
    for row in rows:
        for field in ("available", "held", "total"):
            assert isinstance(row[field], str), row


def test_balances_of_a_new_user_are_zero_for_every_asset(auth_api):
    response = auth_api.get(BALANCES)
    assert response.status_code == 200
    assert _by_asset(response.json()) == {
        "USDT": {"asset": "USDT", "available": "0.000000", "held": "0.000000", "total": "0.000000"},
        "BTC": {"asset": "BTC", "available": "0.00000000", "held": "0.00000000", "total": "0.00000000"},
        "ETH": {"asset": "ETH", "available": "0.00000000", "held": "0.00000000", "total": "0.00000000"},
    }


def test_balances_show_only_the_callers_money(auth_api, other_user, fund):
    fund(other_user, "USDT", "777")
    fund(auth_api.user, "USDT", "1")
    assert _by_asset(auth_api.get(BALANCES).json())["USDT"]["total"] == "1.000000"


# --- ledger history -----------------------------------------------------------------------------------


def test_ledger_is_paginated_newest_first_with_only_the_callers_transfers(auth_api, other_user, fund):
    own = [fund(auth_api.user, "USDT", f"{n}.25") for n in range(1, 56)]
    own.append(fund(auth_api.user, "ETH", "0.1"))
    others = [fund(other_user, "USDT", "5") for _ in range(3)]

    first = auth_api.get(LEDGER)
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == len(own)
    assert len(body["results"]) == 50
    assert body["next"] and body["previous"] is None
    second = auth_api.get(LEDGER, {"page": 2})
    assert second.status_code == 200
    rest = second.json()
    assert rest["next"] is None and rest["previous"]
    rows = body["results"] + rest["results"]

    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == {t.pk for t in own}
    assert not set(ids) & {t.pk for t in others}
    # newest first: the order the transfers were made in, reversed
    assert ids == [t.pk for t in reversed(own)]
    stamps = [row["created_at"] for row in rows]
    assert stamps == sorted(stamps, reverse=True)

    newest = rows[0]
    assert newest["asset"] == "ETH" and newest["amount"] == "0.10000000"
    assert newest["direction"] == "in" and newest["kind"] == "posted" and newest["status"] == "posted"
    assert newest["code"] == "deposit"
    oldest = rows[-1]
    assert oldest["amount"] == "1.250000"


def test_another_users_transfers_never_appear_in_the_ledger(auth_api, other_user, fund):
    fund(other_user, "BTC", "1")
    response = auth_api.get(LEDGER)
    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert response.json()["results"] == []


# --- deposit addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize("asset", ["BTC", "ETH", "USDT", "btc"])
def test_deposit_address_for_a_known_asset(auth_api, asset):
    response = auth_api.get(DEPOSIT_ADDRESS, {"asset": asset})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"asset", "network", "address", "demo"}
    assert body["asset"] == asset.upper()
    # the address is one the platform's own withdrawal validation accepts for that asset
    address_network(asset=body["asset"], address=body["address"])
    if body["asset"] == "BTC":
        assert body["address"].startswith("bc1q")
    else:
        assert body["address"].startswith("0x") and len(body["address"]) == 42
    # stable per user and asset
    assert auth_api.get(DEPOSIT_ADDRESS, {"asset": asset}).json() == body


def test_deposit_addresses_differ_between_users(auth_api, other_user, api):
    api.force_authenticate(other_user)
    mine = auth_api.get(DEPOSIT_ADDRESS, {"asset": "BTC"}).json()["address"]
    theirs = api.get(DEPOSIT_ADDRESS, {"asset": "BTC"}).json()["address"]
    assert mine != theirs


@pytest.mark.parametrize("query", [{"asset": "DOGE"}, {"asset": ""}, {}])
def test_deposit_address_for_an_unknown_asset_is_a_400(auth_api, query):
    response = auth_api.get(DEPOSIT_ADDRESS, query)
    assert_error(response, 400, "unknown_asset", field="asset")


# --- demo faucet --------------------------------------------------------------------------------------


def test_faucet_credits_test_funds_in_demo_mode(auth_api, settings):
    settings.DEMO_MODE = True

    response = auth_api.post(FAUCET, {"asset": "BTC"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["asset"] == "BTC"
    assert body["amount"] == f"{FAUCET_AMOUNTS['BTC']:.8f}"
    assert body["direction"] == "in" and body["code"] == "faucet" and body["status"] == "posted"
    assert Transfer.objects.filter(pk=body["id"], code="faucet").exists()
    assert balance_of(user=auth_api.user, asset="BTC").available == FAUCET_AMOUNTS["BTC"]
    assert _by_asset(auth_api.get(BALANCES).json())["BTC"]["available"] == "0.50000000"
    # a second tap is a new credit (each one has its own id)
    assert auth_api.post(FAUCET, {"asset": "BTC"}, format="json").status_code == 201
    assert balance_of(user=auth_api.user, asset="BTC").available == 2 * FAUCET_AMOUNTS["BTC"]


def test_faucet_is_refused_outside_demo_mode(auth_api, settings):
    settings.DEMO_MODE = False
    before = Transfer.objects.count()

    response = auth_api.post(FAUCET, {"asset": "USDT"}, format="json")

    assert_error(response, 403, "faucet_disabled")
    assert Transfer.objects.count() == before
    assert balance_of(user=auth_api.user, asset="USDT").total == Decimal(0)


def test_faucet_with_an_unknown_asset_is_a_400(auth_api, settings):
    settings.DEMO_MODE = True
    assert_error(auth_api.post(FAUCET, {"asset": "DOGE"}, format="json"), 400, "validation_error", field="asset")
    assert not LedgerAccount.objects.filter(user=auth_api.user).exists()


# --- authentication -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, data",
    [
        ("get", BALANCES, None),
        ("get", LEDGER, None),
        ("get", DEPOSIT_ADDRESS, {"asset": "BTC"}),
        ("post", FAUCET, {"asset": "BTC"}),
        ("get", "/api/v1/withdrawals", None),
        (
            "post",
            "/api/v1/withdrawals",
            {"asset": "BTC", "amount": "0.1", "address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
        ),
        ("get", "/api/v1/withdrawals/1", None),
    ],
)
def test_wallet_endpoints_need_authentication(api, settings, method, path, data):
    settings.DEMO_MODE = True
    kwargs = {"format": "json"} if method == "post" else {}
    response = getattr(api, method)(path, data, **kwargs)
    assert_error(response, 401, "not_authenticated")
    assert Transfer.objects.count() == 0
