"""Turns security and money events into audit records.

The accounts and ledger signals are sent inside the writing transaction, so each record
commits or rolls back with its event. Django's login signals and admin log entries arrive
outside our services' transactions; there ``audit_append`` opens its own, so the record is
committed on its own (a failed sign-in leaves its trace even though nothing else is written).
"""

from __future__ import annotations

import functools
import json

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry, LogEntryManager
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts import signals as account_signals
from accounts.models import KycStatus
from ledger import signals as ledger_signals
from ledger.models import WithdrawalStatus
from trading.money import fmt

from .services import ANONYMOUS_LABEL, audit_append


def _target(obj) -> tuple[str, str]:
    return obj._meta.label_lower, str(obj.pk)


def _request_ip(request) -> str | None:
    # A DRF Request proxies META to the Django request it wraps.
    meta = getattr(request, "META", None) if request is not None else None
    return meta.get("REMOTE_ADDR") if meta else None


# --- sign-in -------------------------------------------------------------------------------------


@receiver(user_logged_in, dispatch_uid="compliance.audit_login")
def on_logged_in(sender, request=None, user=None, **kwargs):
    if user is None:
        return
    target_type, target_id = _target(user)
    audit_append(
        actor=user,
        action="auth.login",
        target_type=target_type,
        target_id=target_id,
        data={"path": getattr(request, "path", "") or ""},
        ip=_request_ip(request),
    )


@receiver(user_login_failed, dispatch_uid="compliance.audit_login_failed")
def on_login_failed(sender, credentials=None, request=None, **kwargs):
    # Only the attempted identity: Django masks the password in ``credentials`` already, and
    # it is never recorded anyway.
    credentials = credentials or {}
    attempted = str(credentials.get("email") or credentials.get("username") or "").strip().lower()[:254]
    User = get_user_model()
    known = User.objects.filter(email=attempted).values_list("pk", flat=True).first() if attempted else None
    data = {"email": attempted, "known_user": known is not None}
    if getattr(request, "axes_locked_out", False):
        data["locked_out"] = True
    audit_append(
        actor=None,
        actor_label=ANONYMOUS_LABEL,
        action="auth.login_failed",
        target_type=User._meta.label_lower if known is not None else "",
        target_id=str(known) if known is not None else "",
        data=data,
        ip=_request_ip(request),
    )


@receiver(account_signals.otp_failed, dispatch_uid="compliance.audit_otp_failed")
def on_otp_failed(sender, user, reason, **kwargs):
    target_type, target_id = _target(user)
    audit_append(actor=user, action="auth.otp_failed", target_type=target_type, target_id=target_id, data={"reason": reason})


# --- account security ---------------------------------------------------------------------------------


@receiver(account_signals.two_factor_changed, dispatch_uid="compliance.audit_two_factor")
def on_two_factor_changed(sender, user, change, actor=None, **kwargs):
    target_type, target_id = _target(user)
    audit_append(
        actor=actor,
        action=f"auth.2fa_{change}",
        target_type=target_type,
        target_id=target_id,
        data={"user_email": user.email},
    )


@receiver(account_signals.password_changed, dispatch_uid="compliance.audit_password")
def on_password_changed(sender, user, **kwargs):
    target_type, target_id = _target(user)
    audit_append(actor=user, action="auth.password_changed", target_type=target_type, target_id=target_id)


# --- KYC -----------------------------------------------------------------------------------------------


@receiver(account_signals.kyc_submitted, dispatch_uid="compliance.audit_kyc_submitted")
def on_kyc_submitted(sender, profile, actor=None, **kwargs):
    # Identity details (name, birth date, document) stay in the KYC profile: an append-only
    # log is the wrong place for personal data.
    target_type, target_id = _target(profile)
    audit_append(
        actor=actor,
        action="kyc.submitted",
        target_type=target_type,
        target_id=target_id,
        data={"user_id": profile.user_id, "country": profile.country, "document_type": profile.document_content_type},
    )


@receiver(account_signals.kyc_decided, dispatch_uid="compliance.audit_kyc_decided")
def on_kyc_decided(sender, profile, actor=None, **kwargs):
    approved = profile.status == KycStatus.APPROVED
    target_type, target_id = _target(profile)
    audit_append(
        actor=actor,
        action="kyc.approved" if approved else "kyc.rejected",
        target_type=target_type,
        target_id=target_id,
        data={"user_id": profile.user_id, "status": profile.status, "reason": profile.rejection_reason},
    )


# --- money -----------------------------------------------------------------------------------------------


@receiver(ledger_signals.deposit_credited, dispatch_uid="compliance.audit_deposit")
def on_deposit_credited(sender, user, transfer, txid, **kwargs):
    target_type, target_id = _target(transfer)
    audit_append(
        actor=None,
        action="ledger.deposit",
        target_type=target_type,
        target_id=target_id,
        data={"user_id": user.pk, "asset": transfer.asset, "amount": fmt(transfer.asset, transfer.amount), "txid": txid, "code": transfer.code},
    )


def _withdrawal_data(withdrawal) -> dict:
    return {
        "user_id": withdrawal.user_id,
        "asset": withdrawal.asset,
        "amount": fmt(withdrawal.asset, withdrawal.amount),
        "fee": fmt(withdrawal.asset, withdrawal.fee),
        "address": withdrawal.address,
        "status": withdrawal.status,
    }


@receiver(ledger_signals.withdrawal_requested, dispatch_uid="compliance.audit_withdrawal_requested")
def on_withdrawal_requested(sender, withdrawal, **kwargs):
    target_type, target_id = _target(withdrawal)
    audit_append(
        actor=withdrawal.user,
        action="ledger.withdrawal_requested",
        target_type=target_type,
        target_id=target_id,
        data=_withdrawal_data(withdrawal),
    )


@receiver(ledger_signals.withdrawal_decided, dispatch_uid="compliance.audit_withdrawal_decided")
def on_withdrawal_decided(sender, withdrawal, actor=None, **kwargs):
    approved = withdrawal.status == WithdrawalStatus.APPROVED
    target_type, target_id = _target(withdrawal)
    data = _withdrawal_data(withdrawal)
    if approved:
        data["network_txid"] = withdrawal.network_txid
    else:
        data["reason"] = withdrawal.rejection_reason
    audit_append(
        actor=actor,
        action="ledger.withdrawal_approved" if approved else "ledger.withdrawal_rejected",
        target_type=target_type,
        target_id=target_id,
        data=data,
    )


# --- the staff console ---------------------------------------------------------------------------------------

_ADMIN_ACTIONS = {ADDITION: "admin.addition", CHANGE: "admin.change", DELETION: "admin.deletion"}


def audit_admin_entry(entry: LogEntry) -> None:
    """Record one admin log entry (an add, change or delete made in Django admin)."""
    content_type = ContentType.objects.get_for_id(entry.content_type_id) if entry.content_type_id else None
    try:
        change = json.loads(entry.change_message) if entry.change_message else []
    except ValueError:
        change = entry.change_message
    audit_append(
        actor=entry.user,
        action=_ADMIN_ACTIONS.get(entry.action_flag, f"admin.flag_{entry.action_flag}"),
        target_type=f"{content_type.app_label}.{content_type.model}" if content_type else "",
        target_id=entry.object_id or "",
        data={"object_repr": entry.object_repr, "change": change, "log_entry_id": entry.pk},
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="compliance.audit_admin_log")
def on_admin_log_entry(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        audit_admin_entry(instance)


def install_bulk_admin_log_hook() -> None:
    """Admin writes the log entries of a multi-object action ("delete selected") with
    ``bulk_create``, which sends no ``post_save``; record those entries here. A single entry
    is saved normally and reaches ``on_admin_log_entry`` instead."""
    original = LogEntryManager.log_actions
    if getattr(original, "_audited", False):
        return

    @functools.wraps(original)
    def log_actions(self, *args, **kwargs):
        entries = original(self, *args, **kwargs)
        bulk = type(self).log_action is LogEntryManager.log_action  # else each entry was saved one by one
        if bulk and isinstance(entries, list) and len(entries) > 1:
            for entry in entries:
                audit_admin_entry(entry)
        return entries

    log_actions._audited = True
    LogEntryManager.log_actions = log_actions
