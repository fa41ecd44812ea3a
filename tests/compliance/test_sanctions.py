"""Sanctions screening: the list loaded from FollowTheMoney entities, names matched fuzzily at
the threshold, addresses exactly; a hit on a withdrawal refuses it with nothing held and opens
the trader's AML case (once); a hit on a KYC name opens a case without refusing."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from accounts.models import KycProfile, KycStatus
from compliance.models import AmlAlert, AmlCase, SanctionsAddress, SanctionsEntity, SanctionsListLoad
from compliance.sanctions import core
from compliance.sanctions.services import screen_address, screen_name
from ledger.models import Withdrawal
from ledger.selectors import balance_of
from ledger.services import deposit_credit
from tests.accounts.helpers import assert_error, next_time_step
from tests.factories import enable_totp, totp_code
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db

SANCTIONED_ETH = "0x5aB1c0ffee5aB1c0ffee5aB1c0ffee5aB1c0FfEe"
SANCTIONED_BTC = "bc1qq8r2c3x4v5n6m7k8j9h0g2f3d4s5a6z7x8c9v0l2"
CLEAN_ETH = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.fixture
def sample_list():
    call_command("sanctions_load", "--sample")


@pytest.fixture
def trader(user):
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED, full_name="Ada Lovelace")
    device = enable_totp(user)
    deposit_credit(user=user, asset="USDT", amount=Decimal("5000"), txid=f"sanctions-{user.pk}")
    return SimpleNamespace(user=user, device=device)


def withdraw(client, trader, *, address, amount="100", beneficiary=None):
    next_time_step(trader.device)
    body = {"asset": "USDT", "amount": amount, "address": address, "otp": totp_code(trader.device)}
    if beneficiary is not None:
        body["beneficiary"] = beneficiary
    return client.post("/api/v1/withdrawals", body, format="json")


def test_the_sample_list_loads_and_a_reload_replaces_it(sample_list, capsys):
    load = SanctionsListLoad.objects.get()
    assert (load.entities, load.addresses) == (4, 3)
    assert SanctionsEntity.objects.count() == 4 and SanctionsAddress.objects.count() == 3
    assert AuditRecord.objects.filter(action="compliance.sanctions_loaded").count() == 1
    call_command("sanctions_load", "--sample")
    assert SanctionsEntity.objects.count() == 4 and SanctionsListLoad.objects.count() == 2
    assert "Loaded 4 entities and 3 wallet addresses" in capsys.readouterr().out


def test_a_file_that_is_not_a_list_is_refused_and_the_old_list_stays(sample_list, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x", "schema": "Person"}\nnot json\n')
    with pytest.raises(Exception, match="not a FollowTheMoney list: line 2"):
        call_command("sanctions_load", str(bad))
    assert SanctionsEntity.objects.count() == 4


@pytest.mark.parametrize(
    "name, hit",
    [
        ("Viktor Oberhollenzer", True),
        ("OBERHOLLENZER, Viktor", True),  # order, case and punctuation do not matter
        ("Víktor Oberhollenzer", True),  # nor accents
        ("Victor Oberhollenser", True),  # 90: a spelling variant
        ("Margarete Quellinghast", True),  # 88.9: at the 88 threshold
        ("Margaret Quellinghaus", False),  # below it
        ("Viktor Ober", False),
        ("Ada Lovelace", False),
    ],
)
def test_names_hit_at_the_threshold_and_not_below(sample_list, name, hit):
    assert bool(screen_name(name)) is hit, screen_name(name)


def test_addresses_match_exactly_in_their_networks_case_rules():
    assert core.normalize_address(" 0xABCdef0000000000000000000000000000000001 ") == (
        "0xabcdef0000000000000000000000000000000001"
    )
    assert core.normalize_address("BC1QQ8R2C3") == "bc1qq8r2c3"
    assert core.normalize_address("1BoatSLRHtKNngkdXEeobR76b53LETtpyT") == "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"


def test_address_screening(sample_list):
    assert screen_address(SANCTIONED_ETH.lower()).entity.caption == "Viktor Oberhollenzer"
    assert screen_address(SANCTIONED_BTC.upper().replace("BC1Q", "bc1q")) is not None
    assert screen_address(CLEAN_ETH) is None


def test_a_withdrawal_to_a_listed_address_is_refused_held_nothing_and_opens_one_case(sample_list, trader, auth_api):
    before = balance_of(user=trader.user, asset="USDT")
    response = withdraw(auth_api, trader, address=SANCTIONED_ETH)
    error = assert_error(response, 403, "compliance_blocked")
    assert "sanction" not in error["message"].lower()  # the trader is not told why
    assert not Withdrawal.objects.filter(user=trader.user).exists()
    assert balance_of(user=trader.user, asset="USDT") == before
    alert = AmlAlert.objects.get(user=trader.user)
    assert (alert.rule_code, alert.band, alert.score) == ("sanctions", "address", 100)
    assert "sanctions:mx-sample-person-1" in alert.transactions
    case = AmlCase.objects.get(user=trader.user)
    assert case.status == "open" and case.score >= 100 and alert.case_id == case.pk

    again = withdraw(auth_api, trader, address=SANCTIONED_ETH)
    assert_error(again, 403, "compliance_blocked")
    assert AmlAlert.objects.filter(user=trader.user).count() == 1  # the same hit, the same alert
    assert AmlCase.objects.filter(user=trader.user).count() == 1

    # a clean address still goes through (staff decide about the trader in the case)
    assert withdraw(auth_api, trader, address=CLEAN_ETH).status_code == 201


def test_a_listed_beneficiary_name_is_refused(sample_list, trader, auth_api):
    beneficiary = {"name": "Halvorsen Brightwater Trading", "wallet_type": "hosted", "vasp": "Some Exchange"}
    response = withdraw(auth_api, trader, address=CLEAN_ETH, beneficiary=beneficiary)
    assert_error(response, 403, "compliance_blocked")
    alert = AmlAlert.objects.get(user=trader.user)
    assert alert.band == "beneficiary_name" and Decimal(alert.value) == Decimal(100)
    assert not Withdrawal.objects.filter(user=trader.user).exists()


def test_a_listed_kyc_name_opens_a_case_and_the_kyc_waits(
    sample_list, auth_api, user, eager_tasks, django_capture_on_commit_callbacks
):
    from tests.accounts.test_kyc import pdf_file

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_api.post(
            "/api/v1/kyc",
            {
                "full_name": "Viktor A. Oberhollenzer",
                "country": "DE",
                "date_of_birth": "1971-03-04",
                "document": pdf_file(),
            },
            format="multipart",
        )
    assert response.status_code == 201, response.content
    assert KycProfile.objects.get(user=user).status == KycStatus.PENDING
    alert = AmlAlert.objects.get(user=user)
    assert alert.band == "kyc_name" and alert.case is not None


def test_staff_see_the_list_in_the_admin(sample_list, admin_client_otp):
    loads = admin_client_otp.get("/admin/compliance/sanctionslistload/").content.decode()
    assert "sample.ftm.json" in loads
    found = admin_client_otp.get("/admin/compliance/sanctionsentity/?q=0x5ab1c0ffee").content.decode()
    assert "Viktor Oberhollenzer" in found and "Marguerite" not in found
