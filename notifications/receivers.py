"""Turns account and money events into notifications. The signals are sent inside the
event's transaction, so the message commits with the event, and its key makes a repeat
of the same event a no-op."""

import uuid
from datetime import UTC

from django.dispatch import receiver

from accounts import signals
from accounts.models import KycStatus
from ledger import signals as ledger_signals
from ledger.models import WithdrawalStatus
from trading.formatting import display_amount, sentence
from trading.money import fmt

from .services import notify


@receiver(signals.kyc_decided)
def on_kyc_decided(sender, profile, actor=None, **kwargs):
    key = f"kyc:{profile.pk}:{profile.status}:{profile.decided_at.isoformat() if profile.decided_at else uuid.uuid4()}"
    if profile.status == KycStatus.APPROVED:
        notify(
            user=profile.user,
            kind="kyc_approved",
            title="Identity verified",
            body="Your identity verification was approved. Withdrawals and higher limits are now available.",
            dedupe_key=key,
            data={"status": profile.status},
        )
    else:
        notify(
            user=profile.user,
            kind="kyc_rejected",
            title="Identity verification rejected",
            body=f"Reason: {sentence(profile.rejection_reason or 'not given')} "
            "You can correct your details and submit again.",
            dedupe_key=key,
            data={"status": profile.status, "reason": profile.rejection_reason},
        )


@receiver(signals.new_sign_in)
def on_new_sign_in(sender, user, login_id, ip, user_agent, at, **kwargs):
    from accounts.devices import describe
    from trading.formatting import utc_string

    device = describe(user_agent)
    when = f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    notify(
        user=user,
        kind="new_sign_in",
        title="New sign-in to your account",
        body=(
            f"Signed in from {ip or 'an unknown address'} on {device}, {when}. If this was not you, change your "
            "password, turn on two-factor authentication and contact support immediately."
        ),
        dedupe_key=f"sign_in:{login_id}",
        data={"ip": ip, "device": device, "user_agent": user_agent, "at": utc_string(at), "login_id": login_id},
    )


@receiver(signals.two_factor_changed)
def on_two_factor_changed(sender, user, change, change_id=None, **kwargs):
    titles = {
        "enabled": "Two-factor authentication turned on",
        "replaced": "Your authenticator device was replaced",
        "disabled": "Two-factor authentication turned off",
    }
    notify(
        user=user,
        kind=f"2fa_{change}",
        title=titles[change],
        body="If this was not you, contact support immediately.",
        # keyed by the change's audit record: the same change told again is one message
        dedupe_key=f"2fa:{change}:{change_id if change_id is not None else uuid.uuid4().hex}",
        data={"change": change},
    )


@receiver(signals.api_key_changed)
def on_api_key_changed(sender, api_key, change, **kwargs):
    scopes = ", ".join(api_key.scopes)
    allowlist = ", ".join(api_key.ip_allowlist) or "any address"
    if change == "created":
        title = f"API key created: {api_key.label}"
        body = (
            f"Scopes: {scopes}. Usable from: {allowlist}. "
            "If this was not you, revoke it on your account page and contact support immediately."
        )
    else:
        title = f"API key revoked: {api_key.label}"
        body = "It no longer works. Requests signed with it are refused."
    notify(
        user=api_key.user,
        kind=f"api_key_{change}",
        title=title,
        body=body,
        dedupe_key=f"api_key:{api_key.pk}:{change}",
        data={"api_key_id": api_key.pk, "label": api_key.label, "scopes": list(api_key.scopes), "change": change},
    )


@receiver(signals.withdrawal_whitelist_changed)
def on_withdrawal_whitelist_changed(sender, user, enabled, enforced_until=None, change_id=None, **kwargs):
    if enabled:
        title = "Whitelist-only withdrawals turned on"
        body = "Withdrawals now go only to the addresses in your address book."
    else:
        title = "Whitelist-only withdrawals turned off"
        until = f" until {enforced_until:%Y-%m-%d %H:%M} UTC" if enforced_until else ""
        body = (
            f"Your address book still binds withdrawals{until}. If this was not you, turn it back on and "
            "contact support immediately."
        )
    # keyed by the change's audit record (turning it off also by its moment, for older callers)
    stamp = user.withdrawal_whitelist_off_at if not enabled else None
    which = change_id if change_id is not None else (stamp.isoformat() if stamp else uuid.uuid4().hex)
    notify(
        user=user,
        kind="withdrawal_whitelist_changed",
        title=title,
        body=body,
        dedupe_key=f"withdrawal_whitelist:{user.pk}:{'on' if enabled else 'off'}:{which}",
        data={"enabled": enabled, "enforced_until": enforced_until.isoformat() if enforced_until else None},
    )


@receiver(ledger_signals.withdrawal_address_added)
def on_withdrawal_address_added(sender, entry, **kwargs):
    notify(
        user=entry.user,
        kind="withdrawal_address_added",
        title=f"Withdrawal address added: {entry.label}",
        body=f"{entry.asset} address {entry.address} is in your address book, usable from "
        f"{entry.usable_at:%Y-%m-%d %H:%M} UTC. If this was not you, delete it on your Wallet page and contact "
        "support immediately.",
        dedupe_key=f"withdrawal_address:{entry.pk}:added",
        data={"address_id": entry.pk, "asset": entry.asset, "address": entry.address, "label": entry.label},
    )


@receiver(signals.password_changed)
def on_password_changed(sender, user, **kwargs):
    at = user.password_changed_at.isoformat() if user.password_changed_at else uuid.uuid4().hex
    notify(
        user=user,
        kind="password_changed",
        title="Your password was changed",
        body="If this was not you, contact support immediately. Withdrawals are paused for 24 hours.",
        dedupe_key=f"password:{at}",
    )


@receiver(ledger_signals.deposit_credited)
def on_deposit_credited(sender, user, transfer, txid, **kwargs):
    amount = fmt(transfer.asset, transfer.amount)
    shown = display_amount(transfer.amount, transfer.asset)
    notify(
        user=user,
        kind="deposit_credited",
        title=f"Deposit of {shown} {transfer.asset} credited",
        body=f"{shown} {transfer.asset} is now in your available balance (transaction {txid}).",
        dedupe_key=f"deposit:{transfer.id}",
        data={"asset": transfer.asset, "amount": amount, "txid": txid},
    )


def _withdrawal(withdrawal, status: str, title: str, body: str) -> None:
    amount = fmt(withdrawal.asset, withdrawal.amount)
    notify(
        user=withdrawal.user,
        kind="withdrawal_updated",
        title=title.format(amount=display_amount(withdrawal.amount, withdrawal.asset), asset=withdrawal.asset),
        body=body,
        dedupe_key=f"withdrawal:{withdrawal.pk}:{status}",
        data={
            "withdrawal_id": withdrawal.pk,
            "status": status,
            "asset": withdrawal.asset,
            "amount": amount,
            "address": withdrawal.address,
            "network_txid": withdrawal.network_txid,
        },
    )


@receiver(ledger_signals.withdrawal_requested)
def on_withdrawal_requested(sender, withdrawal, **kwargs):
    _withdrawal(
        withdrawal,
        "requested",
        "Withdrawal of {amount} {asset} requested",
        f"To {withdrawal.address}. It is held from your balance until it is reviewed. If this was not you, "
        "contact support immediately.",
    )
    if withdrawal.status == WithdrawalStatus.AML_REVIEW:
        _withdrawal_review(withdrawal)


@receiver(ledger_signals.withdrawal_held)
def on_withdrawal_held(sender, withdrawal, **kwargs):
    _withdrawal_review(withdrawal)


def _withdrawal_review(withdrawal) -> None:
    _withdrawal(
        withdrawal,
        "aml_review",
        "Withdrawal of {amount} {asset} held for review",
        "Our compliance team reviews it before it is sent; the amount stays held meanwhile and we may "
        "contact you. You cannot cancel it during the review.",
    )


@receiver(ledger_signals.withdrawal_sent)
def on_withdrawal_sent(sender, withdrawal, actor=None, **kwargs):
    _withdrawal(
        withdrawal,
        "sent",
        "Withdrawal of {amount} {asset} sent",
        f"To {withdrawal.address}. Network transaction: {withdrawal.network_txid}.",
    )


@receiver(ledger_signals.withdrawal_decided)
def on_withdrawal_decided(sender, withdrawal, actor=None, **kwargs):
    if withdrawal.status == WithdrawalStatus.APPROVED:
        if withdrawal.network_txid:
            # approved with its network transaction: approved and sent at once, one message
            _withdrawal(
                withdrawal,
                "approved",
                "Withdrawal of {amount} {asset} approved and sent",
                f"To {withdrawal.address}. Network transaction: {withdrawal.network_txid}.",
            )
        else:
            # the send follows (withdrawal_sent, with its network transaction)
            _withdrawal(
                withdrawal,
                "approved",
                "Withdrawal of {amount} {asset} approved",
                f"To {withdrawal.address}. It is on its way; we will tell you its network transaction when it is sent.",
            )
    elif withdrawal.status == WithdrawalStatus.CANCELLED:
        _withdrawal(
            withdrawal,
            "cancelled",
            "Withdrawal of {amount} {asset} cancelled",
            f"You cancelled the withdrawal to {withdrawal.address}. The amount and fee are back in your available "
            "balance. If this was not you, contact support immediately.",
        )
    elif withdrawal.status == WithdrawalStatus.REJECTED:
        _withdrawal(
            withdrawal,
            "rejected",
            "Withdrawal of {amount} {asset} rejected",
            f"Reason: {sentence(withdrawal.rejection_reason or 'not given')} "
            "The amount is back in your available balance.",
        )
