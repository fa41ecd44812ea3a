"""Black-76 prices and greeks over numpy arrays: a whole option chain in one call.

Same formulas, edge cases and units as ``black.py`` (vega per vol point, theta per
calendar day); the normal distribution is ``scipy.special.ndtr`` (accurate in the tails,
where 1 - N(d) would cancel).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

from ._common import DAYS_PER_YEAR, INV_SQRT_2PI, VOL_POINT, kind_sign


class ValuationArrays(NamedTuple):
    """Price and greeks per option, arrays of one shape; units as ``black.Valuation``."""

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray


class ChainValuation(NamedTuple):
    call: ValuationArrays
    put: ValuationArrays


def kind_signs(kind, shape=()) -> np.ndarray:
    """+1.0 per call, -1.0 per put, NaN for anything else, broadcast to ``shape``.

    ``kind``: "call"/"put" for all; or an array of such strings, of bools (True = call),
    or of +1/-1."""
    if isinstance(kind, str):
        try:
            return np.full(shape, kind_sign(kind))
        except ValueError:
            return np.full(shape, np.nan)
    arr = np.asarray(kind)
    if arr.dtype == bool:
        signs = np.where(arr, 1.0, -1.0)
    elif arr.dtype.kind in "USO":
        arr = arr.astype(str)
        signs = np.where(arr == "call", 1.0, np.where(arr == "put", -1.0, np.nan))
        other = np.isnan(signs)
        if other.any():  # other spellings ("C", "Put", ...): rarer, and lower() is slow
            low = np.char.lower(arr[other])
            signs[other] = np.where(
                (low == "call") | (low == "c"), 1.0, np.where((low == "put") | (low == "p"), -1.0, np.nan)
            )
    elif arr.dtype.kind in "iuf":
        signs = np.where(arr == 1, 1.0, np.where(arr == -1, -1.0, np.nan))
    else:
        signs = np.full(arr.shape, np.nan)
    return np.broadcast_to(signs, np.broadcast_shapes(signs.shape, shape))


def _inputs(forward, strike, t_years, vol, discount):
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (forward, strike, t_years, vol, discount)))
    forward, strike, t_years, vol, discount = arrays
    for name, arr, low, strict in (
        ("forward", forward, 0.0, True),
        ("strike", strike, 0.0, True),
        ("t_years", t_years, 0.0, False),
        ("vol", vol, 0.0, False),
        ("discount", discount, 0.0, True),
    ):
        bad = ~np.isfinite(arr) | ((arr <= low) if strict else (arr < low))
        if bad.any():
            raise ValueError(
                f"{name} must be {'positive' if strict else '>= 0'} and finite; first bad value {arr[bad].flat[0]!r}"
            )
    return forward, strike, t_years, vol, discount


def _terms(forward, strike, t_years, vol):
    """sqrt(T), total std dev s, d1, d2 and pdf(d1), with the zero-vol limit where s == 0."""
    sqrt_t = np.sqrt(t_years)
    s = vol * sqrt_t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        ratio = forward / strike
        x = np.where((ratio > 0) & np.isfinite(ratio), np.log(ratio), np.log(forward) - np.log(strike))
        d1 = x / s + 0.5 * s
        zero = s == 0
        if zero.any():
            d1 = np.where(zero, np.where(forward > strike, np.inf, np.where(forward < strike, -np.inf, 0.0)), d1)
        d2 = d1 - s
        pdf = np.where(zero, 0.0, INV_SQRT_2PI * np.exp(-0.5 * d1 * d1))
    return sqrt_t, s, d1, d2, pdf


def _valuation(sign, forward, strike, t_years, vol, discount, sqrt_t, s, n1, n2, pdf) -> ValuationArrays:
    price = sign * discount * (forward * n1 - strike * n2)
    intrinsic = discount * np.maximum(sign * (forward - strike), 0.0)
    upper = discount * np.where(sign > 0, forward, strike)
    price = np.minimum(np.maximum(price, intrinsic), upper)
    delta = sign * discount * n1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        live = pdf > 0
        gamma = np.where(live, discount * pdf / (forward * s), 0.0)
        vega = discount * forward * pdf * sqrt_t * VOL_POINT
        decay = np.where(live, 0.5 * discount * forward * pdf * vol / sqrt_t, 0.0)
        rate = np.where(t_years > 0, -np.log(discount) / t_years, 0.0)
        carry = np.where(price > 0, rate * price, 0.0)
    theta = (carry - decay) / DAYS_PER_YEAR
    return ValuationArrays(price, delta, gamma, vega, theta)


def black76_vec(kind, forward, strike, t_years, vol, discount=1.0) -> ValuationArrays:
    """Black-76 price and greeks of many options at once; all arguments broadcast together.

    ``kind``: "call"/"put", or an array of them (or of bools, True = call, or of +1/-1).
    Raises ``ValueError`` on an unknown kind or an impossible input (as the scalar API)."""
    sign = kind_signs(kind)
    if np.isnan(sign).any():
        raise ValueError(f"option kind must be 'call' or 'put': {kind!r}")
    forward, strike, t_years, vol, discount, sign = np.broadcast_arrays(
        *_inputs(forward, strike, t_years, vol, discount), sign
    )
    sqrt_t, s, d1, d2, pdf = _terms(forward, strike, t_years, vol)
    return _valuation(sign, forward, strike, t_years, vol, discount, sqrt_t, s, ndtr(sign * d1), ndtr(sign * d2), pdf)


def black76_chain(forward, strikes, t_years, vols, discount=1.0) -> ChainValuation:
    """Calls and puts of one chain (e.g. 200 strikes of one expiry, ``vols`` from the
    smile) from one evaluation of d1, d2 and the density."""
    forward, strikes, t_years, vols, discount = _inputs(forward, strikes, t_years, vols, discount)
    sqrt_t, s, d1, d2, pdf = _terms(forward, strikes, t_years, vols)
    one = np.ones_like(forward)
    args = (forward, strikes, t_years, vols, discount, sqrt_t, s)
    return ChainValuation(
        call=_valuation(one, *args, ndtr(d1), ndtr(d2), pdf),
        put=_valuation(-one, *args, ndtr(-d1), ndtr(-d2), pdf),
    )
