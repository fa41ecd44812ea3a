"""How an API key signs a request, and how its secret is kept.

A client sends three headers with each request:

* ``X-API-KEY`` — the key's public id;
* ``X-API-TIMESTAMP`` — the time of sending, Unix milliseconds;
* ``X-API-SIGNATURE`` — hex HMAC-SHA256 with the key's secret of
  ``timestamp + METHOD + path-with-query + body`` (the body as sent, empty for a GET).

The server keeps each secret encrypted with a key derived from ``API_KEY_ENCRYPTION_KEY``
(``SECRET_KEY`` by default: keep the old value as ``API_KEY_ENCRYPTION_KEY`` when rotating
``SECRET_KEY``, or every key stops working). Plain functions; no Django models here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets

from cryptography.fernet import Fernet, InvalidToken

KEY_BYTES = 20  # the public id: 40 hex characters
SECRET_BYTES = 32  # the secret: 64 hex characters


def new_key() -> str:
    return secrets.token_hex(KEY_BYTES)


def new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def message(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    """What is signed: ``timestamp + METHOD + path-with-query + body``."""
    return f"{timestamp}{method.upper()}{path}".encode() + body


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes = b"") -> str:
    return hmac.new(secret.encode(), message(timestamp, method, path, body), hashlib.sha256).hexdigest()


def signature_ok(secret: str, signature: str, timestamp: str, method: str, path: str, body: bytes) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, method, path, body), signature.lower())


def _fernet(encryption_key: str) -> Fernet:
    digest = hashlib.sha256(b"meridian api key secrets:" + encryption_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret: str, encryption_key: str) -> bytes:
    return _fernet(encryption_key).encrypt(secret.encode())


def decrypt(token: bytes, encryption_key: str) -> str | None:
    """The secret, or None when it was encrypted under another key."""
    try:
        return _fernet(encryption_key).decrypt(bytes(token)).decode()
    except InvalidToken:
        return None


def networks(entries) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """An allowlist's entries (addresses or CIDR networks) as networks; raises ValueError."""
    return [ipaddress.ip_network(str(entry).strip(), strict=False) for entry in entries]


def ip_allowed(ip: str | None, allowlist: list[str]) -> bool:
    """An empty allowlist lets any address in."""
    if not allowlist:
        return True
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks(allowlist))
