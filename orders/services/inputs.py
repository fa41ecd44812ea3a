"""Order input parsing shared by the spot and options order entry."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal, InvalidOperation

from trading.errors import ValidationFailed
from trading.money import MAX_INTEGER_DIGITS

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def parse_decimal(value, *, field: str, step: Decimal, what: str) -> Decimal:
    """A positive decimal string (or integer) that is a whole number of ``step``s."""
    if value is None or value == "":
        raise ValidationFailed(f"{field} is required.", fields={field: ["This field is required."]})
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValidationFailed(f"Send {field} as a decimal string.", fields={field: ['Use a decimal string, e.g. "0.5".']})
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{field} is not a number.", fields={field: ["Not a decimal number."]}) from None
    if not number.is_finite() or number <= 0:
        raise ValidationFailed(f"{field} must be positive.", fields={field: ["Must be greater than zero."]})
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValidationFailed(f"{field} is too large.", fields={field: ["Too large."]})
    if number % step != 0:
        raise ValidationFailed(
            f"{field} must be a multiple of the {what} {step.normalize():f}.",
            fields={field: [f"A multiple of {step.normalize():f}."]},
        )
    return number.quantize(step)


def parse_client_order_id(value) -> str:
    value = (value or "").strip() if isinstance(value, str) else value
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise ValidationFailed(
            "client_order_id must be 1 to 64 letters, digits or . _ : -",
            fields={"client_order_id": ["1 to 64 characters: letters, digits, . _ : -"]},
        )
    return value


def request_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
