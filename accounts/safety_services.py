"""Account safety writes: the trader's sign-in sessions (recorded, seen, revoked), the
anti-phishing code and whitelist-only withdrawals.

A session is a browser session (its Django session, whichever ``SESSION_ENGINE`` keeps it) or
an API sign-in (its refresh token; the refresh and the access tokens it makes carry the
session's id as the ``sid`` claim, so a rotation follows it and a request knows its own).
Revoking a browser session deletes its Django session: its next request is signed out.
Revoking an API sign-in blacklists its refresh token: no new access token is made from it,
and the access token in hand works until it expires (``JWT_ACCESS_MINUTES``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from trading.audit import audit_append
from trading.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed

from . import devices, signals
from .devices import request_ip, request_user_agent
from .models import ApiKey, ApiKeyScope, User, UserSession, UserSessionKind
from .otp import otp_check, two_factor_enabled

SID_CLAIM = "sid"
SEEN_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per session
ANTI_PHISHING_PATTERN = re.compile(r"^[A-Za-z0-9 _-]{4,20}$")


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


# --- sessions ------------------------------------------------------------------------------------


def user_session_start(*, user: User, request, kind: str, session_key: str = "", token_jti: str = "") -> UserSession:
    """Record a new sign-in session with the device and address it came from."""
    agent = request_user_agent(request)
    ip = request_ip(request)
    return UserSession.objects.create(
        user=user,
        kind=kind,
        session_key=session_key,
        token_jti=token_jti,
        ip=ip,
        last_seen_ip=ip,
        user_agent=agent,
        device=devices.device_of(agent)[:80],
    )


def user_session_seen(
    *, session_key: str = "", session_id: int | None = None, ip: str | None, token_jti: str = ""
) -> bool:
    """The session was used now (at most one write a minute; a rotation's new jti always).
    Whether the session is known."""
    now = timezone.now()
    sessions = UserSession.objects.filter(revoked_at__isnull=True)
    sessions = sessions.filter(pk=session_id) if session_id is not None else sessions.filter(session_key=session_key)
    if token_jti:
        return sessions.update(token_jti=token_jti, last_seen_at=now, last_seen_ip=ip) > 0
    sessions.filter(last_seen_at__lt=now - SEEN_EVERY).update(last_seen_at=now, last_seen_ip=ip)
    return sessions.exists()


def user_session_ended(*, session_key: str) -> None:
    """The trader signed out of this browser session."""
    if session_key:
        UserSession.objects.filter(session_key=session_key, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_session_revoked(*, session_id) -> bool:
    """Whether the API sign-in a refresh token belongs to was revoked (refreshing it is refused)."""
    if session_id is None:
        return False
    return UserSession.objects.filter(pk=session_id, revoked_at__isnull=False).exists()


def _end(session: UserSession, now) -> None:
    """Close one session: its Django session deleted, or its refresh token blacklisted."""
    if session.kind == UserSessionKind.BROWSER and session.session_key:
        _session_store()(session_key=session.session_key).delete()
    elif session.kind == UserSessionKind.TOKEN and session.token_jti:
        for token in OutstandingToken.objects.filter(jti=session.token_jti):
            BlacklistedToken.objects.get_or_create(token=token)
    session.revoked_at = now
    session.save(update_fields=["revoked_at"])


def user_session_revoke(*, user: User, session_id: int) -> UserSession:
    """Sign one of the trader's sessions out. Revoking a revoked session changes nothing."""
    with transaction.atomic(durable=True):
        session = UserSession.objects.select_for_update().filter(pk=session_id, user=user).first()
        if session is None:
            raise NotFound("No such session.")
        if session.revoked_at is None:
            _end(session, timezone.now())
            audit_append(
                actor=user,
                action="auth.session_revoked",
                target=user,
                data={"session_id": session.pk, "kind": session.kind, "device": session.device},
            )
    return session


def user_sessions_revoke_others(*, user: User, keep_session_id: int | None) -> int:
    """Sign every other session of the trader out (all but ``keep_session_id``); how many."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        sessions = UserSession.objects.select_for_update().filter(user=user, revoked_at__isnull=True).order_by("pk")
        if keep_session_id is not None:
            sessions = sessions.exclude(pk=keep_session_id)
        ended = list(sessions)
        for session in ended:
            _end(session, now)
        audit_append(
            actor=user,
            action="auth.sessions_revoked",
            target=user,
            data={"session_ids": [s.pk for s in ended], "kept": keep_session_id},
        )
    return len(ended)


# --- anti-phishing code --------------------------------------------------------------------------


def anti_phishing_code_set(*, user: User, code: str, otp: str | None = None) -> User:
    """Set (or, with an empty code, clear) the code every email to the trader shows. With 2FA
    on it takes a fresh code: whoever changes it can make a phishing email look genuine."""
    code = " ".join(str(code or "").split())
    if code and not ANTI_PHISHING_PATTERN.match(code):
        raise ValidationFailed(
            "The anti-phishing code is 4 to 20 letters, digits, spaces, dashes or underscores.",
            fields={"code": ["4 to 20 letters, digits, spaces, - or _."]},
        )
    if two_factor_enabled(user=user):
        if not otp:
            raise DomainError(
                "Confirm with a code from your authenticator.",
                code="otp_required",
                status=401,
                fields={"otp": ["Required."]},
            )
        otp_check(user=user, otp=otp)
    with transaction.atomic(durable=True):
        User.objects.filter(pk=user.pk).update(anti_phishing_code=code)
        audit_append(actor=user, action="auth.anti_phishing_code_set", target=user, data={"set": bool(code)})
    user.anti_phishing_code = code
    return user


# --- whitelist-only withdrawals ------------------------------------------------------------------


def whitelist_cooloff() -> timedelta:
    return timedelta(hours=settings.WITHDRAWAL_WHITELIST_OFF_COOLOFF_HOURS)


def whitelist_enforced_until(user: User):
    """While whitelist-only is off but its cool-off runs, when the cool-off ends; else None."""
    if user.withdrawal_whitelist_only or user.withdrawal_whitelist_off_at is None:
        return None
    until = user.withdrawal_whitelist_off_at + whitelist_cooloff()
    return until if until > timezone.now() else None


def whitelist_enforced(user: User) -> bool:
    """Withdrawals go only to the address book: the mode is on, or was turned off less than
    the cool-off ago."""
    return user.withdrawal_whitelist_only or whitelist_enforced_until(user) is not None


def _withdraw_key_active(user: User) -> bool:
    return any(
        ApiKeyScope.WITHDRAW in (key.scopes or [])
        for key in ApiKey.objects.filter(user=user, revoked_at__isnull=True).only("scopes")
    )


def withdrawal_whitelist_set(*, user: User, enabled: bool, otp: str | None = None) -> User:
    """Turn whitelist-only withdrawals on (at once) or off (with 2FA on and a fresh code; the
    address book keeps binding for the cool-off, so a thief cannot turn it off and withdraw)."""
    if not enabled and User.objects.filter(pk=user.pk, withdrawal_whitelist_only=True).exists():
        if not two_factor_enabled(user=user):
            raise Forbidden(
                "Turning whitelist-only withdrawals off needs two-factor authentication.",
                code="two_factor_required",
            )
        if _withdraw_key_active(user):
            raise Conflict(
                "An active API key has the withdraw scope: revoke it before turning whitelist-only withdrawals off.",
                code="withdraw_key_active",
            )
        if not otp:
            raise DomainError(
                "Confirm with a code from your authenticator.",
                code="otp_required",
                status=401,
                fields={"otp": ["Required."]},
            )
        otp_check(user=user, otp=otp)
    with transaction.atomic(durable=True):
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.withdrawal_whitelist_only == enabled:
            return locked
        if not enabled:
            if _withdraw_key_active(locked):  # made since the check above
                raise Conflict(
                    "An active API key has the withdraw scope: revoke it before turning whitelist-only "
                    "withdrawals off.",
                    code="withdraw_key_active",
                )
            locked.withdrawal_whitelist_off_at = timezone.now()
        locked.withdrawal_whitelist_only = enabled
        locked.save(update_fields=["withdrawal_whitelist_only", "withdrawal_whitelist_off_at"])
        until = whitelist_enforced_until(locked)
        record = audit_append(
            actor=locked,
            action="ledger.withdrawal_whitelist_on" if enabled else "ledger.withdrawal_whitelist_off",
            target=locked,
            data={"enforced_until": until.isoformat() if until else None},
        )
        signals.withdrawal_whitelist_changed.send(
            sender=User, user=locked, enabled=enabled, enforced_until=until, change_id=record.seq
        )
    user.withdrawal_whitelist_only = locked.withdrawal_whitelist_only
    user.withdrawal_whitelist_off_at = locked.withdrawal_whitelist_off_at
    return locked
