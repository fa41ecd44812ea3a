"""Assets and amounts. Every amount is a ``Decimal`` quantized to its asset's scale."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext

from trading.errors import ValidationFailed

# asset -> number of decimal places the ledger keeps
ASSET_SCALES: dict[str, int] = {"USDT": 6, "BTC": 8, "ETH": 8}
ASSETS = tuple(ASSET_SCALES)
MAX_DIGITS = 38
LEDGER_DECIMAL_PLACES = 8  # the column scale; each asset uses at most this many
MAX_INTEGER_DIGITS = 20  # far above any real amount, well inside the columns


def check_asset(asset: str) -> str:
    asset = (asset or "").upper()
    if asset not in ASSET_SCALES:
        raise ValidationFailed(f"Unknown asset {asset!r}.", code="unknown_asset", fields={"asset": [f"One of {', '.join(ASSETS)}."]})
    return asset


def quantum(asset: str) -> Decimal:
    return Decimal(1).scaleb(-ASSET_SCALES[asset])


def quantize(asset: str, value: Decimal, rounding=ROUND_DOWN) -> Decimal:
    """Round ``value`` to the asset's scale (down by default: never credit a fraction we don't have)."""
    with localcontext(prec=MAX_DIGITS + 10):
        return Decimal(value).quantize(quantum(asset), rounding=rounding)


def parse_amount(asset: str, value, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    """A positive amount with no more decimals than the asset has; anything else is a 400."""
    asset = check_asset(asset)
    if isinstance(value, float):
        raise ValidationFailed("Send amounts as decimal strings, not floats.", fields={field: ["Use a decimal string."]})
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed(f"{field} is not a number.", fields={field: ["Not a decimal number."]}) from None
    if not amount.is_finite():
        raise ValidationFailed(f"{field} is not a finite number.", fields={field: ["Not a finite number."]})
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValidationFailed(f"{field} must be positive.", code="invalid_amount", fields={field: ["Must be greater than zero."]})
    if amount != 0 and amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValidationFailed(f"{field} is too large.", code="invalid_amount", fields={field: ["Too large."]})
    if amount != quantize(asset, amount):
        raise ValidationFailed(
            f"{asset} amounts have at most {ASSET_SCALES[asset]} decimal places.",
            code="invalid_amount",
            fields={field: [f"At most {ASSET_SCALES[asset]} decimal places."]},
        )
    return quantize(asset, amount)


def fmt(asset: str, value: Decimal) -> str:
    """The API's decimal string for an amount: the asset's scale, no exponent."""
    return f"{quantize(asset, value):f}"
