"""Deposits and withdrawals: the trader's money crossing the platform's edge."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import kyc_tier
from accounts.services import otp_check, two_factor_enabled
from trading import checks
from trading.audit import audit_append
from trading.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from trading.formatting import utc_string
from trading.money import check_asset, fmt, parse_amount

from .. import signals
from ..models import SystemRole, Transfer, TransferKind, Withdrawal, WithdrawalStatus
from .addresses import address_network
from .transfers import IdempotencyConflict, TransferRequest, system_account, transfers_execute, user_account
from .withdrawal_safety import withdrawal_address_check

WITHDRAWAL_FEES = {"USDT": Decimal("1"), "BTC": Decimal("0.0002"), "ETH": Decimal("0.003")}
SECURITY_COOLDOWN = timedelta(hours=24)
FAUCET_AMOUNTS = {"USDT": Decimal("10000"), "BTC": Decimal("0.5"), "ETH": Decimal("5")}

# --- deposits ---------------------------------------------------------------------------------------


def deposit_credit(*, user: User, asset: str, amount, txid: str | None = None, code: str = "deposit") -> Transfer:
    """Credit a deposit seen on chain. The txid makes it idempotent: the chain watcher may
    report the same transaction many times."""
    asset = check_asset(asset)
    amount = parse_amount(asset, amount)
    txid = (txid or "").strip() or uuid.uuid4().hex
    transfer_id = f"{code}:{asset}:{txid}"
    with transaction.atomic(durable=True):
        executed = transfers_execute(
            [
                TransferRequest(
                    id=transfer_id,
                    code=code,
                    asset=asset,
                    amount=amount,
                    debit=system_account(role=SystemRole.EXTERNAL, asset=asset, key=txid),
                    credit=user_account(user_id=user.pk, asset=asset),
                    reference=txid,
                )
            ]
        )
        [transfer] = executed
        # A chain watcher reports a transaction many times; only the first report is news.
        if not executed.replayed:
            audit_append(
                actor=None,
                action="ledger.deposit",
                target=transfer,
                data={
                    "user_id": user.pk,
                    "asset": transfer.asset,
                    "amount": fmt(transfer.asset, transfer.amount),
                    "txid": txid,
                    "code": transfer.code,
                },
            )
            signals.deposit_credited.send(sender=Transfer, user=user, transfer=transfer, txid=txid)
    return transfer


def faucet_credit(*, user: User, asset: str) -> Transfer:
    """Demo mode only: free test funds, clearly marked as such in the ledger."""
    if not settings.DEMO_MODE:
        raise Forbidden("The demo faucet is only available in demo mode.", code="faucet_disabled")
    asset = check_asset(asset)
    return deposit_credit(user=user, asset=asset, amount=FAUCET_AMOUNTS[asset], txid=uuid.uuid4().hex, code="faucet")


# --- withdrawals ------------------------------------------------------------------------------------


def withdrawal_request(
    *,
    user: User,
    asset: str,
    amount,
    address: str,
    otp: str | None,
    idempotency_key: str = "",
    beneficiary: dict | None = None,
    via_api_key: bool = False,
) -> Withdrawal:
    """A trader asks to withdraw: checks 2FA, KYC and the security cooldown, then holds the
    amount plus fee. A replayed Idempotency-Key returns the original withdrawal.

    Higher apps' rules run at two points (``trading.checks``): ``withdrawal_validate`` before
    the code is spent (compliance's travel rule: a refusal there keeps the code usable) and
    ``withdrawal_screen`` once it is accepted (sanctions screening)."""
    asset = check_asset(asset)
    amount = parse_amount(asset, amount)
    address = (address or "").strip()
    beneficiary = beneficiary_clean(beneficiary)
    if idempotency_key:
        existing = Withdrawal.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_withdrawal(existing, asset=asset, amount=amount, address=address)
    address_network(asset=asset, address=address)
    if not two_factor_enabled(user=user):
        raise Forbidden("Turn on two-factor authentication before withdrawing.", code="two_factor_required")
    # the address book's verdict before the code is spent (and again under the user's lock)
    withdrawal_address_check(user=user, asset=asset, address=address, via_api_key=via_api_key)
    # ``shared``: one dict the checks of this request may keep a read in for each other (the
    # trader's AML score, read by the screen and the review alike)
    facts = {"user": user, "asset": asset, "amount": amount, "address": address, "beneficiary": beneficiary,
             "shared": {}}  # fmt: skip
    checks.run("withdrawal_validate", **facts)
    if not otp:
        raise DomainError(
            "Confirm the withdrawal with a code from your authenticator.", code="otp_required", status=401
        )
    otp_check(user=user, otp=otp)
    checks.run("withdrawal_screen", **facts)
    # compliance may hold it for review (the trader's AML score): held all the same, decided by staff
    review = "; ".join(checks.collect("withdrawal_review", **facts))
    return withdrawal_create(
        user=user,
        asset=asset,
        amount=amount,
        address=address,
        idempotency_key=idempotency_key,
        beneficiary=beneficiary,
        via_api_key=via_api_key,
        review_reason=review,
    )


WALLET_TYPES = ("hosted", "self_hosted")


def beneficiary_clean(data) -> dict:
    """The travel rule's beneficiary as stored: ``{name, wallet_type, vasp?,
    ownership_attested?, attested_at?}``, or ``{}`` when none was given. Whether it is
    required is the travel rule's decision (compliance); its shape is checked here."""
    if data in (None, "", {}):
        return {}
    if not isinstance(data, dict):
        raise ValidationFailed("beneficiary must be an object.", fields={"beneficiary": ["An object."]})
    unknown = sorted(set(data) - {"name", "wallet_type", "vasp", "ownership_attested"})
    if unknown:
        raise ValidationFailed(
            f"Unknown beneficiary field {unknown[0]}.", fields={f"beneficiary.{unknown[0]}": ["Not a known field."]}
        )
    clean: dict = {}
    for key, limit in (("name", 200), ("vasp", 200)):
        value = data.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(" ".join(value.split())) > limit:
            raise ValidationFailed(
                f"beneficiary.{key} is too long or not text.",
                fields={f"beneficiary.{key}": [f"Text of at most {limit} characters."]},
            )
        if " ".join(value.split()):
            clean[key] = " ".join(value.split())
    wallet = data.get("wallet_type")
    if wallet not in (None, ""):
        if wallet not in WALLET_TYPES:
            raise ValidationFailed(
                "beneficiary.wallet_type must be hosted or self_hosted.",
                fields={"beneficiary.wallet_type": ["hosted or self_hosted."]},
            )
        clean["wallet_type"] = wallet
    attested = data.get("ownership_attested")
    if attested not in (None, False, True):
        raise ValidationFailed(
            "beneficiary.ownership_attested must be true or false.",
            fields={"beneficiary.ownership_attested": ["true or false."]},
        )
    if attested and clean.get("wallet_type") == "self_hosted":
        clean["ownership_attested"] = True
        clean["attested_at"] = utc_string(timezone.now())
    return clean


def _same_withdrawal(existing: Withdrawal, *, asset, amount, address) -> Withdrawal:
    if (existing.asset, existing.amount, existing.address) != (asset, amount, address):
        raise IdempotencyConflict("This Idempotency-Key was used for a different withdrawal.")
    return existing


def withdrawal_create(
    *,
    user: User,
    asset: str,
    amount: Decimal,
    address: str,
    idempotency_key: str = "",
    beneficiary: dict | None = None,
    via_api_key: bool = False,
    review_reason: str = "",
) -> Withdrawal:
    """The money part of a withdrawal, after the trader proved who they are.

    The user's row is locked first, so one user's withdrawals (and the daily limit sum the
    registered ``withdrawal`` checks compute) are decided one at a time; the ledger's
    conditional update refuses any overdraft.
    """
    tier = kyc_tier(user=user)
    if tier < 1:
        raise Forbidden("Complete identity verification (KYC) before withdrawing.", code="kyc_required")
    fee = WITHDRAWAL_FEES[asset]
    try:
        with transaction.atomic(durable=True):
            locked = User.objects.select_for_update().get(pk=user.pk)
            _check_cooldown(locked)
            withdrawal_address_check(user=locked, asset=asset, address=address, via_api_key=via_api_key)
            # the daily limit and any other rule a higher app registered (risk, compliance)
            checks.run("withdrawal", user=locked, asset=asset, amount=amount, address=address, tier=tier)
            withdrawal = Withdrawal.objects.create(
                user=locked,
                asset=asset,
                amount=amount,
                fee=fee,
                address=address,
                idempotency_key=idempotency_key,
                beneficiary=beneficiary or {},
                status=WithdrawalStatus.AML_REVIEW if review_reason else WithdrawalStatus.PENDING,
                review_reason=review_reason[:300],
            )
            account = user_account(user_id=user.pk, asset=asset)
            key = str(withdrawal.pk)
            transfers_execute(
                [
                    TransferRequest(
                        id=withdrawal.hold_id,
                        kind=TransferKind.PENDING,
                        code="withdrawal",
                        asset=asset,
                        amount=amount,
                        debit=account,
                        credit=system_account(role=SystemRole.EXTERNAL, asset=asset, key=key),
                        reference=f"withdrawal:{withdrawal.pk}",
                    ),
                    TransferRequest(
                        id=withdrawal.fee_hold_id,
                        kind=TransferKind.PENDING,
                        code="withdrawal_fee",
                        asset=asset,
                        amount=fee,
                        debit=account,
                        credit=system_account(role=SystemRole.FEES, asset=asset, key=key),
                        reference=f"withdrawal:{withdrawal.pk}",
                    ),
                ]
            )
            audit_append(
                actor=withdrawal.user,
                action="ledger.withdrawal_requested",
                target=withdrawal,
                data=_withdrawal_audit_data(withdrawal),
            )
            signals.withdrawal_requested.send(sender=Withdrawal, withdrawal=withdrawal)
    except IntegrityError:
        if idempotency_key:
            existing = Withdrawal.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if existing is not None:
                return _same_withdrawal(existing, asset=asset, amount=amount, address=address)
        raise
    return withdrawal


def _check_cooldown(user: User) -> None:
    now = timezone.now()
    for changed_at, what in ((user.password_changed_at, "password change"), (user.otp_reset_at, "2FA reset")):
        if changed_at and now - changed_at < SECURITY_COOLDOWN:
            until = changed_at + SECURITY_COOLDOWN
            raise Forbidden(
                f"Withdrawals are paused for 24 hours after a {what} (until {until:%Y-%m-%d %H:%M} UTC).",
                code="withdrawal_locked",
            )


def withdrawal_approve(*, withdrawal_id: int, actor: User | None, network_txid: str = "") -> Withdrawal:
    """Staff sent the coins: the holds are posted to the external world and the fee account."""
    return _withdrawal_decide(withdrawal_id=withdrawal_id, actor=actor, approve=True, network_txid=network_txid)


def withdrawal_reject(*, withdrawal_id: int, actor: User | None, reason: str) -> Withdrawal:
    """Staff refused: the holds are voided and the funds are available again."""
    if not (reason or "").strip():
        raise ValidationFailed("A rejection needs a reason.", fields={"reason": ["Required."]})
    return _withdrawal_decide(withdrawal_id=withdrawal_id, actor=actor, approve=False, reason=reason.strip())


def withdrawal_sent_record(*, withdrawal_id: int, actor: User | None, network_txid: str) -> Withdrawal:
    """The coins of a withdrawal approved without its network transaction went out: record
    the transaction (once; the same id again changes nothing, another one is refused)."""
    txid = (network_txid or "").strip()
    if not txid:
        raise ValidationFailed("Give the network transaction.", fields={"network_txid": ["Required."]})
    if len(txid) > 120:
        raise ValidationFailed("That is not a transaction id.", fields={"network_txid": ["At most 120 characters."]})
    with transaction.atomic(durable=True):
        withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
        if withdrawal is None:
            raise NotFound("No such withdrawal.")
        if withdrawal.status != WithdrawalStatus.APPROVED:
            raise Conflict(
                f"This withdrawal is {withdrawal.status}: only an approved one is sent.", code="withdrawal_not_approved"
            )
        if withdrawal.network_txid:
            if withdrawal.network_txid == txid:
                return withdrawal
            raise Conflict(
                f"This withdrawal was sent already (network transaction {withdrawal.network_txid}).",
                code="withdrawal_already_sent",
            )
        withdrawal.network_txid = txid
        withdrawal.save(update_fields=["network_txid"])
        audit_append(
            actor=actor,
            action="ledger.withdrawal_sent",
            target=withdrawal,
            data={**_withdrawal_audit_data(withdrawal), "network_txid": txid},
        )
        signals.withdrawal_sent.send(sender=Withdrawal, withdrawal=withdrawal, actor=actor)
    return withdrawal


def _withdrawal_decide(
    *, withdrawal_id: int, actor, approve: bool, reason: str = "", network_txid: str = ""
) -> Withdrawal:
    with transaction.atomic(durable=True):
        withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
        if withdrawal is None:
            raise NotFound("No such withdrawal.")
        if withdrawal.status not in (WithdrawalStatus.PENDING, WithdrawalStatus.AML_REVIEW):
            raise Conflict(f"This withdrawal is already {withdrawal.status}.", code="withdrawal_not_pending")
        kind = TransferKind.POST_PENDING if approve else TransferKind.VOID_PENDING
        verb = "post" if approve else "void"
        transfers_execute(
            [
                TransferRequest(
                    id=f"{withdrawal.hold_id}:{verb}",
                    kind=kind,
                    code="withdrawal",
                    pending_id=withdrawal.hold_id,
                    reference=f"withdrawal:{withdrawal.pk}",
                ),
                TransferRequest(
                    id=f"{withdrawal.fee_hold_id}:{verb}",
                    kind=kind,
                    code="withdrawal_fee",
                    pending_id=withdrawal.fee_hold_id,
                    reference=f"withdrawal:{withdrawal.pk}",
                ),
            ]
        )
        withdrawal.status = WithdrawalStatus.APPROVED if approve else WithdrawalStatus.REJECTED
        withdrawal.decided_at = timezone.now()
        withdrawal.decided_by = actor
        withdrawal.rejection_reason = reason
        withdrawal.network_txid = network_txid
        withdrawal.save(update_fields=["status", "decided_at", "decided_by", "rejection_reason", "network_txid"])
        data = _withdrawal_audit_data(withdrawal)
        if approve:
            data["network_txid"] = withdrawal.network_txid
        else:
            data["reason"] = withdrawal.rejection_reason
        audit_append(
            actor=actor,
            action="ledger.withdrawal_approved" if approve else "ledger.withdrawal_rejected",
            target=withdrawal,
            data=data,
        )
        signals.withdrawal_decided.send(sender=Withdrawal, withdrawal=withdrawal, actor=actor)
    return withdrawal


def withdrawal_hold_for_review(*, withdrawal_id: int, reason: str) -> Withdrawal | None:
    """A pending withdrawal held for compliance review (its AML evaluation, after the request,
    passed the review score): still held, now decided only by staff, and no longer cancellable
    by the trader. Anything but pending is left as it is (None)."""
    with transaction.atomic(durable=True):
        withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
        if withdrawal is None or withdrawal.status != WithdrawalStatus.PENDING:
            return None
        withdrawal.status = WithdrawalStatus.AML_REVIEW
        withdrawal.review_reason = reason[:300]
        withdrawal.save(update_fields=["status", "review_reason"])
        audit_append(
            actor=None,
            action="ledger.withdrawal_held_for_review",
            target=withdrawal,
            data={**_withdrawal_audit_data(withdrawal), "reason": withdrawal.review_reason},
        )
        signals.withdrawal_held.send(sender=Withdrawal, withdrawal=withdrawal, reason=withdrawal.review_reason)
    return withdrawal


def _withdrawal_audit_data(withdrawal: Withdrawal) -> dict:
    return {
        "user_id": withdrawal.user_id,
        "asset": withdrawal.asset,
        "amount": fmt(withdrawal.asset, withdrawal.amount),
        "fee": fmt(withdrawal.asset, withdrawal.fee),
        "address": withdrawal.address,
        "status": withdrawal.status,
    }
