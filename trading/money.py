"""Assets, amounts and the one parser for every number that enters through the API.

Every amount is a ``Decimal`` quantized to its asset's scale. Every number a client sends
(amounts, prices, quantities, contracts, trails, display quantities, page sizes) goes through
``parse_decimal`` or ``parse_int``: ASCII digits only (``"１"``, ``"٣"`` and ``"1_000"`` are
not numbers here, though Python's ``Decimal`` and ``int`` take them), an optional sign only
where the field may be negative, an optional fraction, and an exponent of at most two
digits, so ``"1e-999999999"`` can never underflow to zero. Every refusal is a 400
``validation_error`` naming the field.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal, localcontext

from trading.errors import ValidationFailed

# asset -> number of decimal places the ledger keeps
ASSET_SCALES: dict[str, int] = {"USDT": 6, "BTC": 8, "ETH": 8}
ASSETS = tuple(ASSET_SCALES)
MAX_DIGITS = 38
LEDGER_DECIMAL_PLACES = 8  # the column scale; each asset uses at most this many
# An amount, price or quantity from a client is below 10**10: far above any real one, and
# inside every column (the embedded database keeps 64-bit integer counts of 1e-8 units).
MAX_INTEGER_DIGITS = 10

_NUMBER = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]{1,2}))?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)
_MAX_TEXT = 64


def _bad(field: str, message: str, hint: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [hint]})


def parse_decimal(
    value,
    *,
    field: str,
    places: int | None = None,
    step: Decimal | None = None,
    what: str = "",
    signed: bool = False,
    allow_zero: bool = False,
    maximum: Decimal | None = None,
) -> Decimal:
    """A decimal string (or JSON integer) for ``field``: positive unless ``signed`` or
    ``allow_zero``; with at most ``places`` decimals, or a whole number of ``step`` (``what``
    names the step in the message); at most ``maximum``. Returns it at that scale."""
    if isinstance(value, Decimal):
        # from the platform's own code (a ledger leg, say), not from a client: the same
        # limits, without reading text
        if not value.is_finite() or not -_MAX_TEXT <= value.as_tuple().exponent <= _MAX_TEXT:
            raise _bad(field, f"{field} is not a finite number.", "Not a finite number.")
        number = value
    else:
        if value is None or value == "":
            raise _bad(field, f"{field} is required.", "This field is required.")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _bad(field, f"Send {field} as a decimal string.", 'Use a decimal string, e.g. "0.5".')
        text = str(value)
        if len(text) > _MAX_TEXT or not _NUMBER.fullmatch(text):
            raise _bad(
                field,
                f"{field} is not a number.",
                "Not a decimal number: ASCII digits, an optional point and fraction.",
            )
        number = Decimal(text)  # exact: at most 64 characters and a two-digit exponent
    if number < 0 and not signed:
        raise _bad(field, f"{field} must be positive.", "Must be greater than zero.")
    if number == 0 and not (allow_zero or signed):
        raise _bad(field, f"{field} must be positive.", "Must be greater than zero.")
    if number != 0 and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise _bad(field, f"{field} is too large.", "Too large.")
    if maximum is not None and number > maximum:
        raise _bad(
            field, f"{field} is too large: at most {maximum.normalize():f}.", f"At most {maximum.normalize():f}."
        )
    with localcontext(prec=MAX_DIGITS + 2 * MAX_INTEGER_DIGITS + 100):
        if step is not None:
            if number % step:
                raise _bad(
                    field,
                    f"{field} must be a multiple of the {what or 'step'} {step.normalize():f}.",
                    f"A multiple of {step.normalize():f}.",
                )
            return number.quantize(step)
        if places is not None:
            unit = Decimal(1).scaleb(-places)
            if number != number.quantize(unit, rounding=ROUND_DOWN):
                raise _bad(field, f"{field} has at most {places} decimal places.", f"At most {places} decimal places.")
            return number.quantize(unit)
    return number


def parse_int(value, *, field: str, default: int | None = None, low: int | None = None, high: int | None = None) -> int:
    """An integer (a query parameter, say) in ASCII digits, within [low, high]."""
    if value is None or value == "":
        if default is None:
            raise _bad(field, f"{field} is required.", "This field is required.")
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not _INTEGER.fullmatch(str(value)):
        raise _bad(field, f"{field} must be an integer.", "Not an integer.")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        span = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        raise _bad(field, f"{field} must be {span}.", f"{span[0].upper()}{span[1:]}.")
    return number


def check_asset(asset: str) -> str:
    asset = asset.upper() if isinstance(asset, str) else ""
    if asset not in ASSET_SCALES:
        raise ValidationFailed(
            f"Unknown asset {asset!r}.", code="unknown_asset", fields={"asset": [f"One of {', '.join(ASSETS)}."]}
        )
    return asset


def quantum(asset: str) -> Decimal:
    return Decimal(1).scaleb(-ASSET_SCALES[asset])


def quantize(asset: str, value: Decimal, rounding=ROUND_DOWN) -> Decimal:
    """Round ``value`` to the asset's scale (down by default: never credit a fraction we don't have)."""
    with localcontext(prec=MAX_DIGITS + 10):
        return Decimal(value).quantize(quantum(asset), rounding=rounding)


def parse_amount(asset: str, value, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    """A positive amount of ``asset`` with no more decimals than the asset has."""
    asset = check_asset(asset)
    return parse_decimal(value, field=field, places=ASSET_SCALES[asset], allow_zero=allow_zero)


def fmt(asset: str, value: Decimal) -> str:
    """The API's decimal string for an amount: the asset's scale, no exponent."""
    return f"{quantize(asset, value):f}"
