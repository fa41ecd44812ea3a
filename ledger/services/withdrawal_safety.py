"""The trader's own guards on withdrawals: the address book (whitelist-only mode binds
withdrawals to it; a new address is usable only after a delay) and cancelling a withdrawal
that still waits for review."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.safety_services import whitelist_enforced
from trading.audit import audit_append
from trading.errors import Conflict, Forbidden, NotFound, ValidationFailed
from trading.formatting import utc_string
from trading.money import check_asset, fmt

from .. import signals
from ..models import TransferKind, Withdrawal, WithdrawalAddress, WithdrawalStatus
from .addresses import address_network
from .transfers import TransferRequest, transfers_execute

MAX_ADDRESSES = 100


def address_delay() -> timedelta:
    return timedelta(hours=settings.WITHDRAWAL_ADDRESS_DELAY_HOURS)


def _same_address(asset: str, address: str):
    """The book's entries for this address: ERC-20 addresses (0x...) in any letter case."""
    entries = WithdrawalAddress.objects.filter(asset=asset)
    return entries.filter(address__iexact=address) if address.startswith("0x") else entries.filter(address=address)


def withdrawal_address_add(*, user: User, asset: str, address: str, label: str) -> WithdrawalAddress:
    """Save an address in the trader's book; usable for withdrawals after the delay."""

    asset = check_asset(asset)
    address = (address or "").strip()
    label = " ".join(str(label or "").split())
    if not label or len(label) > 64:
        raise ValidationFailed(
            "Give the address a label of 1 to 64 characters.", fields={"label": ["1 to 64 characters."]}
        )
    network = address_network(asset=asset, address=address)
    now = timezone.now()
    try:
        with transaction.atomic(durable=True):
            User.objects.select_for_update().only("id").get(pk=user.pk)
            if _same_address(asset, address).filter(user=user).exists():
                raise Conflict(
                    f"This {asset} address is already in your address book.",
                    code="address_exists",
                    fields={"address": ["Already saved."]},
                )
            if WithdrawalAddress.objects.filter(user=user).count() >= MAX_ADDRESSES:
                raise Conflict(
                    f"Your address book holds {MAX_ADDRESSES} addresses, the most it may: delete one first.",
                    code="address_book_full",
                )
            entry = WithdrawalAddress.objects.create(
                user=user,
                asset=asset,
                address=address,
                network=network,
                label=label,
                usable_at=now + address_delay(),
            )
            audit_append(
                actor=user,
                action="ledger.withdrawal_address_added",
                target=user,
                data={
                    "address_id": entry.pk,
                    "asset": asset,
                    "address": address,
                    "label": label,
                    "usable_at": utc_string(entry.usable_at),
                },
            )
            signals.withdrawal_address_added.send(sender=WithdrawalAddress, entry=entry)
    except IntegrityError:
        raise Conflict(
            f"This {asset} address is already in your address book.",
            code="address_exists",
            fields={"address": ["Already saved."]},
        ) from None
    return entry


def withdrawal_address_delete(*, user: User, address_id: int) -> None:
    """Remove an address from the book (withdrawals in flight to it are unaffected)."""
    with transaction.atomic(durable=True):
        entry = WithdrawalAddress.objects.select_for_update().filter(pk=address_id, user=user).first()
        if entry is None:
            raise NotFound("No such address in your address book.")
        audit_append(
            actor=user,
            action="ledger.withdrawal_address_deleted",
            target=user,
            data={"address_id": entry.pk, "asset": entry.asset, "address": entry.address, "label": entry.label},
        )
        entry.delete()


def withdrawal_address_check(*, user: User, asset: str, address: str, via_api_key: bool = False) -> None:
    """Refuse a withdrawal the address book does not allow: with whitelist-only on (or in its
    cool-off after being turned off), or from an API key (always), the address must be in the
    book and past its delay. ``user`` is the locked row of the withdrawal's transaction."""
    if not (via_api_key or whitelist_enforced(user)):
        return
    entry = _same_address(asset, address).filter(user=user).first()
    if entry is None:
        why = (
            "An API key withdraws only to your address book's addresses"
            if via_api_key and not whitelist_enforced(user)
            else "Whitelist-only withdrawals are on"
        )
        raise Forbidden(
            f"{why}: add this {asset} address to your address book first (it is usable "
            f"{settings.WITHDRAWAL_ADDRESS_DELAY_HOURS:g} hours after it is added).",
            code="address_not_whitelisted",
            fields={"address": ["Not in your address book."]},
        )
    if entry.usable_at > timezone.now():
        raise Forbidden(
            f"This address was added to your address book recently: it is usable from "
            f"{entry.usable_at:%Y-%m-%d %H:%M} UTC.",
            code="address_not_yet_usable",
            fields={"address": [f"Usable from {entry.usable_at:%Y-%m-%d %H:%M} UTC."]},
        )


def withdrawal_cancel(*, user: User, withdrawal_id: int) -> Withdrawal:
    """The trader takes back their own withdrawal while it waits for review: both holds
    (amount and fee) are voided, once; a withdrawal already decided or cancelled is refused."""
    with transaction.atomic(durable=True):
        withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id, user=user).first()
        if withdrawal is None:
            raise NotFound("No such withdrawal.")
        if withdrawal.status != WithdrawalStatus.PENDING:
            raise Conflict(
                f"This withdrawal is already {withdrawal.status}: only one pending review can be cancelled.",
                code="withdrawal_not_pending",
            )
        transfers_execute(
            [
                TransferRequest(
                    id=f"{withdrawal.hold_id}:void",
                    kind=TransferKind.VOID_PENDING,
                    code="withdrawal",
                    pending_id=withdrawal.hold_id,
                    reference=f"withdrawal:{withdrawal.pk}",
                ),
                TransferRequest(
                    id=f"{withdrawal.fee_hold_id}:void",
                    kind=TransferKind.VOID_PENDING,
                    code="withdrawal_fee",
                    pending_id=withdrawal.fee_hold_id,
                    reference=f"withdrawal:{withdrawal.pk}",
                ),
            ]
        )
        withdrawal.status = WithdrawalStatus.CANCELLED
        withdrawal.decided_at = timezone.now()
        withdrawal.decided_by = user
        withdrawal.save(update_fields=["status", "decided_at", "decided_by"])
        audit_append(
            actor=user,
            action="ledger.withdrawal_cancelled",
            target=withdrawal,
            data={
                "user_id": withdrawal.user_id,
                "asset": withdrawal.asset,
                "amount": fmt(withdrawal.asset, withdrawal.amount),
                "address": withdrawal.address,
                "status": withdrawal.status,
            },
        )
        signals.withdrawal_decided.send(sender=Withdrawal, withdrawal=withdrawal, actor=user)
    return withdrawal
