"""API keys for trading bots: made and revoked by the trader with a fresh 2FA code."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trading.audit import audit_append
from trading.errors import Conflict, NotFound, ValidationFailed

from . import api_keys, signals
from .models import ApiKey, ApiKeyScope, User
from .services import otp_check

MAX_ALLOWLIST = 20


def _scopes(scopes) -> list[str]:
    if not isinstance(scopes, list | tuple) or not scopes:
        raise ValidationFailed(
            "Choose at least one scope.", fields={"scopes": ["One or more of read, trade, withdraw."]}
        )
    unknown = [s for s in scopes if s not in ApiKeyScope.values]
    if unknown:
        raise ValidationFailed(
            f"Unknown scope {unknown[0]!r}.", fields={"scopes": [f"One or more of {', '.join(ApiKeyScope.values)}."]}
        )
    return [s for s in ApiKeyScope.values if s in scopes]  # in one order, once each


def _allowlist(entries) -> list[str]:
    entries = list(entries or [])
    if len(entries) > MAX_ALLOWLIST:
        raise ValidationFailed(
            f"At most {MAX_ALLOWLIST} addresses.", fields={"ip_allowlist": [f"At most {MAX_ALLOWLIST} entries."]}
        )
    try:
        return [str(network) for network in api_keys.networks(entries)]
    except ValueError as exc:
        raise ValidationFailed(
            "An allowlist entry is not an IP address or network.",
            fields={"ip_allowlist": [f"{exc}. Use addresses such as 203.0.113.7 or networks such as 203.0.113.0/24."]},
        ) from None


def _whitelist_required():
    raise Conflict(
        "A key with the withdraw scope needs whitelist-only withdrawals, which this account does not have on.",
        code="whitelist_required",
        fields={"scopes": ["Turn on whitelist-only withdrawals (Wallet, Address book) first, or leave out withdraw."]},
    )


def api_key_create(*, user: User, label: str, scopes, ip_allowlist=None, otp: str) -> tuple[ApiKey, str]:
    """A new key and its secret (shown this once). Needs 2FA on and a fresh code."""
    label = " ".join(str(label or "").split())
    if not label or len(label) > 64:
        raise ValidationFailed("Give the key a label of 1 to 64 characters.", fields={"label": ["1 to 64 characters."]})
    scopes = _scopes(scopes)
    allowlist = _allowlist(ip_allowlist)
    if ApiKeyScope.WITHDRAW in scopes and not User.objects.filter(pk=user.pk, withdrawal_whitelist_only=True).exists():
        _whitelist_required()
    otp_check(user=user, otp=otp)
    secret = api_keys.new_secret()
    with transaction.atomic():
        locked = User.objects.select_for_update().only("id", "withdrawal_whitelist_only").get(pk=user.pk)
        if ApiKeyScope.WITHDRAW in scopes and not locked.withdrawal_whitelist_only:
            _whitelist_required()  # turned off since the check above
        if ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() >= settings.API_KEYS_MAX_PER_USER:
            raise Conflict(
                f"You have {settings.API_KEYS_MAX_PER_USER} active keys, the most an account may have: "
                "revoke one first.",
                code="api_key_limit_reached",
            )
        key = ApiKey.objects.create(
            user=user,
            label=label,
            key=api_keys.new_key(),
            secret_encrypted=api_keys.encrypt(secret, settings.API_KEY_ENCRYPTION_KEY),
            scopes=scopes,
            ip_allowlist=allowlist,
        )
        audit_append(
            actor=user,
            action="auth.api_key_created",
            target=user,
            data={"api_key_id": key.pk, "label": label, "scopes": scopes, "ip_allowlist": allowlist},
        )
        signals.api_key_changed.send(sender=ApiKey, api_key=key, change="created")
    return key, secret


def api_key_revoke(*, user: User, key_id: int, otp: str) -> ApiKey:
    """The key stops working at once. Revoking a revoked key changes nothing."""
    if not ApiKey.objects.filter(pk=key_id, user=user).exists():
        raise NotFound("No such API key.")
    otp_check(user=user, otp=otp)
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=key_id, user=user)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_append(actor=user, action="auth.api_key_revoked", target=user, data={"api_key_id": key.pk})
            signals.api_key_changed.send(sender=ApiKey, api_key=key, change="revoked")
    return key
