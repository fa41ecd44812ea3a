"""Two-factor codes (TOTP, django-otp): whether a trader has 2FA on, and checking a code once.

Kept apart from ``services`` so that every module that needs a code checked (sessions, API
keys, withdrawals) can use it without importing the account services that use them.
"""

from __future__ import annotations

from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from trading.audit import audit_append
from trading.errors import DomainError, RateLimited, ValidationFailed

from . import signals
from .models import User


class InvalidOtp(DomainError):
    status = 401
    code = "otp_invalid"


def confirmed_device(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def two_factor_enabled(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def _verify_locked(device_qs, otp: str) -> tuple[TOTPDevice | None, str]:
    """Verify ``otp`` against the device with its row locked.

    The row lock makes a code single-use under concurrency: django-otp remembers the last
    accepted time step on the device, and only one transaction at a time can read and
    advance it. The failure counter commits too, so throttling survives a refused code.
    Returns (device, "ok" | "invalid" | "throttled" | "no_device").
    """
    token = (otp or "").strip().replace(" ", "")
    with transaction.atomic():
        device = device_qs.select_for_update().order_by("id").first()
        if device is None:
            return None, "no_device"
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            return device, "throttled"
        if not (token.isascii() and token.isdigit() and len(token) == device.digits):
            device.throttle_increment()
            return device, "invalid"
        if device.verify_token(token):
            return device, "ok"
        return device, ("used" if _already_used(device, int(token)) else "invalid")


def _already_used(device: TOTPDevice, token: int) -> bool:
    """Whether ``token`` is the device's code for a time step it already accepted a code in
    (django-otp takes one code per 30-second step): the trader should wait for the next."""
    if device.last_t is None or device.last_t < 0:
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    now = totp.t()
    for step in range(now - device.tolerance, now + device.tolerance + 1):
        if step <= device.last_t:
            totp.time = device.t0 + step * device.step
            if totp.token() == token:
                return True
    return False


def _raise_for(outcome: str) -> None:
    if outcome == "throttled":
        raise RateLimited("Too many wrong codes. Wait a little and try again.")
    if outcome == "no_device":
        raise ValidationFailed("2FA is not set up.", code="otp_not_configured")
    if outcome == "used":
        raise InvalidOtp(
            "This code was already used. Wait for your authenticator to show the next one (codes change every "
            "30 seconds) and enter that.",
            fields={"otp": ["Already used: wait for the next code."]},
        )
    if outcome == "invalid":
        raise InvalidOtp("The code is wrong or was already used.", fields={"otp": ["Invalid or already used code."]})


def otp_check(*, user: User, otp: str) -> TOTPDevice:
    """Accept a code from the user's active device exactly once, or raise."""
    device, outcome = _verify_locked(TOTPDevice.objects.filter(user=user, confirmed=True), otp)
    if outcome in ("invalid", "used", "throttled"):
        audit_append(actor=user, action="auth.otp_failed", target=user, data={"reason": outcome})
        signals.otp_failed.send(sender=User, user=user, reason=outcome)
    _raise_for(outcome)
    return device
