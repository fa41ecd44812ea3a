"""Every security and money event leaves one audit record, written by the real services."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import receivers
from accounts import services as accounts_services
from accounts.models import KycProfile, KycStatus, User
from ledger import services as ledger_services
from tests.accounts.helpers import next_time_step, tiny_png
from tests.factories import DEFAULT_PASSWORD, totp_code
from tests.trading.audit_helpers import only, records
from trading.audit import audit_chain_verify

pytestmark = pytest.mark.django_db

ETH_ADDRESS = "0x" + "ab" * 20


def _kyc_document():
    return SimpleUploadedFile("passport.png", tiny_png(), content_type="image/png")


def _approved_with_funds(user, amount="1000"):
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    ledger_services.deposit_credit(user=user, asset="USDT", amount=amount, txid=f"fund-{user.pk}")


def test_kyc_submission_and_decisions_are_recorded(user, other_user, staff):
    accounts_services.kyc_submit(
        user=user, full_name="Ada Lovelace", country="gb", date_of_birth=dt.date(1990, 1, 2), document=_kyc_document()
    )
    submitted = only("kyc.submitted")
    profile = KycProfile.objects.get(user=user)
    assert (submitted.actor_id, submitted.actor_label) == (user.pk, user.email)
    assert (submitted.target_type, submitted.target_id) == ("accounts.kycprofile", str(profile.pk))
    assert submitted.data["user_id"] == user.pk
    # Personal data stays in the KYC profile, out of the append-only log.
    assert "Ada" not in json.dumps(submitted.data) and "1990" not in json.dumps(submitted.data)

    accounts_services.kyc_decide(profile_id=profile.pk, actor=staff, approve=True)
    approved = only("kyc.approved")
    assert (approved.actor_id, approved.actor_label) == (staff.pk, staff.email)
    assert approved.target_id == str(profile.pk)

    accounts_services.kyc_submit(
        user=other_user,
        full_name="Alan Turing",
        country="GB",
        date_of_birth=dt.date(1980, 6, 23),
        document=_kyc_document(),
    )
    other_profile = KycProfile.objects.get(user=other_user)
    accounts_services.kyc_decide(profile_id=other_profile.pk, actor=None, approve=False, reason="Blurry document")
    rejected = only("kyc.rejected")
    assert (rejected.actor_id, rejected.actor_label) == (None, "system")
    assert rejected.data["reason"] == "Blurry document"

    assert [r.action for r in records()] == ["kyc.submitted", "kyc.approved", "kyc.submitted", "kyc.rejected"]
    assert audit_chain_verify().ok


def test_two_factor_changes_are_recorded(user):
    accounts_services.two_factor_setup(user=user)
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    accounts_services.two_factor_confirm(user=user, otp=totp_code(pending))
    enabled = only("auth.2fa_enabled")
    assert (enabled.actor_id, enabled.target_type, enabled.target_id) == (user.pk, "accounts.user", str(user.pk))

    next_time_step(pending)
    accounts_services.two_factor_setup(user=user, password=DEFAULT_PASSWORD, otp=totp_code(pending))
    replacement = TOTPDevice.objects.get(user=user, confirmed=False)
    accounts_services.two_factor_confirm(user=user, otp=totp_code(replacement))
    assert only("auth.2fa_replaced").actor_id == user.pk

    next_time_step(replacement)
    accounts_services.two_factor_disable(user=user, password=DEFAULT_PASSWORD, otp=totp_code(replacement))
    assert only("auth.2fa_disabled").actor_id == user.pk
    assert audit_chain_verify().ok


def test_password_change_is_recorded_without_the_password(user):
    accounts_services.password_change(
        user=user, current_password=DEFAULT_PASSWORD, new_password="another-Secret-phrase-7", otp=None
    )
    record = only("auth.password_changed")
    assert (record.actor_id, record.target_id) == (user.pk, str(user.pk))
    stored = json.dumps([record.data, record.actor_label, record.target_id])
    assert "another-Secret-phrase-7" not in stored and DEFAULT_PASSWORD not in stored


def test_deposit_is_recorded_once_per_chain_transaction(user):
    transfer = ledger_services.deposit_credit(user=user, asset="BTC", amount="0.12500000", txid="chain-tx-1")
    ledger_services.deposit_credit(user=user, asset="BTC", amount="0.12500000", txid="chain-tx-1")  # watcher replays
    record = only("ledger.deposit")
    assert (record.actor_id, record.actor_label) == (None, "system")
    assert (record.target_type, record.target_id) == ("ledger.transfer", transfer.pk)
    assert record.data == {
        "user_id": user.pk,
        "asset": "BTC",
        "amount": "0.12500000",
        "txid": "chain-tx-1",
        "code": "deposit",
    }


def test_withdrawal_request_approval_and_rejection_are_recorded(user, staff):
    _approved_with_funds(user)
    first = ledger_services.withdrawal_create(user=user, asset="USDT", amount=Decimal("100"), address=ETH_ADDRESS)
    second = ledger_services.withdrawal_create(user=user, asset="USDT", amount=Decimal("50"), address=ETH_ADDRESS)
    requested = records("ledger.withdrawal_requested")
    assert [(r.actor_id, r.target_type, r.target_id) for r in requested] == [
        (user.pk, "ledger.withdrawal", str(first.pk)),
        (user.pk, "ledger.withdrawal", str(second.pk)),
    ]
    assert requested[0].data["amount"] == "100.000000" and requested[0].data["fee"] == "1.000000"
    assert requested[0].data["address"] == ETH_ADDRESS

    ledger_services.withdrawal_approve(withdrawal_id=first.pk, actor=staff, network_txid="0xfeed")
    approved = only("ledger.withdrawal_approved")
    assert (approved.actor_id, approved.actor_label, approved.target_id) == (staff.pk, staff.email, str(first.pk))
    assert approved.data["network_txid"] == "0xfeed" and approved.data["status"] == "approved"

    ledger_services.withdrawal_reject(withdrawal_id=second.pk, actor=staff, reason="Address on a sanctions list")
    rejected = only("ledger.withdrawal_rejected")
    assert (rejected.actor_id, rejected.target_id) == (staff.pk, str(second.pk))
    assert rejected.data["reason"] == "Address on a sanctions list"

    assert [r.action for r in records()] == [
        "ledger.deposit",
        "ledger.withdrawal_requested",
        "ledger.withdrawal_requested",
        "ledger.withdrawal_approved",
        "ledger.withdrawal_rejected",
    ]
    assert audit_chain_verify() == (True, 5, None, "")


def test_api_login_is_recorded_with_the_client_ip(api, user):
    response = api.post(
        "/api/v1/auth/token",
        {"email": user.email, "password": DEFAULT_PASSWORD},
        format="json",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 200, response.content
    record = only("auth.login")
    assert (record.actor_id, record.actor_label, record.target_id) == (user.pk, user.email, str(user.pk))
    assert record.ip == "203.0.113.9"
    assert record.data == {"path": "/api/v1/auth/token", "method": "token"}


def test_failed_login_records_the_attempted_email_never_the_password(api, user):
    wrong = "not-the-Password-42"
    response = api.post(
        "/api/v1/auth/token", {"email": user.email, "password": wrong}, format="json", REMOTE_ADDR="198.51.100.7"
    )
    assert response.status_code == 401
    response = api.post("/api/v1/auth/token", {"email": "nobody@example.com", "password": wrong}, format="json")
    assert response.status_code == 401

    known, unknown = records("auth.login_failed")
    assert (known.actor_id, known.actor_label) == (None, "anonymous")
    assert (known.target_type, known.target_id) == ("accounts.user", str(user.pk))
    assert known.data == {"email": user.email, "known_user": True}
    assert known.ip == "198.51.100.7"
    assert (unknown.target_id, unknown.data["email"], unknown.data["known_user"]) == ("", "nobody@example.com", False)
    for record in (known, unknown):
        stored = json.dumps([record.data, record.actor_label, record.target_type, record.target_id])
        assert wrong not in stored and "****" not in stored
    assert not records("auth.login")


def test_login_without_a_request(user):
    # (Sent by code paths with no request; axes' own receiver needs one, so call ours directly.)
    receivers.on_logged_in(sender=User, request=None, user=user)
    record = only("auth.login")
    assert (record.actor_id, record.ip, record.data) == (user.pk, None, {"path": "", "method": "password"})


def test_a_refused_2fa_code_is_recorded(api, user):
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    response = api.post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD, "otp": wrong}, format="json"
    )
    assert response.status_code == 401
    record = only("auth.otp_failed")
    assert record.actor_id == user.pk
    assert record.data == {"reason": "invalid"}
    assert audit_chain_verify()[0]
