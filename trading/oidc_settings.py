"""OpenID Connect providers for social login, read from the environment.

Plain Python (the settings module imports it before Django is set up). ``OIDC_PROVIDERS``
holds a JSON list, one object per provider::

    [{"id": "acme", "name": "Acme ID", "server_url": "https://id.acme.example",
      "client_id": "meridian", "secret": "..."}]

``server_url`` is the issuer (its ``/.well-known/openid-configuration`` is fetched) or the
discovery document's own address. Optional keys: ``token_auth_method``
(``client_secret_post`` or ``client_secret_basic``; by default what the provider offers) and
``scope`` (a list; ``openid profile email`` by default). Empty or unset: no social login.
"""

from __future__ import annotations

import json
import re

REQUIRED_KEYS = ("id", "name", "server_url", "client_id", "secret")
OPTIONAL_KEYS = ("token_auth_method", "scope")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class OidcConfigError(ValueError):
    pass


def oidc_apps(raw: str) -> list[dict]:
    """allauth's ``APPS`` entries for the ``openid_connect`` provider, from ``OIDC_PROVIDERS``."""
    raw = (raw or "").strip()
    if not raw:
        return []
    try:
        providers = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise OidcConfigError(f"OIDC_PROVIDERS is not valid JSON: {exc}") from exc
    if isinstance(providers, dict):
        providers = [providers]
    if not isinstance(providers, list):
        raise OidcConfigError("OIDC_PROVIDERS must be a JSON list of provider objects.")
    apps, seen = [], set()
    for number, provider in enumerate(providers, start=1):
        if not isinstance(provider, dict):
            raise OidcConfigError(f"OIDC_PROVIDERS entry {number} is not an object.")
        missing = [key for key in REQUIRED_KEYS if not str(provider.get(key) or "").strip()]
        if missing:
            raise OidcConfigError(f"OIDC_PROVIDERS entry {number} lacks {', '.join(missing)}.")
        unknown = sorted(set(provider) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
        if unknown:
            raise OidcConfigError(f"OIDC_PROVIDERS entry {number} has unknown keys: {', '.join(unknown)}.")
        provider_id = str(provider["id"]).strip()
        if not _ID.match(provider_id):
            raise OidcConfigError(
                f"OIDC_PROVIDERS entry {number}: id {provider_id!r} must be lower-case letters, digits, - or _."
            )
        if provider_id in seen:
            raise OidcConfigError(f"OIDC_PROVIDERS: the id {provider_id!r} appears twice.")
        seen.add(provider_id)
        app_settings = {"server_url": str(provider["server_url"]).strip(), "oauth_pkce_enabled": True}
        if provider.get("token_auth_method"):
            if provider["token_auth_method"] not in ("client_secret_post", "client_secret_basic"):
                raise OidcConfigError(
                    f"OIDC_PROVIDERS entry {number}: token_auth_method is client_secret_post or client_secret_basic."
                )
            app_settings["token_auth_method"] = provider["token_auth_method"]
        app = {
            "provider_id": provider_id,
            "name": str(provider["name"]).strip(),
            "client_id": str(provider["client_id"]).strip(),
            "secret": str(provider["secret"]),
            "settings": app_settings,
        }
        if provider.get("scope"):
            app["settings"]["scope"] = list(provider["scope"])
        apps.append(app)
    return apps
