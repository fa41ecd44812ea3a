"""Social login with OpenID Connect, end to end against a small real provider run by the test.

The provider is an HTTP server in a thread: discovery document, authorize (code + PKCE S256),
token (client secret, code verifier, an RS256-signed id_token), JWKS and userinfo. The test
drives the browser side with Django's test client and the provider side with HTTP requests, as
a browser would follow the redirects; allauth talks to the provider over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from allauth.socialaccount.models import SocialAccount
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client

from accounts.models import KycProfile, KycStatus, User
from tests.accounts.helpers import next_time_step, wrong_code
from tests.factories import DEFAULT_PASSWORD, UserFactory, enable_totp, totp_code
from trading.audit import AuditRecord
from trading.oidc_settings import OidcConfigError, oidc_apps

CLIENT_ID = "meridian-test"
CLIENT_SECRET = "s3cret-" + "x" * 24
LOGIN = "/accounts/oidc/local/login/"
CALLBACK = "/accounts/oidc/local/login/callback/"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class LocalProvider:
    """A minimal OpenID Connect provider. ``identity`` is whoever signs in at it next."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.identity: dict = {}
        self.audience = CLIENT_ID
        self.codes: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, provider.discovery())
                if url.path == "/jwks":
                    return self._json(200, provider.jwks())
                if url.path == "/authorize":
                    return provider.authorize(self, query)
                if url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    claims = provider.access_tokens.get(token)
                    if claims is None:
                        return self._json(401, {"error": "invalid_token"})
                    return self._json(200, claims)
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                if urlsplit(self.path).path != "/token":
                    return self._json(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = provider.token(form)
                return self._json(status, body)

        self.access_tokens: dict[str, dict] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def discovery(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email"],
        }

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()

        def as_b64(value: int) -> str:
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": as_b64(numbers.n),
                    "e": as_b64(numbers.e),
                }
            ]
        }

    def authorize(self, handler, query: dict):
        """The trader is signed in at the provider as ``identity`` and consents at once."""
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return handler._json(400, {"error": "invalid_request"})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return handler._json(400, {"error": "invalid_request", "error_description": "PKCE required"})
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "claims": dict(self.identity),
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
            "nonce": query.get("nonce"),
            "scope": query.get("scope", ""),
        }
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        handler.send_response(302)
        handler.send_header("Location", target)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def token(self, form: dict) -> tuple[int, dict]:
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.audience,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            **grant["claims"],
        }
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = dict(grant["claims"])
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}


@contextmanager
def provider_running():
    """A LocalProvider serving on its own thread until the block ends."""
    provider = LocalProvider()
    provider.thread.start()
    try:
        yield provider
    finally:
        provider.server.shutdown()
        provider.server.server_close()


@pytest.fixture(scope="module")
def local_provider():
    with provider_running() as provider:
        yield provider


@pytest.fixture
def provider(local_provider, settings):
    """The local provider configured the way OIDC_PROVIDERS configures one."""
    local_provider.audience = CLIENT_ID
    local_provider.token_requests.clear()
    raw = json.dumps(
        [
            {
                "id": "local",
                "name": "Local ID",
                "server_url": local_provider.url,
                "client_id": CLIENT_ID,
                "secret": CLIENT_SECRET,
            }
        ]
    )
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": oidc_apps(raw)}}
    return local_provider


def identity(email: str, *, verified: bool = True, sub: str | None = None) -> dict:
    return {"sub": sub or f"sub-{email}", "email": email, "email_verified": verified, "name": "Test Trader"}


def sign_in_with_provider(client: Client, provider: LocalProvider, who: dict, *, next_url: str = ""):
    """Press "Sign in with Local ID", sign in at the provider, come back: the callback's response."""
    provider.identity = who
    start = client.post(LOGIN, {"next": next_url} if next_url else {})
    assert start.status_code == 302, start.content[:500]
    authorize = start["Location"]
    assert authorize.startswith(f"{provider.url}/authorize?"), authorize
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    assert sorted(query["scope"][0].split()) == ["email", "openid", "profile"]
    at_provider = requests.get(authorize, allow_redirects=False, timeout=5)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == CALLBACK
    return client.get(f"{back.path}?{back.query}")


def signed_in_as(client: Client) -> str | None:
    response = client.get("/api/v1/me")
    return response.json()["email"] if response.status_code == 200 else None


def error_messages(client: Client, response) -> str:
    assert response.status_code == 302 and response["Location"] == "/login/", response
    return client.get("/login/").content.decode()


def login_history(client: Client) -> list[dict]:
    response = client.get("/api/v1/login-history")
    assert response.status_code == 200, response.content
    return response.json()


# --- configuration ---------------------------------------------------------------------------


def test_oidc_providers_variable_is_parsed_and_checked():
    assert oidc_apps("") == [] and oidc_apps("  ") == []
    [app] = oidc_apps(
        '[{"id": "acme", "name": "Acme ID", "server_url": "https://id.acme.example", '
        '"client_id": "c", "secret": "s", "token_auth_method": "client_secret_basic"}]'
    )
    assert app == {
        "provider_id": "acme",
        "name": "Acme ID",
        "client_id": "c",
        "secret": "s",
        "settings": {
            "server_url": "https://id.acme.example",
            "oauth_pkce_enabled": True,
            "token_auth_method": "client_secret_basic",
        },
    }
    for bad, reason in [
        ("{not json", "not valid JSON"),
        ('[{"id": "acme", "name": "A"}]', "lacks server_url, client_id, secret"),
        ('[{"id": "Acme!", "name": "A", "server_url": "u", "client_id": "c", "secret": "s"}]', "must be lower-case"),
        ('[{"id": "a", "name": "A", "server_url": "u", "client_id": "c", "secret": "s", "colour": 1}]', "unknown keys"),
        ('"acme"', "must be a JSON list"),
    ]:
        with pytest.raises(OidcConfigError, match=reason):
            oidc_apps(bad)
    twice = '{"id": "a", "name": "A", "server_url": "u", "client_id": "c", "secret": "s"}'
    with pytest.raises(OidcConfigError, match="appears twice"):
        oidc_apps(f"[{twice}, {twice}]")


@pytest.mark.django_db
def test_without_providers_the_login_page_has_no_social_buttons(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": []}}
    page = client.get("/login/")
    assert page.status_code == 200
    assert "Sign in with" not in page.content.decode()
    assert client.post(LOGIN).status_code == 404


# --- the flow ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_trader_signs_up_with_the_provider(client, provider):
    page = client.get("/login/").content.decode()
    assert "Sign in with Local ID" in page and f'action="{LOGIN}"' in page

    response = sign_in_with_provider(client, provider, identity("New.Trader@Example.com"))

    assert response.status_code == 302 and response["Location"] == "/trade/", response
    user = User.objects.get(email="new.trader@example.com")
    assert signed_in_as(client) == user.email
    # the account the sign-up form creates: a KYC profile to fill, no password to sign in with
    assert KycProfile.objects.get(user=user).status == KycStatus.NONE
    assert not user.has_usable_password()
    link = SocialAccount.objects.get(user=user)
    assert (link.provider, link.uid) == ("local", "sub-New.Trader@Example.com")
    assert client.get("/wallet/").status_code == 200
    # allauth sent the PKCE verifier and the client secret; the provider checked both
    [token_request] = provider.token_requests
    assert token_request["code_verifier"] and token_request["client_secret"] == CLIENT_SECRET
    [sign_in] = login_history(client)
    assert (sign_in["method"], sign_in["method_label"]) == ("oidc", "Local ID (OpenID Connect)")
    assert AuditRecord.objects.filter(action="auth.social_signup", target_id=str(user.pk)).count() == 1

    # signing in again uses the link, creates nothing new
    client.post("/logout/")
    assert signed_in_as(client) is None
    again = sign_in_with_provider(client, provider, identity("New.Trader@Example.com"), next_url="/wallet/")
    assert again.status_code == 302 and again["Location"] == "/wallet/"
    assert signed_in_as(client) == user.email
    assert User.objects.filter(email=user.email).count() == 1 and SocialAccount.objects.count() == 1


@pytest.mark.django_db
def test_an_existing_email_the_provider_verified_is_linked(client, provider):
    user = UserFactory(email="linked@example.com")

    response = sign_in_with_provider(client, provider, identity("linked@example.com", verified=True))

    assert response.status_code == 302 and response["Location"] == "/trade/"
    assert signed_in_as(client) == user.email
    assert SocialAccount.objects.get(provider="local").user_id == user.pk
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)  # the password still works
    assert User.objects.count() == 1
    assert AuditRecord.objects.filter(action="auth.social_linked", target_id=str(user.pk)).count() == 1


@pytest.mark.django_db
def test_an_existing_email_the_provider_did_not_verify_is_refused(client, provider):
    user = UserFactory(email="victim@example.com")

    response = sign_in_with_provider(client, provider, identity("victim@example.com", verified=False))

    page = error_messages(client, response)
    assert "An account with victim@example.com already exists" in page and "was not linked" in page
    assert signed_in_as(client) is None
    assert not SocialAccount.objects.exists() and User.objects.count() == 1
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)  # and it is not wiped either


@pytest.mark.django_db
def test_a_trader_with_2fa_stops_at_the_code_step(client, provider):
    user = UserFactory(email="careful@example.com")
    device = enable_totp(user)

    response = sign_in_with_provider(client, provider, identity("careful@example.com"), next_url="/wallet/")

    assert response.status_code == 302 and response["Location"] == "/login/otp/"
    assert signed_in_as(client) is None  # not signed in before the code
    assert client.get("/account/").status_code == 302
    refused = client.post("/login/otp/", {"otp": wrong_code(device)})
    assert refused.status_code == 200 and signed_in_as(client) is None
    next_time_step(device)
    accepted = client.post("/login/otp/", {"otp": totp_code(device)})
    assert accepted.status_code == 302 and accepted["Location"] == "/wallet/"
    assert signed_in_as(client) == user.email
    [sign_in] = login_history(client)
    assert (sign_in["method"], sign_in["method_label"]) == ("oidc_2fa", "Local ID (OpenID Connect) and 2FA code")


@pytest.mark.django_db
def test_an_id_token_for_another_client_is_refused(client, provider):
    provider.audience = "someone-else"

    response = sign_in_with_provider(client, provider, identity("mallory@example.com"))

    assert "Sign-in with Local ID did not complete" in error_messages(client, response)
    assert signed_in_as(client) is None and not User.objects.exists()


@pytest.mark.django_db
def test_a_provider_without_an_email_is_refused(client, provider):
    response = sign_in_with_provider(client, provider, {"sub": "no-email"})

    assert "Local ID did not share your email address" in error_messages(client, response)
    assert signed_in_as(client) is None and not User.objects.exists()


@pytest.mark.django_db
def test_a_provider_that_cannot_be_reached_is_a_refusal_not_an_error(client, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    raw = json.dumps(
        [
            {
                "id": "down",
                "name": "Down ID",
                "server_url": f"http://127.0.0.1:{closed_port}",
                "client_id": "c",
                "secret": "s",
            }
        ]
    )
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": oidc_apps(raw)}}

    response = client.post("/accounts/oidc/down/login/")

    assert "Down ID cannot be reached right now" in error_messages(client, response)
    callback = client.get("/accounts/oidc/down/login/callback/?code=x&state=y")
    assert callback.status_code == 302 and callback["Location"] == "/login/"
