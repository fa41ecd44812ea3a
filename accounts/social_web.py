"""The OpenID Connect round trip's two pages (django-allauth's views behind them).

allauth lets a provider that cannot be reached (its discovery document is read at both
steps) surface as a server error; here it is a clear refusal on the login page instead.
allauth is imported on use: the URL table loads without touching its models.
"""

from __future__ import annotations

import logging

import requests
from django.contrib import messages
from django.shortcuts import redirect

from .social_providers import provider_name

logger = logging.getLogger(__name__)


def _unreachable(request, provider_id: str, exc: Exception):
    logger.warning("OpenID Connect provider %s unreachable: %r", provider_id, exc)
    messages.error(
        request,
        f"{provider_name(provider_id)} cannot be reached right now. Please try again later, "
        "or sign in with your password.",
    )
    return redirect("web:login")


def provider_login(request, provider_id: str):
    """The login page's "Sign in with <name>" button: off to the provider's authorize page."""
    from allauth.socialaccount.providers.openid_connect import views as oidc_views

    try:
        return oidc_views.login(request, provider_id)
    except (requests.RequestException, ValueError, KeyError) as exc:
        return _unreachable(request, provider_id, exc)


def provider_callback(request, provider_id: str):
    """Where the provider sends the trader back (the redirect URI registered there)."""
    from allauth.socialaccount.providers.openid_connect import views as oidc_views

    try:
        return oidc_views.callback(request, provider_id)
    except (requests.RequestException, ValueError, KeyError) as exc:
        return _unreachable(request, provider_id, exc)
