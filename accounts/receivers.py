"""Sign-ins and failed sign-ins go to the audit trail; a sign-in from a new device is told.

Django sends these signals from ``authenticate`` and ``login``, outside our services'
transactions: ``audit_append`` then opens its own, so the record commits on its own (a failed
sign-in leaves its trace even though nothing else is written).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from trading.audit import ANONYMOUS_LABEL, audit_append

from . import devices, signals
from .devices import request_ip, request_user_agent
from .selectors import sign_in_seen


def sign_in_method(request, path: str) -> str:
    """password, 2fa (the browser's code step, the staff console), token (the API's), oidc or
    oidc_2fa (an OpenID Connect provider, then the code step when 2FA is on)."""
    method = getattr(request, "sign_in_method", None)
    if method:
        return method
    if "/auth/token" in path:
        return "token"
    if "/login/otp" in path or path.startswith("/admin"):
        return "2fa"
    return "password"


@receiver(user_logged_out, dispatch_uid="accounts.session_ended")
def on_logged_out(sender, request=None, user=None, **kwargs):
    from . import safety_services

    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        safety_services.user_session_ended(session_key=key)


@receiver(user_logged_in, dispatch_uid="accounts.audit_login")
def on_logged_in(sender, request=None, user=None, **kwargs):
    """Every sign-in (the browser's, after the 2FA step when it is on; the API's token; the
    staff console's) is recorded with its address and device, and one from a device and
    address the account never signed in from before sends ``signals.new_sign_in`` in the
    same transaction (the account's first sign-in, right after signing up, does not)."""
    if user is None:
        return
    from . import safety_services
    from .models import UserSessionKind

    ip, agent = request_ip(request), request_user_agent(request)
    path = getattr(request, "path", "") or ""
    data = {"path": path, "method": sign_in_method(request, path)}
    provider = getattr(request, "sign_in_provider", None)
    if provider:  # an OpenID Connect sign-in: which provider vouched for the trader
        data["provider"] = provider
    device = devices.device_of(agent)
    if agent:
        data.update(user_agent=agent, device=device)
    session = getattr(request, "session", None)
    session_key = getattr(session, "session_key", None) if data["method"] != "token" else None
    with transaction.atomic():
        seen = sign_in_seen(user_id=user.pk, ip=ip, device=device)
        record = audit_append(actor=user, action="auth.login", target=user, data=data, ip=ip)
        if session_key:  # a browser's (an API sign-in records its token's session itself)
            safety_services.user_session_start(
                user=user, request=request, kind=UserSessionKind.BROWSER, session_key=session_key
            )
        if seen is False:
            signals.new_sign_in.send(
                sender=type(user), user=user, login_id=record.seq, ip=ip, user_agent=agent, at=record.at
            )


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
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
        ip=request_ip(request),
    )
