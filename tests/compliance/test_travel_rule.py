"""The travel rule: a withdrawal worth TRAVEL_RULE_THRESHOLD_USD (1,000 USD) or more needs the
beneficiary's details (422 travel_rule_required naming each missing one), the VASP for a hosted
wallet and the trader's ownership attestation for a self-hosted one; the code is not spent by
the refusal, and the details are kept with the withdrawal and shown in the API and admin."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from accounts.models import KycProfile, KycStatus
from ledger.models import Withdrawal
from ledger.services import deposit_credit
from tests.accounts.helpers import assert_error, next_time_step
from tests.factories import enable_totp, totp_code
from tests.orders.conftest import print_index

pytestmark = pytest.mark.django_db

ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


@pytest.fixture
def trader(user):
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    device = enable_totp(user)
    for asset, amount in (("USDT", "10000"), ("BTC", "1")):
        deposit_credit(user=user, asset=asset, amount=Decimal(amount), txid=f"travel-{asset}-{user.pk}")
    return SimpleNamespace(user=user, device=device)


def withdraw(client, trader, *, asset="USDT", amount, address=ETH_ADDRESS, beneficiary=None, otp=True):
    next_time_step(trader.device)
    body = {"asset": asset, "amount": amount, "address": address}
    if otp:
        body["otp"] = totp_code(trader.device)
    if beneficiary is not None:
        body["beneficiary"] = beneficiary
    return client.post("/api/v1/withdrawals", body, format="json")


def test_below_the_threshold_nothing_is_asked(trader, auth_api):
    response = withdraw(auth_api, trader, amount="999.99")
    assert response.status_code == 201, response.content
    assert response.json()["beneficiary"] == {}


def test_at_the_threshold_the_beneficiary_is_required_and_the_code_stays_usable(trader, auth_api):
    next_time_step(trader.device)
    code = totp_code(trader.device)
    body = {"asset": "USDT", "amount": "1000", "address": ETH_ADDRESS, "otp": code}
    error = assert_error(auth_api.post("/api/v1/withdrawals", body, format="json"), 422, "travel_rule_required")
    assert set(error["fields"]) == {"beneficiary.name", "beneficiary.wallet_type"}
    assert "1,000.00 USD" in error["message"]
    assert not Withdrawal.objects.exists()
    # the refusal came before the code was checked: the same code works once the details are given
    body["beneficiary"] = {"name": "Grace Hopper", "wallet_type": "hosted", "vasp": "Example Exchange"}
    response = auth_api.post("/api/v1/withdrawals", body, format="json")
    assert response.status_code == 201, response.content
    stored = Withdrawal.objects.get()
    assert stored.beneficiary == {"name": "Grace Hopper", "wallet_type": "hosted", "vasp": "Example Exchange"}
    assert response.json()["beneficiary"] == stored.beneficiary


@pytest.mark.parametrize(
    "beneficiary, missing",
    [
        ({"name": "Grace Hopper", "wallet_type": "hosted"}, {"beneficiary.vasp"}),
        ({"name": "Grace Hopper", "wallet_type": "self_hosted"}, {"beneficiary.ownership_attested"}),
        (
            {"name": "Grace Hopper", "wallet_type": "self_hosted", "ownership_attested": False},
            {"beneficiary.ownership_attested"},
        ),
        ({"wallet_type": "hosted", "vasp": "X"}, {"beneficiary.name"}),
    ],
)
def test_each_missing_detail_is_named(trader, auth_api, beneficiary, missing):
    error = assert_error(
        withdraw(auth_api, trader, amount="2500", beneficiary=beneficiary), 422, "travel_rule_required"
    )
    assert set(error["fields"]) == missing


def test_a_self_hosted_wallet_with_the_attestation_is_stored_with_its_time(trader, auth_api):
    beneficiary = {"name": "Grace Hopper", "wallet_type": "self_hosted", "ownership_attested": True}
    response = withdraw(auth_api, trader, amount="2500", beneficiary=beneficiary)
    assert response.status_code == 201, response.content
    stored = Withdrawal.objects.get().beneficiary
    assert stored["ownership_attested"] is True and stored["attested_at"].endswith("Z")


def test_btc_is_valued_at_the_index(trader, auth_api):
    print_index("BTC", Decimal("65000"))
    # 0.015 BTC = 975 USD: below; 0.02 BTC = 1,300 USD: the rule applies
    assert withdraw(auth_api, trader, asset="BTC", amount="0.015", address=BTC_ADDRESS).status_code == 201
    above = withdraw(auth_api, trader, asset="BTC", amount="0.02", address=BTC_ADDRESS)
    assert_error(above, 422, "travel_rule_required")


def test_without_an_index_price_the_rule_applies(trader, auth_api):
    error = assert_error(
        withdraw(auth_api, trader, asset="BTC", amount="0.00001", address=BTC_ADDRESS), 422, "travel_rule_required"
    )
    assert "USD value is unknown" in error["message"]


@pytest.mark.parametrize(
    "beneficiary, field",
    [
        ({"name": "x" * 201, "wallet_type": "hosted", "vasp": "X"}, "beneficiary.name"),
        ({"name": "G", "wallet_type": "cold", "vasp": "X"}, "beneficiary.wallet_type"),
        ({"name": "G", "wallet_type": "self_hosted", "ownership_attested": "maybe"}, "beneficiary.ownership_attested"),
        ("Grace", "beneficiary"),
    ],
)
def test_malformed_details_are_a_400_naming_the_field(trader, auth_api, beneficiary, field):
    error = assert_error(withdraw(auth_api, trader, amount="2500", beneficiary=beneficiary), 400, "validation_error")
    assert any(key == field or key.startswith(field) for key in error["fields"]), error
    assert not Withdrawal.objects.exists()


def test_staff_see_the_details_in_the_admin(trader, auth_api, admin_client_otp):
    beneficiary = {"name": "Grace Hopper", "wallet_type": "hosted", "vasp": "Example Exchange"}
    assert withdraw(auth_api, trader, amount="2500", beneficiary=beneficiary).status_code == 201
    withdrawal = Withdrawal.objects.get()
    page = admin_client_otp.get(f"/admin/ledger/withdrawal/{withdrawal.pk}/change/").content.decode()
    assert "Grace Hopper" in page and "Example Exchange" in page


def test_the_wallet_page_asks_for_the_details_and_keeps_them(trader, client):
    client.force_login(trader.user)
    page = client.get("/wallet/").content.decode()
    assert 'name="beneficiary_name"' in page and 'name="wallet_type"' in page and 'name="vasp"' in page

    next_time_step(trader.device)
    form = {"asset": "USDT", "amount": "2500", "address": ETH_ADDRESS, "otp": totp_code(trader.device)}
    refused = client.post("/wallet/withdraw/", form)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "The name of the person or business receiving the funds." in html
    assert not Withdrawal.objects.exists()

    form.update(beneficiary_name="Grace Hopper", wallet_type="self_hosted", ownership_attested="on")
    response = client.post("/wallet/withdraw/", form)  # the same code: the refusal did not spend it
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = Withdrawal.objects.get().beneficiary
    assert stored["name"] == "Grace Hopper" and stored["wallet_type"] == "self_hosted" and stored["ownership_attested"]
