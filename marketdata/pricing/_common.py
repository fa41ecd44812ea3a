"""Shared constants, units and input checks for the pricing package (plain ``math``)."""

from __future__ import annotations

import math

CALL = "call"
PUT = "put"

#: Calendar days in the pricing year. Crypto trades every day, so time to expiry is
#: calendar time, and a year is 365 days (Deribit's convention).
DAYS_PER_YEAR = 365.0
SECONDS_PER_YEAR = DAYS_PER_YEAR * 86400.0

#: Vega is reported per one volatility point (vol 0.55 -> 0.56), i.e. dV/dvol * 0.01.
VOL_POINT = 0.01

INV_SQRT_2PI = 0.3989422804014327  # 1/sqrt(2*pi)
SQRT1_2 = 0.7071067811865476  # 1/sqrt(2)

_KINDS = {"call": 1.0, "c": 1.0, "put": -1.0, "p": -1.0}


def kind_sign(kind: str) -> float:
    """+1.0 for a call, -1.0 for a put. Accepts ``"call"``/``"put"`` (or ``"C"``/``"P"``),
    any case; anything else is a ``ValueError``."""
    try:
        return _KINDS[kind.lower()]
    except (AttributeError, KeyError):
        raise ValueError(f"option kind must be 'call' or 'put', not {kind!r}") from None


def norm_cdf(z: float) -> float:
    """Standard normal distribution function, accurate in both tails."""
    return 0.5 * math.erfc(-z * SQRT1_2)


def norm_pdf(z: float) -> float:
    return INV_SQRT_2PI * math.exp(-0.5 * z * z)


def log_moneyness(forward: float, strike: float) -> float:
    """ln(F/K), also when F/K would overflow or underflow."""
    ratio = forward / strike
    if 0.0 < ratio < math.inf:
        return math.log(ratio)
    return math.log(forward) - math.log(strike)


def check_inputs(forward: float, strike: float, t_years: float, vol: float, discount: float) -> None:
    """Pricing with impossible inputs is a caller's bug: say which one."""
    if not (0.0 < forward < math.inf):
        raise ValueError(f"forward must be positive and finite, not {forward!r}")
    if not (0.0 < strike < math.inf):
        raise ValueError(f"strike must be positive and finite, not {strike!r}")
    if not (0.0 <= t_years < math.inf):
        raise ValueError(f"t_years must be >= 0 and finite, not {t_years!r}")
    if not (0.0 <= vol < math.inf):
        raise ValueError(f"vol must be >= 0 and finite, not {vol!r}")
    if not (0.0 < discount < math.inf):
        raise ValueError(f"discount must be positive and finite, not {discount!r}")
