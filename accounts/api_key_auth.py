"""Signed requests from API keys (``accounts.api_keys`` says how a request is signed).

``ApiKeyAuthentication`` answers a request that carries ``X-API-KEY``; every other request
goes on to the JWT and session authentication. It also decides the key's scope for the view
at hand, so no view can be reached with a key that lacks it, whatever the view's own
permissions:

* a view's ``api_key_scopes`` maps a method to the scope it needs (``{"POST": "withdraw"}``);
* otherwise reading (GET, HEAD, OPTIONS) needs ``read`` and anything else ``trade``;
* a view with ``api_key_refused = True`` (2FA, password, email, the keys themselves) cannot
  be used with a key at all: those need the trader, signed in.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS

from trading.errors import DomainError

from . import api_keys
from .models import ApiKey, ApiKeyScope

LAST_USED_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often


class ApiKeyRefused(DomainError):
    status = 401
    code = "invalid_signature"


def required_scope(view, method: str) -> str | None:
    """The scope ``view`` needs for ``method`` from a key, or None: keys may not use it."""
    if view is None or getattr(view, "api_key_refused", False):
        return None
    scopes = getattr(view, "api_key_scopes", None) or {}
    if method in scopes:
        return scopes[method]
    return ApiKeyScope.READ if method in SAFE_METHODS else ApiKeyScope.TRADE


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        public = request.META.get("HTTP_X_API_KEY")
        if not public:
            return None
        timestamp = request.META.get("HTTP_X_API_TIMESTAMP", "")
        signature = request.META.get("HTTP_X_API_SIGNATURE", "")
        key = ApiKey.objects.select_related("user").filter(key=public).first()
        if key is None or not key.user.is_active:
            raise ApiKeyRefused("Unknown API key, or the signature does not match.")
        if key.revoked_at is not None:
            raise ApiKeyRefused("This API key was revoked.", code="api_key_revoked")
        ip = client_ip(request)
        if not api_keys.ip_allowed(ip, key.ip_allowlist):
            raise DomainError(f"This key may not be used from {ip}.", code="ip_not_allowed", status=403)
        window = settings.API_KEY_RECV_WINDOW_MS
        now_ms = int(timezone.now().timestamp() * 1000)
        if (
            not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15)
            or abs(now_ms - int(timestamp)) > window
        ):
            raise ApiKeyRefused(
                f"X-API-TIMESTAMP must be Unix milliseconds within {window} ms of the server's clock "
                f"(the server's is {now_ms}).",
                code="timestamp_out_of_window",
            )
        secret = api_keys.decrypt(key.secret_encrypted, settings.API_KEY_ENCRYPTION_KEY)
        raw = request._request
        if secret is None or not api_keys.signature_ok(
            secret, signature, timestamp, raw.method, raw.get_full_path(), raw.body
        ):
            raise ApiKeyRefused("The signature does not match the request (see the signing rules).")
        # a signature is good once: kept for longer than the window it could be replayed in
        if not cache.add(f"api-key-signature:{signature.lower()}", 1, timeout=2 * window // 1000 + 1):
            raise ApiKeyRefused("This signature was already used: sign each request anew.", code="signature_replayed")
        need = required_scope(request.parser_context.get("view") if request.parser_context else None, raw.method)
        if need is None:
            raise DomainError(
                "API keys cannot do this: sign in to the site or use a session token.",
                code="scope_required",
                status=403,
            )
        if need not in key.scopes:
            raise DomainError(f"This key lacks the {need} scope.", code="scope_required", status=403)
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, last_used_ip=ip)
        return key.user, key

    def authenticate_header(self, request):
        return 'X-API-KEY realm="api"'


class ApiKeySchema(OpenApiAuthenticationExtension):
    """How the API schema names the signed requests of API keys."""

    target_class = "accounts.api_key_auth.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-KEY",
            "description": "An API key, with X-API-TIMESTAMP (Unix ms, within 5 s of the server's clock) and "
            "X-API-SIGNATURE (hex HMAC-SHA256 with the key's secret of timestamp + METHOD + path-with-query + "
            "body) on every request.",
        }
