"""The API's bearer tokens: the trader's KYC profile travels with the user's read, and order
entry's risk checks take the tier from it instead of a statement of their own."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import KycProfile, KycStatus
from risk import selectors
from tests.factories import DEFAULT_PASSWORD
from tests.orders.spot.conftest import funded_trader, markets  # noqa: F401  (the markets fixture)
from tests.risk.helpers import limit_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("markets")]


def _bearer(user) -> APIClient:
    client = APIClient()
    answer = client.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert answer.status_code == 200, answer.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer.json()['access']}")
    return client


def _order(client, quantity="0.5"):
    body = {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "quantity": quantity, "price": "65000.00"}
    return client.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=f"jwt-{quantity}")


def _kyc_reads(sent) -> list[str]:
    return [q["sql"] for q in sent.captured_queries if '"accounts_kycprofile"' in q["sql"]]


def test_the_user_read_joins_the_kyc_profile_and_order_entry_reads_it_no_more():
    trader = funded_trader()
    KycProfile.objects.filter(user=trader).update(status=KycStatus.APPROVED)
    client = _bearer(trader)
    selectors.cache_clear()  # a tier cached by an earlier read would hide a statement of its own
    with CaptureQueriesContext(connection) as sent:
        answer = _order(client)
    assert answer.status_code == 201, answer.content
    (read,) = _kyc_reads(sent)  # one statement names the profile: the user's, joined
    assert 'FROM "accounts_user" LEFT OUTER JOIN "accounts_kycprofile"' in read


@pytest.mark.parametrize("status, allowed", [(KycStatus.APPROVED, True), (KycStatus.PENDING, False)])
def test_the_joined_tier_decides_the_tiers_limits(status, allowed):
    """Tier 1 may buy 1 BTC in one order, everyone else 0.1: the limit follows the profile
    read with the token's user."""
    limit_set("max_order_quantity", "0.1", target="BTC-USDT")
    limit_set("max_order_quantity", "1", tier=1, target="BTC-USDT")
    trader = funded_trader()
    KycProfile.objects.filter(user=trader).update(status=status)
    answer = _order(_bearer(trader))
    if allowed:
        assert answer.status_code == 201, answer.content
    else:
        assert answer.status_code == 422, answer.content
        assert answer.json()["error"]["code"] == "risk_limit", answer.content


def test_a_trader_without_a_profile_is_tier_zero():
    trader = funded_trader()
    KycProfile.objects.filter(user=trader).delete()
    limit_set("max_order_quantity", "0.1", target="BTC-USDT")
    limit_set("max_order_quantity", "1", tier=1, target="BTC-USDT")
    answer = _order(_bearer(trader))
    assert answer.status_code == 422, answer.content
    assert answer.json()["error"]["code"] == "risk_limit", answer.content
