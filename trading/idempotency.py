"""Idempotent writes: the client-chosen id an order carries (`client_order_id`) and the
fingerprint of a request, which a replay must match (orders, spot and options)."""

from __future__ import annotations

import hashlib
import re

from trading.errors import ValidationFailed

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def parse_client_order_id(value) -> str:
    value = (value or "").strip() if isinstance(value, str) else value
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise ValidationFailed(
            "client_order_id must be 1 to 64 letters, digits or . _ : -",
            fields={"client_order_id": ["1 to 64 characters: letters, digits, . _ : -"]},
        )
    return value


def request_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
