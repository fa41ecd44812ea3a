"""The withdrawal address book and whitelist-only mode (API.md "Account safety"), API keys with
the withdraw scope, and a trader cancelling their own pending withdrawal."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import KycProfile, KycStatus, User
from ledger.models import Transfer, TransferKind, Withdrawal, WithdrawalAddress, WithdrawalStatus
from ledger.selectors import balance_of
from ledger.services import withdrawal_approve
from ledger.services.funding import WITHDRAWAL_FEES
from notifications.models import Notification
from risk.selectors import withdrawn_today
from tests.accounts.helpers import assert_error, next_time_step
from tests.accounts.test_api_keys import signed
from tests.factories import enable_totp, totp_code
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db

ADDRESSES = "/api/v1/withdrawal-addresses"
MODE = "/api/v1/withdrawal-addresses/mode"
WITHDRAWALS = "/api/v1/withdrawals"
BTC_BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
BTC_P2PKH = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
# the travel rule's details (asked for from 1,000 USD, or when no price is known)
BENEFICIARY = {"name": "Ada Trader", "wallet_type": "self_hosted", "ownership_attested": True}


def _code(device) -> str:
    next_time_step(device)
    return totp_code(device)


@pytest.fixture
def trader(user, fund):
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    device = enable_totp(user)
    fund(user, "BTC", "5")
    fund(user, "USDT", "1000")
    client = APIClient()
    client.force_authenticate(user)
    return SimpleNamespace(user=user, device=device, api=client)


def _age(entry_id: int, hours: float = 25) -> None:
    """As if the address had been added ``hours`` ago."""
    WithdrawalAddress.objects.filter(pk=entry_id).update(usable_at=timezone.now() - timedelta(hours=hours - 24))


def _withdraw(trader, address=BTC_BECH32, amount="0.001", asset="BTC"):
    return trader.api.post(
        WITHDRAWALS,
        {"asset": asset, "amount": amount, "address": address, "otp": _code(trader.device), "beneficiary": BENEFICIARY},
        format="json",
    )


def test_an_address_is_saved_listed_and_deleted(trader, other_user):
    before = timezone.now()
    response = trader.api.post(ADDRESSES, {"asset": "BTC", "address": BTC_BECH32, "label": " cold  wallet "})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["label"] == "cold wallet" and body["network"] == "bech32" and body["usable"] is False
    entry = WithdrawalAddress.objects.get(pk=body["id"])
    assert before + timedelta(hours=24) <= entry.usable_at <= timezone.now() + timedelta(hours=24)
    trader.api.post(ADDRESSES, {"asset": "ETH", "address": ETH_ADDRESS, "label": "metamask"})
    listed = trader.api.get(ADDRESSES).json()
    assert [(a["asset"], a["label"]) for a in listed] == [("BTC", "cold wallet"), ("ETH", "metamask")]
    assert AuditRecord.objects.filter(action="ledger.withdrawal_address_added", actor=trader.user).count() == 2
    notices = Notification.objects.filter(user=trader.user, kind="withdrawal_address_added").order_by("id")
    assert [n.title for n in notices] == ["Withdrawal address added: cold wallet", "Withdrawal address added: metamask"]
    assert BTC_BECH32 in notices[0].body and "If this was not you" in notices[0].body

    intruder = APIClient()
    intruder.force_authenticate(other_user)
    assert intruder.get(ADDRESSES).json() == []
    assert_error(intruder.delete(f"{ADDRESSES}/{body['id']}"), 404, "not_found")
    assert trader.api.delete(f"{ADDRESSES}/{body['id']}").status_code == 204
    assert_error(trader.api.delete(f"{ADDRESSES}/{body['id']}"), 404, "not_found")
    assert [a["label"] for a in trader.api.get(ADDRESSES).json()] == ["metamask"]


def test_bad_addresses_and_duplicates_are_refused(trader):
    assert_error(
        trader.api.post(ADDRESSES, {"asset": "BTC", "address": ETH_ADDRESS, "label": "x"}),
        400,
        "invalid_address",
        field="address",
    )
    assert_error(
        trader.api.post(ADDRESSES, {"asset": "DOGE", "address": BTC_BECH32, "label": "x"}), 400, "validation_error"
    )
    assert_error(
        trader.api.post(ADDRESSES, {"asset": "BTC", "address": BTC_BECH32, "label": "   "}, format="json"),
        400,
        "validation_error",
        field="label",
    )
    assert trader.api.post(ADDRESSES, {"asset": "ETH", "address": ETH_ADDRESS, "label": "a"}).status_code == 201
    # an ERC-20 address in another letter case is the same address
    assert_error(
        trader.api.post(ADDRESSES, {"asset": "ETH", "address": ETH_ADDRESS.lower(), "label": "b"}),
        409,
        "address_exists",
    )
    assert WithdrawalAddress.objects.filter(user=trader.user).count() == 1


def test_whitelist_only_binds_withdrawals_to_usable_addresses_of_the_book(trader):
    assert trader.api.get(MODE).json() == {"whitelist_only": False, "enforced": False, "enforced_until": None}
    assert _withdraw(trader, BTC_P2PKH).status_code == 201  # off: any valid address

    response = trader.api.put(MODE, {"whitelist_only": True}, format="json")
    assert response.status_code == 200 and response.json()["enforced"] is True
    assert_error(_withdraw(trader, BTC_P2PKH), 403, "address_not_whitelisted", field="address")

    entry = trader.api.post(ADDRESSES, {"asset": "BTC", "address": BTC_BECH32, "label": "cold"}).json()
    error = assert_error(_withdraw(trader, BTC_BECH32), 403, "address_not_yet_usable", field="address")
    assert "usable from" in error["message"]
    _age(entry["id"])
    assert _withdraw(trader, BTC_BECH32).status_code == 201
    # the address book is per asset
    assert_error(_withdraw(trader, "0x" + "ab" * 20, amount="10", asset="USDT"), 403, "address_not_whitelisted")
    assert Withdrawal.objects.filter(user=trader.user).count() == 2  # the first, and the whitelisted one


def test_turning_the_mode_off_needs_a_code_and_the_book_binds_through_the_cool_off(trader, user):
    trader.api.put(MODE, {"whitelist_only": True}, format="json")
    assert_error(trader.api.put(MODE, {"whitelist_only": False}, format="json"), 401, "otp_required")
    wrong = str((int(totp_code(trader.device)) + 1) % 1_000_000).zfill(6)
    assert_error(trader.api.put(MODE, {"whitelist_only": False, "otp": wrong}, format="json"), 401, "otp_invalid")
    assert User.objects.get(pk=user.pk).withdrawal_whitelist_only is True

    response = trader.api.put(MODE, {"whitelist_only": False, "otp": _code(trader.device)}, format="json")
    assert response.status_code == 200, response.content
    mode = response.json()
    assert mode["whitelist_only"] is False and mode["enforced"] is True and mode["enforced_until"]
    assert_error(_withdraw(trader, BTC_P2PKH), 403, "address_not_whitelisted")  # still in the cool-off

    User.objects.filter(pk=user.pk).update(withdrawal_whitelist_off_at=timezone.now() - timedelta(hours=25))
    user.refresh_from_db()  # the test client's signed-in user is this object
    assert trader.api.get(MODE).json() == {"whitelist_only": False, "enforced": False, "enforced_until": None}
    assert _withdraw(trader, BTC_P2PKH).status_code == 201
    told = Notification.objects.filter(user=user, kind="withdrawal_whitelist_changed").order_by("id")
    assert [n.data["enabled"] for n in told] == [True, False]
    assert "still binds withdrawals until" in told[1].body
    actions = set(AuditRecord.objects.filter(actor=user).values_list("action", flat=True))
    assert {"ledger.withdrawal_whitelist_on", "ledger.withdrawal_whitelist_off"} <= actions


def test_turning_the_mode_off_without_2fa_is_refused(user):
    client = APIClient()
    client.force_authenticate(user)
    assert client.put(MODE, {"whitelist_only": True}, format="json").status_code == 200
    assert_error(client.put(MODE, {"whitelist_only": False}, format="json"), 403, "two_factor_required")
    assert_error(client.put(MODE, {"whitelist_only": "maybe"}, format="json"), 400, "validation_error")


def test_a_withdraw_key_needs_the_mode_and_withdraws_only_to_the_book(trader):
    next_time_step(trader.device)
    body = {"label": "payout bot", "scopes": ["read", "withdraw"], "otp": totp_code(trader.device)}
    assert_error(trader.api.post("/api/v1/api-keys", body, format="json"), 409, "whitelist_required")

    trader.api.put(MODE, {"whitelist_only": True}, format="json")
    body["otp"] = _code(trader.device)
    response = trader.api.post("/api/v1/api-keys", body, format="json")
    assert response.status_code == 201, response.content
    key = response.json()

    # the mode cannot be turned off while a withdraw key is active
    assert_error(
        trader.api.put(MODE, {"whitelist_only": False, "otp": _code(trader.device)}, format="json"),
        409,
        "withdraw_key_active",
    )
    # a key cannot change the address book
    refused, _ = signed(key, "POST", ADDRESSES, {"asset": "BTC", "address": BTC_P2PKH, "label": "thief"})
    assert_error(refused, 403, "scope_required")

    entry = trader.api.post(ADDRESSES, {"asset": "BTC", "address": BTC_BECH32, "label": "cold"}).json()
    _age(entry["id"])
    request = {
        "asset": "BTC",
        "amount": "0.001",
        "address": BTC_P2PKH,
        "otp": _code(trader.device),
        "beneficiary": BENEFICIARY,
    }
    response, _ = signed(key, "POST", WITHDRAWALS, request)
    assert_error(response, 403, "address_not_whitelisted")
    response, _ = signed(key, "POST", WITHDRAWALS, {**request, "address": BTC_BECH32, "otp": _code(trader.device)})
    assert response.status_code == 201, response.content
    listed, _ = signed(key, "GET", ADDRESSES)
    assert [a["address"] for a in listed.json()] == [BTC_BECH32]


def test_a_pending_withdrawal_is_cancelled_once_and_its_hold_released(trader, django_capture_on_commit_callbacks):
    before = balance_of(user=trader.user, asset="BTC")
    withdrawal = _withdraw(trader).json()
    held = balance_of(user=trader.user, asset="BTC")
    assert held.held == Decimal("0.001") + WITHDRAWAL_FEES["BTC"]

    with django_capture_on_commit_callbacks(execute=True):
        response = trader.api.post(f"{WITHDRAWALS}/{withdrawal['id']}/cancel")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    after = balance_of(user=trader.user, asset="BTC")
    assert (after.available, after.held, after.total) == (before.available, Decimal(0), before.total)
    voids = Transfer.objects.filter(kind=TransferKind.VOID_PENDING, reference=f"withdrawal:{withdrawal['id']}")
    assert voids.count() == 2

    assert_error(trader.api.post(f"{WITHDRAWALS}/{withdrawal['id']}/cancel"), 409, "withdrawal_not_pending")
    assert voids.count() == 2  # released exactly once
    assert withdrawn_today(user=trader.user, asset="BTC") == 0  # no longer counts towards the daily limit
    notice = Notification.objects.get(user=trader.user, kind="withdrawal_updated", data__status="cancelled")
    assert notice.title.endswith("BTC cancelled") and notice.data["withdrawal_id"] == withdrawal["id"]
    assert AuditRecord.objects.filter(action="ledger.withdrawal_cancelled", actor=trader.user).count() == 1
    # staff can no longer approve it
    with pytest.raises(Exception, match="already cancelled"):
        withdrawal_approve(withdrawal_id=withdrawal["id"], actor=None)


def test_only_a_pending_withdrawal_of_ones_own_can_be_cancelled(trader, other_user):
    withdrawal = _withdraw(trader).json()
    intruder = APIClient()
    intruder.force_authenticate(other_user)
    assert_error(intruder.post(f"{WITHDRAWALS}/{withdrawal['id']}/cancel"), 404, "not_found")
    assert_error(trader.api.post(f"{WITHDRAWALS}/999999/cancel"), 404, "not_found")
    withdrawal_approve(withdrawal_id=withdrawal["id"], actor=None, network_txid="tx1")
    assert_error(trader.api.post(f"{WITHDRAWALS}/{withdrawal['id']}/cancel"), 409, "withdrawal_not_pending")
    assert Withdrawal.objects.get(pk=withdrawal["id"]).status == WithdrawalStatus.APPROVED


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_the_approval_resolves_the_hold_once(user, fund):
    KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    fund(user, "BTC", "1")
    from ledger.services import withdrawal_create
    from ledger.services.withdrawal_safety import withdrawal_cancel

    withdrawal = withdrawal_create(user=user, asset="BTC", amount=Decimal("0.1"), address=BTC_BECH32)
    outcomes = []
    barrier = threading.Barrier(2)

    def run(action):
        barrier.wait()
        try:
            action()
            outcomes.append("ok")
        except Exception as exc:  # the loser is refused
            outcomes.append(getattr(exc, "code", repr(exc)))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(lambda: withdrawal_cancel(user=user, withdrawal_id=withdrawal.pk),)),
        threading.Thread(target=run, args=(lambda: withdrawal_approve(withdrawal_id=withdrawal.pk, actor=None),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "withdrawal_not_pending"], outcomes
    resolutions = Transfer.objects.filter(reference=f"withdrawal:{withdrawal.pk}").exclude(kind=TransferKind.PENDING)
    assert resolutions.count() == 2
    assert balance_of(user=user, asset="BTC").held == 0


def test_the_wallet_page_saves_an_address_toggles_the_mode_and_cancels(trader):
    client = Client()
    client.force_login(trader.user)
    page = client.get("/wallet/")
    assert b'id="address-book"' in page.content and b"Whitelist-only off" in page.content
    response = client.post("/wallet/addresses/", {"asset": "BTC", "label": "cold", "address": BTC_BECH32})
    assert response.status_code == 302
    bad = client.post("/wallet/addresses/", {"asset": "BTC", "label": "x", "address": "nope"})
    assert bad.status_code == 400 and b"Invalid address format." in bad.content
    assert client.post("/wallet/addresses/mode/", {"whitelist_only": "on"}).status_code == 302
    page = client.get("/wallet/")
    assert b"Whitelist-only on" in page.content and b"cold" in page.content

    entry = WithdrawalAddress.objects.get(user=trader.user)
    _age(entry.pk)
    withdrawal = _withdraw(trader).json()
    page = client.get("/wallet/")
    assert f'action="/wallet/withdrawals/{withdrawal["id"]}/cancel/"'.encode() in page.content
    assert client.post(f"/wallet/withdrawals/{withdrawal['id']}/cancel/").status_code == 302
    assert Withdrawal.objects.get(pk=withdrawal["id"]).status == WithdrawalStatus.CANCELLED
    page = client.get("/wallet/")
    assert f'action="/wallet/withdrawals/{withdrawal["id"]}/cancel/"'.encode() not in page.content
