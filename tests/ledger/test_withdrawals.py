"""Withdrawals: POST /api/v1/withdrawals and its guards (2FA, KYC, address, amount, limits,
security cooldown, idempotency), and the staff decision (service and admin actions)."""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts.models import KycProfile, KycStatus, User
from accounts.services import kyc_decide, password_change, two_factor_confirm, two_factor_disable, two_factor_setup
from ledger.models import LedgerAccount, SystemRole, Transfer, TransferRejection, Withdrawal, WithdrawalStatus
from ledger.selectors import balance_of
from ledger.services import withdrawal_approve, withdrawal_reject
from ledger.services.funding import WITHDRAWAL_FEES
from risk.selectors import limit_value
from tests.accounts.helpers import assert_error, next_time_step
from tests.factories import UserFactory, enable_totp, totp_code
from trading.errors import DomainError

pytestmark = pytest.mark.django_db

WITHDRAWALS = "/api/v1/withdrawals"
BALANCES = "/api/v1/balances"
ADMIN_CHANGELIST = "/admin/ledger/withdrawal/"

BTC_BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
BTC_P2PKH = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
BTC_P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
TRON_ADDRESS = "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7"


def _approve_kyc(user):
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)


def _code(device) -> str:
    """A code the server will accept now: forgets the device's last accepted time step (as if
    the next 30-second window had begun) and returns the current code."""
    next_time_step(device)
    return totp_code(device)


@pytest.fixture
def trader(user, fund):
    """The ``user`` of ``auth_api``: KYC approved, 2FA on, 1000 USDT, 5 BTC and 50 ETH."""
    _approve_kyc(user)
    device = enable_totp(user)
    fund(user, "USDT", "1000")
    fund(user, "BTC", "5")
    fund(user, "ETH", "50")
    return SimpleNamespace(user=user, device=device)


# The travel rule's details, sent with every withdrawal here (the rule itself is tested in
# tests/compliance/test_travel_rule.py): these tests are about the ledger's own guards.
BENEFICIARY = {"name": "Grace Hopper", "wallet_type": "hosted", "vasp": "Example Exchange"}


def _withdraw(client, *, asset="USDT", amount="100", address=ETH_ADDRESS, otp=None, key=None):
    body = {"asset": asset, "amount": amount, "address": address, "beneficiary": BENEFICIARY}
    if otp is not None:
        body["otp"] = otp
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(WITHDRAWALS, body, format="json", headers=headers)


def _snapshot():
    """Everything a refused withdrawal must leave untouched."""
    return (
        Withdrawal.objects.count(),
        Transfer.objects.count(),
        TransferRejection.objects.count(),
        sorted(
            LedgerAccount.objects.values_list(
                "pk", "debits_posted", "credits_posted", "debits_pending", "credits_pending"
            )
        ),
    )


def _fees(asset):
    """(posted balance, pending credits) of the fees role, summed over its buckets."""
    totals = LedgerAccount.objects.filter(role=SystemRole.FEES, asset=asset).aggregate(
        cp=Sum("credits_posted"), dp=Sum("debits_posted"), pending=Sum("credits_pending")
    )
    return (totals["cp"] or 0) - (totals["dp"] or 0), totals["pending"] or Decimal(0)


# --- refusals -----------------------------------------------------------------------------------------


def test_refused_without_two_factor(auth_api, user, fund):
    _approve_kyc(user)
    fund(user, "USDT", "1000")
    before = _snapshot()
    assert_error(_withdraw(auth_api, otp="123456"), 403, "two_factor_required")
    assert _snapshot() == before


def test_refused_without_an_otp(auth_api, trader):
    before = _snapshot()
    assert_error(_withdraw(auth_api), 401, "otp_required")
    assert_error(_withdraw(auth_api, otp=""), 401, "otp_required")
    assert _snapshot() == before


def test_refused_with_a_wrong_otp(auth_api, trader):
    good = totp_code(trader.device)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    before = _snapshot()
    assert_error(_withdraw(auth_api, otp=wrong), 401, "otp_invalid", field="otp")
    assert_error(_withdraw(auth_api, otp=_code(trader.device)[:5]), 401, "otp_invalid")
    assert _snapshot() == before


def test_a_used_otp_is_refused_the_second_time(auth_api, trader):
    code = _code(trader.device)
    assert _withdraw(auth_api, otp=code).status_code == 201
    before = _snapshot()
    assert_error(_withdraw(auth_api, otp=code), 401, "otp_invalid")
    assert _snapshot() == before


def test_refused_until_kyc_is_approved(auth_api, user, fund, staff):
    device = enable_totp(user)
    fund(user, "USDT", "1000")
    before = _snapshot()
    assert_error(_withdraw(auth_api, otp=_code(device)), 403, "kyc_required")
    KycProfile.objects.filter(user=user).update(status=KycStatus.PENDING)
    assert_error(_withdraw(auth_api, otp=_code(device)), 403, "kyc_required")
    assert _snapshot() == before

    kyc_decide(profile_id=user.kyc.pk, actor=staff, approve=True)
    response = _withdraw(auth_api, otp=_code(device))
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "asset, address",
    [
        ("BTC", BTC_BECH32),
        ("BTC", BTC_P2PKH),
        ("BTC", BTC_P2SH),
        ("ETH", ETH_ADDRESS),
        ("ETH", ETH_ADDRESS.lower()),
        ("USDT", ETH_ADDRESS),
        ("USDT", TRON_ADDRESS),
    ],
)
def test_valid_addresses_per_asset(auth_api, trader, asset, address):
    amount = {"BTC": "0.01", "ETH": "0.5", "USDT": "10"}[asset]
    response = _withdraw(auth_api, asset=asset, amount=amount, address=address, otp=_code(trader.device))
    assert response.status_code == 201, response.content
    assert response.json()["address"] == address


@pytest.mark.parametrize(
    "asset, address",
    [
        ("BTC", "garbage"),
        ("BTC", ETH_ADDRESS),
        ("BTC", TRON_ADDRESS),
        ("BTC", "bc1qAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ"),  # mixed into upper case: not bech32
        ("BTC", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT0"),  # "0" is not base58
        ("ETH", "garbage"),
        ("ETH", BTC_BECH32),
        ("ETH", TRON_ADDRESS),
        ("ETH", "0x52908400098527886E0F7030069857D2E4169EE"),  # 39 hex digits
        ("ETH", "0x52908400098527886E0F7030069857D2E4169EEZ"),
        ("USDT", "garbage"),
        ("USDT", BTC_BECH32),
        ("USDT", "T" + "0" * 33),
        ("USDT", "0x1234"),
        ("USDT", ETH_ADDRESS + "; DROP TABLE"),
    ],
)
def test_invalid_addresses_per_asset(auth_api, trader, asset, address):
    before = _snapshot()
    response = _withdraw(auth_api, asset=asset, amount="1", address=address, otp=_code(trader.device))
    assert_error(response, 400, "invalid_address", field="address")
    assert _snapshot() == before


@pytest.mark.parametrize(
    "asset, amount, code",
    [
        ("USDT", "10.1234567", "validation_error"),  # 7 places, USDT has 6
        ("BTC", "0.000000001", "validation_error"),  # 9 places, BTC has 8
        ("ETH", "1.123456789", "validation_error"),
        ("USDT", "0", "validation_error"),
        ("USDT", "0.000000", "validation_error"),
        ("USDT", "-5", "validation_error"),
        ("BTC", "-0.00000001", "validation_error"),
        ("USDT", 10.5, "validation_error"),  # a JSON float
        ("USDT", 1e2, "validation_error"),
        ("USDT", "abc", "validation_error"),
        ("USDT", "NaN", "validation_error"),
        ("USDT", "Infinity", "validation_error"),
        ("USDT", None, "validation_error"),
        ("USDT", ["1"], "validation_error"),
    ],
)
def test_bad_amounts_are_400(auth_api, trader, asset, amount, code):
    address = BTC_BECH32 if asset == "BTC" else ETH_ADDRESS
    before = _snapshot()
    response = _withdraw(auth_api, asset=asset, amount=amount, address=address, otp=_code(trader.device))
    assert_error(response, 400, code, field="amount")
    assert _snapshot() == before


@pytest.mark.parametrize("amount", ["1e40", "100000000000000000000000"])
def test_a_huge_amount_is_400_not_500(auth_api, trader, amount):
    before = _snapshot()
    response = _withdraw(auth_api, amount=amount, otp=_code(trader.device))
    assert_error(response, 400, "validation_error", field="amount")
    assert _snapshot() == before


def test_unknown_asset_is_400(auth_api, trader):
    assert_error(_withdraw(auth_api, asset="DOGE", otp=_code(trader.device)), 400, "validation_error", field="asset")


def test_over_the_daily_limit(auth_api, trader, staff):
    limit = limit_value("daily_withdrawal", target="BTC", tier=1, user_id=trader.user.pk)
    assert limit == Decimal("2")

    before = _snapshot()
    response = _withdraw(auth_api, asset="BTC", amount="2.5", address=BTC_BECH32, otp=_code(trader.device))
    error = assert_error(response, 400, "limit_exceeded", field="amount")
    assert _snapshot() == before

    first = _withdraw(auth_api, asset="BTC", amount="1.5", address=BTC_BECH32, otp=_code(trader.device))
    assert first.status_code == 201, first.content
    before = _snapshot()
    response = _withdraw(auth_api, asset="BTC", amount="0.6", address=BTC_BECH32, otp=_code(trader.device))
    error = assert_error(response, 400, "limit_exceeded", field="amount")
    assert "0.5" in error["fields"]["amount"][0]
    assert _snapshot() == before
    # exactly up to the limit is fine
    assert (
        _withdraw(auth_api, asset="BTC", amount="0.5", address=BTC_BECH32, otp=_code(trader.device)).status_code == 201
    )
    assert_error(
        _withdraw(auth_api, asset="BTC", amount="0.00000001", address=BTC_BECH32, otp=_code(trader.device)),
        400,
        "limit_exceeded",
    )
    # a rejected withdrawal gives its share of the limit back
    withdrawal_reject(withdrawal_id=first.json()["id"], actor=staff, reason="test")
    assert (
        _withdraw(auth_api, asset="BTC", amount="1.5", address=BTC_BECH32, otp=_code(trader.device)).status_code == 201
    )
    # the limit is per asset
    assert (
        _withdraw(auth_api, asset="ETH", amount="10", address=ETH_ADDRESS, otp=_code(trader.device)).status_code == 201
    )


def test_more_than_available_is_409_and_writes_nothing(auth_api, trader):
    before = _snapshot()
    # 1000 + fee 1 > 1000
    response = _withdraw(auth_api, amount="1000", otp=_code(trader.device))
    assert_error(response, 409, "insufficient_funds")
    assert _snapshot() == before
    assert not Withdrawal.objects.exists()
    assert not Transfer.objects.filter(code__startswith="withdrawal").exists()
    assert balance_of(user=trader.user, asset="USDT").available == Decimal("1000")

    # amount + fee == the whole balance is allowed
    response = _withdraw(auth_api, amount="999", otp=_code(trader.device))
    assert response.status_code == 201, response.content
    balance = balance_of(user=trader.user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal(0), Decimal(1000), Decimal(1000))
    before = _snapshot()
    assert_error(_withdraw(auth_api, amount="0.000001", otp=_code(trader.device)), 409, "insufficient_funds")
    assert _snapshot() == before


# --- a good withdrawal -------------------------------------------------------------------------------


def test_a_good_withdrawal_holds_amount_plus_fee(auth_api, trader):
    response = _withdraw(auth_api, asset="BTC", amount="0.25", address=BTC_BECH32, otp=_code(trader.device))

    assert response.status_code == 201, response.content
    body = response.json()
    fee = WITHDRAWAL_FEES["BTC"]
    assert body["status"] == "pending"
    assert body["asset"] == "BTC" and body["amount"] == "0.25000000" and body["fee"] == f"{fee:.8f}"
    assert body["address"] == BTC_BECH32
    withdrawal = Withdrawal.objects.get(pk=body["id"])
    assert withdrawal.user == trader.user and withdrawal.status == WithdrawalStatus.PENDING

    balances = {row["asset"]: row for row in auth_api.get(BALANCES).json()}
    held = Decimal("0.25") + fee
    assert balances["BTC"] == {
        "asset": "BTC",
        "available": f"{Decimal(5) - held:.8f}",
        "held": f"{held:.8f}",
        "total": "5.00000000",
    }
    assert _fees("BTC") == (0, fee)

    # the holds show in the trader's ledger as held, outgoing
    rows = auth_api.get("/api/v1/ledger").json()["results"]
    holds = [row for row in rows if row["kind"] == "pending"]
    assert {(row["code"], row["amount"], row["direction"], row["status"]) for row in holds} == {
        ("withdrawal", "0.25000000", "out", "held"),
        ("withdrawal_fee", f"{fee:.8f}", "out", "held"),
    }

    # readable by id, and listed
    detail = auth_api.get(f"{WITHDRAWALS}/{body['id']}")
    assert detail.status_code == 200 and detail.json() == body
    listed = auth_api.get(WITHDRAWALS).json()
    assert [w["id"] for w in listed["results"]] == [body["id"]]


def test_idempotency_key_replay_returns_the_same_withdrawal_without_a_second_hold(auth_api, trader):
    code = _code(trader.device)
    first = _withdraw(auth_api, amount="100", otp=code, key="wd-1")
    assert first.status_code == 201, first.content
    before = _snapshot()
    balances_before = auth_api.get(BALANCES).json()

    # the same request again, same (already used) code
    again = _withdraw(auth_api, amount="100", otp=code, key="wd-1")
    assert again.status_code == 201, again.content
    assert again.json()["id"] == first.json()["id"]
    assert again.json() == first.json()
    assert _snapshot() == before
    assert auth_api.get(BALANCES).json() == balances_before
    assert balance_of(user=trader.user, asset="USDT").held == Decimal("101")

    # the same key for a different withdrawal is a conflict
    assert_error(_withdraw(auth_api, amount="101", otp=_code(trader.device), key="wd-1"), 409, "idempotency_conflict")
    assert_error(
        _withdraw(auth_api, amount="100", address=TRON_ADDRESS, otp=_code(trader.device), key="wd-1"),
        409,
        "idempotency_conflict",
    )
    assert _snapshot() == before

    # a new key is a new withdrawal
    other = _withdraw(auth_api, amount="100", otp=_code(trader.device), key="wd-2")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert balance_of(user=trader.user, asset="USDT").held == Decimal("202")


def test_idempotency_keys_are_per_user(auth_api, trader, fund, api):
    first = _withdraw(auth_api, amount="100", otp=_code(trader.device), key="shared-key")
    assert first.status_code == 201

    other = UserFactory()
    _approve_kyc(other)
    device = enable_totp(other)
    fund(other, "USDT", "500")
    api.force_authenticate(other)
    second = _withdraw(api, amount="100", otp=_code(device), key="shared-key")
    assert second.status_code == 201, second.content
    assert second.json()["id"] != first.json()["id"]
    assert Withdrawal.objects.get(pk=second.json()["id"]).user == other


# --- security cooldown ---------------------------------------------------------------------------------


def test_locked_for_24h_after_a_password_change(auth_api, trader, password):
    password_change(
        user=trader.user, current_password=password, new_password="another-Strong-pass-77", otp=_code(trader.device)
    )
    assert User.objects.get(pk=trader.user.pk).password_changed_at is not None

    before = _snapshot()
    assert_error(_withdraw(auth_api, otp=_code(trader.device)), 403, "withdrawal_locked")
    assert _snapshot() == before

    # 23 hours later: still locked; 24 hours later: allowed again
    User.objects.filter(pk=trader.user.pk).update(password_changed_at=timezone.now() - timedelta(hours=23))
    assert_error(_withdraw(auth_api, otp=_code(trader.device)), 403, "withdrawal_locked")
    User.objects.filter(pk=trader.user.pk).update(password_changed_at=timezone.now() - timedelta(hours=24, minutes=1))
    assert _withdraw(auth_api, otp=_code(trader.device)).status_code == 201


def test_locked_when_password_changed_at_is_now(auth_api, trader):
    trader.user.password_changed_at = timezone.now()
    trader.user.save(update_fields=["password_changed_at"])
    assert_error(_withdraw(auth_api, otp=_code(trader.device)), 403, "withdrawal_locked")
    assert not Withdrawal.objects.exists()


def test_locked_for_24h_after_2fa_is_disabled_and_set_up_again(auth_api, trader, password):
    two_factor_disable(user=trader.user, password=password, otp=_code(trader.device))
    # with 2FA off: refused anyway
    assert_error(_withdraw(auth_api, otp="123456"), 403, "two_factor_required")

    two_factor_setup(user=trader.user)
    pending = TOTPDevice.objects.get(user=trader.user, confirmed=False)
    two_factor_confirm(user=trader.user, otp=totp_code(pending))

    before = _snapshot()
    assert_error(_withdraw(auth_api, otp=_code(pending)), 403, "withdrawal_locked")
    assert _snapshot() == before
    User.objects.filter(pk=trader.user.pk).update(otp_reset_at=timezone.now() - timedelta(hours=25))
    assert _withdraw(auth_api, otp=_code(pending)).status_code == 201


def test_locked_for_24h_after_2fa_is_replaced(auth_api, trader, password):
    two_factor_setup(user=trader.user, password=password, otp=_code(trader.device))
    pending = TOTPDevice.objects.get(user=trader.user, confirmed=False)
    two_factor_confirm(user=trader.user, otp=totp_code(pending))
    assert not TOTPDevice.objects.filter(pk=trader.device.pk).exists()
    assert User.objects.get(pk=trader.user.pk).otp_reset_at is not None

    assert_error(_withdraw(auth_api, otp=_code(pending)), 403, "withdrawal_locked")
    assert not Withdrawal.objects.exists()


def test_not_locked_after_enabling_2fa_for_the_first_time(auth_api, user, fund):
    _approve_kyc(user)
    fund(user, "USDT", "1000")
    two_factor_setup(user=user)
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    two_factor_confirm(user=user, otp=totp_code(pending))
    assert User.objects.get(pk=user.pk).otp_reset_at is None

    response = _withdraw(auth_api, otp=_code(pending))
    assert response.status_code == 201, response.content


# --- privacy -----------------------------------------------------------------------------------------


def test_another_users_withdrawal_is_404(auth_api, trader, api, other_user):
    created = _withdraw(auth_api, otp=_code(trader.device))
    assert created.status_code == 201
    withdrawal_id = created.json()["id"]

    api.force_authenticate(other_user)
    assert_error(api.get(f"{WITHDRAWALS}/{withdrawal_id}"), 404, "not_found")
    assert_error(api.get(f"{WITHDRAWALS}/{withdrawal_id + 1000}"), 404, "not_found")
    assert api.get(WITHDRAWALS).json()["results"] == []
    assert auth_api.get(f"{WITHDRAWALS}/{withdrawal_id}").status_code == 200


# --- staff decisions (services) -------------------------------------------------------------------------


@pytest.fixture
def pending_withdrawal(auth_api, trader):
    response = _withdraw(auth_api, amount="100", otp=_code(trader.device))
    assert response.status_code == 201, response.content
    return Withdrawal.objects.get(pk=response.json()["id"])


def test_approve_posts_the_holds(auth_api, trader, staff, pending_withdrawal):
    fee = WITHDRAWAL_FEES["USDT"]
    fees_before = _fees("USDT")
    assert fees_before == (0, fee)

    withdrawal = withdrawal_approve(withdrawal_id=pending_withdrawal.pk, actor=staff, network_txid="0xabc")

    assert withdrawal.status == WithdrawalStatus.APPROVED
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.APPROVED and withdrawal.decided_by == staff
    assert withdrawal.decided_at is not None and withdrawal.network_txid == "0xabc"
    balance = balance_of(user=trader.user, asset="USDT")
    assert balance.total == Decimal("1000") - Decimal("100") - fee
    assert balance.held == 0
    assert balance.available == balance.total
    assert _fees("USDT") == (fee, 0)
    assert auth_api.get(f"{WITHDRAWALS}/{withdrawal.pk}").json()["status"] == "approved"
    rows = auth_api.get("/api/v1/ledger").json()["results"]
    assert {row["status"] for row in rows if row["kind"] == "pending"} == {"released"}
    assert {(row["kind"], row["amount"]) for row in rows if row["kind"] == "post_pending"} == {
        ("post_pending", "100.000000"),
        ("post_pending", "1.000000"),
    }

    with pytest.raises(DomainError) as caught:
        withdrawal_approve(withdrawal_id=pending_withdrawal.pk, actor=staff)
    assert (caught.value.status, caught.value.code) == (409, "withdrawal_not_pending")
    with pytest.raises(DomainError) as caught:
        withdrawal_reject(withdrawal_id=pending_withdrawal.pk, actor=staff, reason="too late")
    assert (caught.value.status, caught.value.code) == (409, "withdrawal_not_pending")
    assert balance_of(user=trader.user, asset="USDT") == balance


def test_reject_voids_the_holds(auth_api, trader, staff, pending_withdrawal):
    with pytest.raises(DomainError) as caught:
        withdrawal_reject(withdrawal_id=pending_withdrawal.pk, actor=staff, reason="  ")
    assert caught.value.status == 400

    withdrawal = withdrawal_reject(
        withdrawal_id=pending_withdrawal.pk, actor=staff, reason="Address on a sanctions list"
    )

    assert withdrawal.status == WithdrawalStatus.REJECTED
    withdrawal.refresh_from_db()
    assert withdrawal.rejection_reason == "Address on a sanctions list" and withdrawal.decided_by == staff
    balance = balance_of(user=trader.user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal("1000"), 0, Decimal("1000"))
    assert _fees("USDT") == (0, 0)
    detail = auth_api.get(f"{WITHDRAWALS}/{withdrawal.pk}").json()
    assert detail["status"] == "rejected" and detail["rejection_reason"] == "Address on a sanctions list"

    for decide in (
        lambda: withdrawal_reject(withdrawal_id=pending_withdrawal.pk, actor=staff, reason="again"),
        lambda: withdrawal_approve(withdrawal_id=pending_withdrawal.pk, actor=staff),
    ):
        with pytest.raises(DomainError) as caught:
            decide()
        assert (caught.value.status, caught.value.code) == (409, "withdrawal_not_pending")
    assert balance_of(user=trader.user, asset="USDT") == balance


def test_deciding_an_unknown_withdrawal_is_not_found(staff, db):
    with pytest.raises(DomainError) as caught:
        withdrawal_approve(withdrawal_id=999_999, actor=staff)
    assert (caught.value.status, caught.value.code) == (404, "not_found")


# --- staff decisions (admin) ---------------------------------------------------------------------------


@pytest.fixture
def staff_client(admin_client_otp):
    assert admin_client_otp.get("/admin/").status_code == 200
    return admin_client_otp


def test_admin_without_otp_is_refused(staff, password):
    device = enable_totp(staff)
    client = Client()
    response = client.post(
        "/admin/login/",
        {"username": staff.email, "password": password, "otp_device": device.persistent_id, "next": "/admin/"},
    )
    assert response.status_code == 200  # the form again, with an error
    response = client.get(ADMIN_CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_changelist_lists_pending_withdrawals(staff_client, pending_withdrawal):
    response = staff_client.get(ADMIN_CHANGELIST)
    assert response.status_code == 200
    content = response.content.decode()
    assert pending_withdrawal.address in content
    assert "approve_selected" in content and "reject_selected" in content


def test_admin_approve_selected(staff_client, trader, pending_withdrawal):
    second = Withdrawal.objects.get(pk=_withdraw_for(trader, amount="50"))

    response = staff_client.post(
        ADMIN_CHANGELIST,
        {"action": "approve_selected", "_selected_action": [pending_withdrawal.pk, second.pk], "index": "0"},
    )

    assert response.status_code == 302, response.content[:2000]
    for withdrawal in (pending_withdrawal, second):
        withdrawal.refresh_from_db()
        assert withdrawal.status == WithdrawalStatus.APPROVED
        assert withdrawal.decided_by == staff_client.user
    balance = balance_of(user=trader.user, asset="USDT")
    assert (balance.total, balance.held) == (Decimal("1000") - Decimal("101") - Decimal("51"), 0)
    assert _fees("USDT") == (Decimal("2"), 0)

    # approving again changes nothing and says so
    response = staff_client.post(
        ADMIN_CHANGELIST,
        {"action": "approve_selected", "_selected_action": [pending_withdrawal.pk], "index": "0"},
        follow=True,
    )
    assert response.status_code == 200
    assert "already approved" in response.content.decode()
    assert balance_of(user=trader.user, asset="USDT") == balance


def test_admin_reject_selected_asks_for_a_reason(staff_client, trader, pending_withdrawal):
    data = {"action": "reject_selected", "_selected_action": [pending_withdrawal.pk], "index": "0"}

    page = staff_client.post(ADMIN_CHANGELIST, data)

    assert page.status_code == 200
    content = page.content.decode()
    assert "Reject withdrawals" in content and 'name="reason"' in content
    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.status == WithdrawalStatus.PENDING

    # the intermediate page posts back without "index"
    empty = staff_client.post(
        ADMIN_CHANGELIST, {"action": "reject_selected", "_selected_action": [pending_withdrawal.pk], "reason": ""}
    )
    assert empty.status_code == 200 and 'name="reason"' in empty.content.decode()
    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.status == WithdrawalStatus.PENDING

    response = staff_client.post(
        ADMIN_CHANGELIST,
        {"action": "reject_selected", "_selected_action": [pending_withdrawal.pk], "reason": "Suspicious destination"},
    )

    assert response.status_code == 302, response.content[:2000]
    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.status == WithdrawalStatus.REJECTED
    assert pending_withdrawal.rejection_reason == "Suspicious destination"
    assert pending_withdrawal.decided_by == staff_client.user
    balance = balance_of(user=trader.user, asset="USDT")
    assert (balance.available, balance.held, balance.total) == (Decimal("1000"), 0, Decimal("1000"))

    # rejecting again: refused, nothing changes
    response = staff_client.post(
        ADMIN_CHANGELIST,
        {"action": "reject_selected", "_selected_action": [pending_withdrawal.pk], "reason": "again"},
        follow=True,
    )
    assert "already rejected" in response.content.decode()
    assert balance_of(user=trader.user, asset="USDT") == balance


def test_admin_cannot_edit_or_delete_a_withdrawal(staff_client, pending_withdrawal):
    response = staff_client.post(
        f"{ADMIN_CHANGELIST}{pending_withdrawal.pk}/change/", {"status": "approved", "amount": "1"}
    )
    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.status == WithdrawalStatus.PENDING and pending_withdrawal.amount == Decimal("100")
    assert staff_client.get(f"{ADMIN_CHANGELIST}{pending_withdrawal.pk}/delete/").status_code == 403
    assert response.status_code in (200, 302, 403)


def _withdraw_for(trader, *, amount):
    client = APIClient()
    client.force_authenticate(trader.user)
    response = _withdraw(client, amount=amount, otp=_code(trader.device))
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_admin_records_an_approved_withdrawals_network_transaction(staff_client, trader, pending_withdrawal):
    from notifications.models import Notification

    staff_client.post(
        ADMIN_CHANGELIST, {"action": "approve_selected", "_selected_action": [pending_withdrawal.pk], "index": "0"}
    )
    data = {"action": "record_sent", "_selected_action": [pending_withdrawal.pk]}
    page = staff_client.post(ADMIN_CHANGELIST, {**data, "index": "0"})
    assert page.status_code == 200 and 'name="network_txid"' in page.content.decode()

    response = staff_client.post(ADMIN_CHANGELIST, {**data, "network_txid": "0xabc123"})
    assert response.status_code == 302, response.content[:2000]
    pending_withdrawal.refresh_from_db()
    assert (pending_withdrawal.status, pending_withdrawal.network_txid) == (WithdrawalStatus.APPROVED, "0xabc123")
    sent = Notification.objects.get(user=trader.user, kind="withdrawal_updated", data__status="sent")
    assert sent.body.endswith("Network transaction: 0xabc123.")

    # another transaction for the same withdrawal: refused and said so
    response = staff_client.post(ADMIN_CHANGELIST, {**data, "network_txid": "0xother"}, follow=True)
    assert "sent already" in response.content.decode()
    pending_withdrawal.refresh_from_db()
    assert pending_withdrawal.network_txid == "0xabc123"
