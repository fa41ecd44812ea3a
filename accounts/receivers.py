"""Sign-ins and failed sign-ins go to the audit trail.

Django sends these signals from ``authenticate`` and ``login``, outside our services'
transactions: ``audit_append`` then opens its own, so the record commits on its own (a failed
sign-in leaves its trace even though nothing else is written).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from trading.audit import ANONYMOUS_LABEL, audit_append


def request_ip(request) -> str | None:
    # A DRF Request proxies META to the Django request it wraps.
    meta = getattr(request, "META", None) if request is not None else None
    return meta.get("REMOTE_ADDR") if meta else None


@receiver(user_logged_in, dispatch_uid="accounts.audit_login")
def on_logged_in(sender, request=None, user=None, **kwargs):
    if user is None:
        return
    audit_append(
        actor=user,
        action="auth.login",
        target=user,
        data={"path": getattr(request, "path", "") or ""},
        ip=request_ip(request),
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
