"""Account safety reads: the trader's active sessions and their sign-in history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from trading.models import AuditRecord

from . import devices
from .models import User, UserSession, UserSessionKind

SIGN_IN_METHODS = {
    "password": "Password",
    "2fa": "Password and 2FA code",
    "token": "API token",
    "oidc": "OpenID Connect",
    "oidc_2fa": "OpenID Connect and 2FA code",
}


def _browser_alive(session_key: str, user: User) -> bool:
    """A Django session that exists, has not expired (``load`` answers {} otherwise) and is
    signed in as ``user`` with the current password (a password change signs the others out:
    their stored hash no longer matches)."""
    if not session_key:
        return False
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key).load()
    if data.get(SESSION_KEY) != str(user.pk):
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY) or "", user.get_session_auth_hash())


def _token_alive(jti: str) -> bool:
    return (
        bool(jti)
        and OutstandingToken.objects.filter(jti=jti, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
        .order_by()
        .exists()
    )


def user_sessions_active(*, user: User, limit: int = 50) -> list[UserSession]:
    """The trader's sessions that can still be used, most recently seen first: a browser
    session whose Django session still exists (not signed out, not expired), an API sign-in
    whose latest refresh token is neither expired nor blacklisted."""
    active = []
    for session in UserSession.objects.filter(user=user, revoked_at__isnull=True).order_by("-last_seen_at", "-id"):
        alive = (
            _browser_alive(session.session_key, user)
            if session.kind == UserSessionKind.BROWSER
            else _token_alive(session.token_jti)
        )
        if alive:
            active.append(session)
            if len(active) >= limit:
                break
    return active


def current_session_id(request) -> int | None:
    """The session this request belongs to: its browser session, or the ``sid`` of its token."""
    auth = getattr(request, "auth", None)
    if auth is not None and hasattr(auth, "get"):
        sid = auth.get("sid")
        return int(sid) if isinstance(sid, int) else None
    if auth is not None:  # an API key: not a session
        return None
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None) if session is not None else None
    if not key:
        return None
    return UserSession.objects.filter(session_key=key, revoked_at__isnull=True).values_list("pk", flat=True).first()


@dataclass(frozen=True)
class SignIn:
    id: int
    at: datetime
    ip: str | None
    device: str
    user_agent: str
    method: str
    method_label: str


def sign_in_method(data: dict) -> str:
    """How a recorded sign-in was made; records from before the method was kept tell by path."""
    from .receivers import sign_in_method as by_path

    method = (data or {}).get("method")
    return method if method in SIGN_IN_METHODS else by_path(None, (data or {}).get("path", ""))


def _method_label(method: str, provider: str | None) -> str:
    """The method's label, naming the provider of a social sign-in ("Acme ID (OpenID Connect)")."""
    label = SIGN_IN_METHODS[method]
    if provider and method.startswith("oidc"):
        from .social_providers import provider_name

        label = label.replace("OpenID Connect", f"{provider_name(provider)} (OpenID Connect)")
    return label


def sign_in_history(*, user: User, limit: int = 20) -> list[SignIn]:
    """The trader's last ``limit`` sign-ins, newest first, from the audit trail."""
    records = AuditRecord.objects.filter(
        target_type=User._meta.label_lower, target_id=str(user.pk), action="auth.login"
    ).order_by("-seq")[:limit]
    history = []
    for record in records:
        data = record.data or {}
        agent = data.get("user_agent", "")
        method = sign_in_method(data)
        history.append(
            SignIn(
                id=record.seq,
                at=record.at,
                ip=record.ip,
                device=data.get("device") or devices.device_of(agent) or devices.UNKNOWN,
                user_agent=agent,
                method=method,
                method_label=_method_label(method, data.get("provider")),
            )
        )
    return history
