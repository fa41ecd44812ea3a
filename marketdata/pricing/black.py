"""Black-76 (on the forward) and Black-Scholes (on the spot) prices and greeks, scalar.

Plain ``math``: floats in, floats out. Callers quantize to ``Decimal`` at their edges.

Units (one contract = one unit of the underlying, e.g. 1 BTC):

* ``price`` -- premium in the quote currency (USDT) for the given forward or spot and
  discount factor. ``premium_in_underlying`` turns it into the Deribit-style premium.
* ``delta`` -- d price / d forward (Black-76) or d price / d spot (Black-Scholes), in units of
  the underlying per contract. The Black-76 delta includes the discount factor (D * N(d1)).
* ``gamma`` -- d delta / d forward (or spot), per 1 USDT of the underlying's price.
* ``vega`` -- USDT per one volatility point: the change of the price when ``vol`` moves by
  0.01 (0.55 -> 0.56), i.e. dV/dvol * 0.01. Deribit quotes vega this way.
* ``theta`` -- USDT per calendar day: -dV/dT / 365, T in years of 365 days. Black-76 theta
  holds the forward and the rate r = -ln(discount) / T fixed while T shrinks; Black-Scholes
  theta holds the spot, r and q fixed. With r = q = 0 and forward = spot they coincide.

Time is in years of 365 calendar days (``year_fraction``). ``vol`` is the annualised
lognormal volatility as a fraction (0.55 = 55%).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import NamedTuple

from ._common import (
    DAYS_PER_YEAR,
    SECONDS_PER_YEAR,
    VOL_POINT,
    check_inputs,
    kind_sign,
    log_moneyness,
    norm_cdf,
    norm_pdf,
)


class Greeks(NamedTuple):
    """Sensitivities of one contract; units in the module docstring (vega per vol point,
    theta per calendar day)."""

    delta: float
    gamma: float
    vega: float
    theta: float


class Valuation(NamedTuple):
    """Price and greeks from one evaluation (same units as ``Greeks``)."""

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float

    @property
    def greeks(self) -> Greeks:
        return Greeks(self.delta, self.gamma, self.vega, self.theta)


def _core(sign: float, forward: float, strike: float, t_years: float, vol: float):
    """(total std dev s, N(sign*d1), N(sign*d2), pdf(d1)); the zero-vol limit when s == 0."""
    s = vol * math.sqrt(t_years)
    if s > 0.0:
        d1 = log_moneyness(forward, strike) / s + 0.5 * s
        d2 = d1 - s
        return s, norm_cdf(sign * d1), norm_cdf(sign * d2), norm_pdf(d1)
    if forward == strike:
        return 0.0, 0.5, 0.5, 0.0
    itm = 1.0 if sign * (forward - strike) > 0.0 else 0.0
    return 0.0, itm, itm, 0.0


def _bounded(price: float, sign: float, forward: float, strike: float, discount: float) -> float:
    """Keep rounding from pushing a price outside [discounted intrinsic, upper bound]."""
    intrinsic = discount * max(sign * (forward - strike), 0.0)
    upper = discount * (forward if sign > 0 else strike)
    return min(max(price, intrinsic), upper)


def black76_price(kind: str, forward: float, strike: float, t_years: float, vol: float, discount: float = 1.0) -> float:
    """Black-76 premium in quote currency: discount * E[payoff] under a lognormal forward."""
    sign = kind_sign(kind)
    check_inputs(forward, strike, t_years, vol, discount)
    _, n1, n2, _ = _core(sign, forward, strike, t_years, vol)
    price = sign * discount * (forward * n1 - strike * n2)
    return _bounded(price, sign, forward, strike, discount)


def black76_valuation(
    kind: str, forward: float, strike: float, t_years: float, vol: float, discount: float = 1.0
) -> Valuation:
    """Black-76 price and greeks in one pass (delta and gamma with respect to the forward)."""
    sign = kind_sign(kind)
    check_inputs(forward, strike, t_years, vol, discount)
    s, n1, n2, pdf = _core(sign, forward, strike, t_years, vol)
    price = _bounded(sign * discount * (forward * n1 - strike * n2), sign, forward, strike, discount)
    delta = sign * discount * n1
    if pdf > 0.0:
        gamma = discount * pdf / (forward * s)
        sqrt_t = math.sqrt(t_years)
        vega = discount * forward * pdf * sqrt_t
        decay = 0.5 * discount * forward * pdf * vol / sqrt_t
    else:
        gamma = vega = decay = 0.0
    carry = -math.log(discount) / t_years * price if t_years > 0.0 and price > 0.0 else 0.0
    theta_year = carry - decay
    return Valuation(price, delta, gamma, vega * VOL_POINT, theta_year / DAYS_PER_YEAR)


def greeks(kind: str, forward: float, strike: float, t_years: float, vol: float, discount: float = 1.0) -> Greeks:
    """Black-76 greeks: delta/gamma on the forward, vega per vol point, theta per day."""
    return black76_valuation(kind, forward, strike, t_years, vol, discount).greeks


def _check_spot(spot: float, r: float, q: float) -> None:
    if not (0.0 < spot < math.inf):
        raise ValueError(f"spot must be positive and finite, not {spot!r}")
    if not (math.isfinite(r) and math.isfinite(q)):
        raise ValueError(f"rates must be finite, not r={r!r} q={q!r}")


def forward_price(spot: float, t_years: float, r: float = 0.0, q: float = 0.0) -> float:
    """F = S * exp((r - q) * T): r the quote currency's rate, q the underlying's."""
    return spot * math.exp((r - q) * t_years)


def discount_factor(r: float, t_years: float) -> float:
    return math.exp(-r * t_years)


def bs_valuation(
    kind: str, spot: float, strike: float, t_years: float, vol: float, r: float = 0.0, q: float = 0.0
) -> Valuation:
    """Black-Scholes on the spot with continuous rates r (quote) and q (underlying).

    Delta and gamma are with respect to the spot; theta holds spot, r and q fixed."""
    sign = kind_sign(kind)
    _check_spot(spot, r, q)
    forward = forward_price(spot, t_years, r, q)
    disc_r = math.exp(-r * t_years)
    disc_q = math.exp(-q * t_years)
    check_inputs(forward, strike, t_years, vol, disc_r)
    s, n1, n2, pdf = _core(sign, forward, strike, t_years, vol)
    price = _bounded(sign * disc_r * (forward * n1 - strike * n2), sign, forward, strike, disc_r)
    delta = sign * disc_q * n1
    if pdf > 0.0:
        gamma = disc_q * pdf / (spot * s)
        sqrt_t = math.sqrt(t_years)
        vega = spot * disc_q * pdf * sqrt_t
        decay = 0.5 * spot * disc_q * pdf * vol / sqrt_t
    else:
        gamma = vega = decay = 0.0
    theta_year = -decay - sign * r * strike * disc_r * n2 + sign * q * spot * disc_q * n1
    return Valuation(price, delta, gamma, vega * VOL_POINT, theta_year / DAYS_PER_YEAR)


def bs_price(
    kind: str, spot: float, strike: float, t_years: float, vol: float, r: float = 0.0, q: float = 0.0
) -> float:
    """Black-Scholes premium: Black-76 on F = S e^{(r-q)T} discounted at e^{-rT}."""
    return bs_valuation(kind, spot, strike, t_years, vol, r, q).price


def bs_greeks(
    kind: str, spot: float, strike: float, t_years: float, vol: float, r: float = 0.0, q: float = 0.0
) -> Greeks:
    return bs_valuation(kind, spot, strike, t_years, vol, r, q).greeks


def premium_in_underlying(premium_quote: float, index: float) -> float:
    """Deribit-style premium: the USDT premium expressed in the underlying at the index
    (e.g. 1300 USDT at an index of 65000 -> 0.02 BTC)."""
    if not (0.0 < index < math.inf):
        raise ValueError(f"index must be positive and finite, not {index!r}")
    return premium_quote / index


def premium_in_quote(premium_underlying: float, index: float) -> float:
    """Inverse of ``premium_in_underlying``: an underlying-denominated premium in USDT."""
    if not (0.0 < index < math.inf):
        raise ValueError(f"index must be positive and finite, not {index!r}")
    return premium_underlying * index


def year_fraction(start: datetime, end: datetime) -> float:
    """Calendar time from ``start`` to ``end`` in years of 365 days (negative if ``end`` is
    earlier). Use aware datetimes; expiries are 08:00 UTC."""
    return (end - start).total_seconds() / SECONDS_PER_YEAR
