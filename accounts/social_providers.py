"""The configured OpenID Connect providers (``OIDC_PROVIDERS``), as pages show them."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def _apps() -> list[dict]:
    return settings.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"]


def login_buttons() -> list[dict]:
    """One "Sign in with <name>" button per configured provider (none configured: none)."""
    return [
        {
            "id": app["provider_id"],
            "name": app["name"],
            "url": reverse("openid_connect_login", kwargs={"provider_id": app["provider_id"]}),
        }
        for app in _apps()
    ]


def provider_name(provider_id: str) -> str:
    for app in _apps():
        if app["provider_id"] == provider_id:
            return app["name"]
    return provider_id
