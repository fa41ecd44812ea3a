"""Small assertion and setup helpers shared by the accounts, notifications and trading tests."""

from __future__ import annotations

import struct
import zlib

from django_otp.plugins.otp_totp.models import TOTPDevice


def assert_error(response, status: int, code: str, *, field: str | None = None) -> dict:
    """The response is ``status`` in the API.md error format with ``code`` (and ``field`` named)."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["fields"], dict), error
    if field is not None:
        assert field in error["fields"], error
        assert error["fields"][field], error
    return error


def next_time_step(device: TOTPDevice) -> None:
    """Simulate the next 30-second window: a new code from the device becomes acceptable.

    django-otp refuses any code at or before the last accepted time step; tests that need
    more codes than one window allows forget that step instead of sleeping. Throttling
    state is cleared too, as it would have expired by then.
    """
    TOTPDevice.objects.filter(pk=device.pk).update(
        last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None
    )
    device.refresh_from_db()


def wrong_code(device: TOTPDevice) -> str:
    """A six-digit code the device would not accept in any nearby time step."""
    from tests.factories import totp_code

    valid = {totp_code(device, offset_steps=step) for step in range(-3, 4)}
    candidate = int(totp_code(device))
    while f"{candidate:06d}" in valid:
        candidate = (candidate + 1) % 1_000_000
    return f"{candidate:06d}"


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")
    )


def tiny_pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
