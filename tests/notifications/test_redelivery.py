"""Every account and money event, through its real service, is one notification with one
delivery per enabled channel; told again (each signal the services sent is sent a second
time, as a redelivered event would be), it adds no message and no delivery.

The engine's fills, partial fills, cancels and triggers (tests/notifications/test_producers.py),
option fills, exercises, expiries and settlements (test_option_notices.py), risk alerts
(tests/risk/test_alerts.py), price alerts (test_alerts_flow.py) and digests
(tests/portfolio/test_digests.py) are replayed where they are produced."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import services as account_services
from accounts import signals as account_signals
from accounts.api_key_services import api_key_create
from accounts.models import KycProfile, KycStatus
from accounts.safety_services import withdrawal_whitelist_set
from ledger import services as ledger_services
from ledger import signals as ledger_signals
from ledger.services.withdrawal_safety import withdrawal_address_add, withdrawal_cancel
from notifications import kinds
from notifications.models import Delivery, Notification
from notifications.services import webhook_set
from tests.accounts.helpers import next_time_step
from tests.factories import totp_code

pytestmark = pytest.mark.django_db

ETH_ADDRESS = "0x" + "ab" * 20
SIGNALS = (
    account_signals.kyc_decided,
    account_signals.new_sign_in,
    account_signals.two_factor_changed,
    account_signals.password_changed,
    account_signals.api_key_changed,
    account_signals.withdrawal_whitelist_changed,
    ledger_signals.deposit_credited,
    ledger_signals.withdrawal_requested,
    ledger_signals.withdrawal_held,
    ledger_signals.withdrawal_decided,
    ledger_signals.withdrawal_sent,
    ledger_signals.withdrawal_address_added,
)


@pytest.fixture
def sent():
    """Every (signal, sender, kwargs) the services send while the test runs."""
    record = []

    def recorder(signal, sender, **kwargs):
        record.append((signal, sender, kwargs))

    for signal in SIGNALS:
        signal.connect(recorder, weak=False, dispatch_uid="test-redelivery")
    yield record
    for signal in SIGNALS:
        signal.disconnect(dispatch_uid="test-redelivery")


def snapshot(user):
    notes = {n.pk: n for n in Notification.objects.filter(user=user)}
    deliveries = sorted(Delivery.objects.filter(notification__user=user).values_list("notification_id", "channel"))
    return notes, deliveries


def test_every_account_and_money_event_is_one_message_per_enabled_channel_even_told_twice(user, staff, sent):
    webhook_set(user=user, url="https://hooks.example.com/meridian")

    # KYC, money in and out (before the security changes: a new password pauses withdrawals)
    KycProfile.objects.filter(user=user).update(status=KycStatus.PENDING)
    account_services.kyc_decide(profile_id=KycProfile.objects.get(user=user).pk, actor=staff, approve=True)
    ledger_services.deposit_credit(user=user, asset="USDT", amount=Decimal("1000"), txid="chain-tx-1")
    approved, sent_later, rejected, cancelled = (
        ledger_services.withdrawal_create(user=user, asset="USDT", amount=Decimal(amount), address=ETH_ADDRESS)
        for amount in ("100", "75", "50", "25")
    )
    ledger_services.withdrawal_approve(withdrawal_id=approved.pk, actor=staff, network_txid="0xfeed")
    ledger_services.withdrawal_approve(withdrawal_id=sent_later.pk, actor=staff)
    ledger_services.withdrawal_sent_record(withdrawal_id=sent_later.pk, actor=staff, network_txid="0xbeef")
    ledger_services.withdrawal_reject(withdrawal_id=rejected.pk, actor=staff, reason="Address on a sanctions list")
    withdrawal_cancel(user=user, withdrawal_id=cancelled.pk)
    # security: 2FA on, a new sign-in, an API key, the address book, whitelist-only, the password
    setup = account_services.two_factor_setup(user=user)
    assert setup.secret
    device = user.totpdevice_set.get(confirmed=False)
    account_services.two_factor_confirm(user=user, otp=totp_code(device))
    device.refresh_from_db()
    account_signals.new_sign_in.send(
        sender=type(user), user=user, login_id=987654, ip="203.0.113.9", user_agent="curl/8.5", at=timezone.now()
    )
    next_time_step(device)
    api_key_create(user=user, label="grid bot", scopes=["read"], otp=totp_code(device))
    withdrawal_address_add(user=user, asset="USDT", address=ETH_ADDRESS, label="cold wallet")
    withdrawal_whitelist_set(user=user, enabled=True)
    account_services.password_set(user=user, new_password="another-Long-passphrase-77")

    notes, deliveries = snapshot(user)
    told = sorted((n.kind, n.data.get("status", "")) for n in notes.values())
    assert told == [
        ("2fa_enabled", ""),
        ("api_key_created", ""),
        ("deposit_credited", ""),
        ("kyc_approved", "approved"),
        ("new_sign_in", ""),
        ("password_changed", ""),
        ("withdrawal_address_added", ""),
        ("withdrawal_updated", "approved"),
        ("withdrawal_updated", "approved"),
        ("withdrawal_updated", "cancelled"),
        ("withdrawal_updated", "rejected"),
        ("withdrawal_updated", "requested"),
        ("withdrawal_updated", "requested"),
        ("withdrawal_updated", "requested"),
        ("withdrawal_updated", "requested"),
        ("withdrawal_updated", "sent"),
        ("withdrawal_whitelist_changed", ""),
    ]
    # One delivery per channel the kind's defaults enable: in-app (listed), email, webhook.
    expected = []
    for pk, note in notes.items():
        assert note.in_app
        expected.append((pk, kinds.WEBHOOK))
        if kinds.default(note.kind, kinds.EMAIL):
            expected.append((pk, kinds.EMAIL))
    assert deliveries == sorted(expected)
    assert sum(channel == kinds.EMAIL for _, channel in deliveries) == len(notes)  # each of these is emailed

    # Every event told again, as a redelivery would: nothing new anywhere.
    first = list(sent)
    assert {signal for signal, _, _ in first} >= set(SIGNALS) - {ledger_signals.withdrawal_held}
    for signal, sender, kwargs in first:
        signal.send(sender=sender, **kwargs)
    assert snapshot(user) == (notes, deliveries)
