"""The browser sign-in's steps shared by the password form and the OpenID Connect providers:
where a trader lands, and the wait for the authenticator code when 2FA is on."""

from __future__ import annotations

import time

from django.conf import settings
from django.shortcuts import redirect, resolve_url

from .models import User

PENDING_LOGIN_KEY = "pending_login"
PENDING_LOGIN_SECONDS = 300


def landing_url() -> str:
    """Where a trader lands after signing in without a ``next``: the trade page."""
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def pending_login_start(request, *, user: User, next_url: str, provider: str = ""):
    """First factor passed (a password or an OpenID Connect provider): the session waits for
    the authenticator code at ``web.login_otp`` before it is signed in."""
    request.session.cycle_key()
    request.session[PENDING_LOGIN_KEY] = {"user_id": user.pk, "at": time.time(), "next": next_url}
    if provider:
        request.session[PENDING_LOGIN_KEY]["provider"] = provider
    return redirect("web:login_otp")
