"""Black-76 implied volatility: robust, scalar (plain ``math``) and vectorised (numpy).

The solver never raises and never answers NaN: a price that no volatility can produce comes
back as ``IvResult(ok=False, vol=None, reason=...)`` with one of the ``REASON_*`` codes.

Method. The price is reduced to Jäckel's normalised form: the option's time value (price
less intrinsic, undiscounted) divided by sqrt(F*K) is the price ``beta`` of an out-of-the-
money call on log-moneyness x = -|ln(F/K)| <= 0,

    b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2),   s = vol * sqrt(T),

increasing in s from 0 to b_max = e^{x/2}, with an inflection at s_c = sqrt(2|x|). The root
is then found by a safeguarded Halley iteration on an objective that is nearly linear in its
variable, one per region:

* lower (beta <= b(s_c)): ln b as a function of w = 1/s^2 (ln b ~ -x^2 w / 2 for small s),
  started from the asymptotic expansion of b for small s;
* middle (b(s_c) < beta <= b_max/2): ln b as a function of s, started from the tangent at s_c;
* upper (beta > b_max/2): ln(b_max - b) as a function of s (~ -s^2/8), started from the
  large-s asymptote, with b_max - b computed without cancellation.

Every iterate is kept inside a bracket of the root (bisection when a step would leave it).
It converges to machine precision in 2-4 iterations (6 at worst on strikes 0.5-2x the
forward, 1 day to 2 years, vols 5%-300%), so the re-priced option matches the input to
rounding; the vol itself is as exact as the price determines it (error ~ eps * price / vega).

At the rounding level, a price equal to intrinsic (no time value) answers ``vol=0.0`` (ok);
a price at the upper bound (F*D for a call, K*D for a put) has no finite vol and fails
with ``REASON_ABOVE_UPPER_BOUND``.
"""

from __future__ import annotations

import math
import sys
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from scipy import special

from ._common import INV_SQRT_2PI, SQRT1_2, norm_cdf
from .vector import kind_signs

REASON_OK = ""
REASON_BELOW_INTRINSIC = "below intrinsic"
REASON_ABOVE_UPPER_BOUND = "above upper bound"
REASON_ZERO_TIME = "zero time"
REASON_NON_FINITE = "non-finite input"
REASON_INVALID_INPUT = "invalid input"  # unknown kind, non-number, forward/strike/discount <= 0, t < 0
REASON_NO_CONVERGENCE = "no convergence"

_EPS = sys.float_info.epsilon
_MAX_ITER = 64
_HALLEY_DONE = 1e-7  # relative step after which a Halley (cubic) iteration has converged
_NEWTON_DONE = 1e-10  # ... and a Newton (quadratic) one
_SLACK = 4.0 * _EPS  # rounding allowance on the no-arbitrage bounds, relative to max(F, K)
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_HALF_SQRT1_2 = 0.5 * SQRT1_2
_LOWER, _MIDDLE, _UPPER = 0, 1, 2
_inv_cdf = NormalDist().inv_cdf
_SIGNS = {"call": 1.0, "c": 1.0, "put": -1.0, "p": -1.0}
_ASYMPTOTIC_H2 = 1.0  # h^2 above which the small-s expansion starts the lower region


class IvResult(NamedTuple):
    ok: bool
    vol: float | None  # annualised, a fraction (0.55 = 55%); None when not ok
    reason: str  # REASON_OK ("") when ok, else one of the REASON_* codes


class IvArrays(NamedTuple):
    ok: np.ndarray  # bool
    vol: np.ndarray  # float64, NaN exactly where ok is False
    reason: np.ndarray  # object array of REASON_* strings ("" where ok)


def _fail(reason: str) -> IvResult:
    return IvResult(False, None, reason)


# --- normalised Black, x <= 0 (an out-of-the-money call) --------------------------------


def _b(x: float, s: float) -> float:
    """Normalised Black (x <= 0): the time value of an option over sqrt(F*K)."""
    if x == 0.0:
        return math.erf(s * _HALF_SQRT1_2)
    h = x / s
    t = 0.5 * s
    return math.exp(0.5 * x) * norm_cdf(h + t) - math.exp(-0.5 * x) * norm_cdf(h - t)


def _db_ds(x: float, s: float) -> float:
    h = x / s
    return INV_SQRT_2PI * math.exp(-0.5 * (h * h + 0.25 * s * s))


def _lower_guess(x: float, log_beta: float, w_c: float, b_c: float) -> float:
    """Start of the lower region, in w = 1/s^2 (w_c: the inflection).

    ln b is convex and decreasing in w, so the Newton step from w_c lands left of the root:
    a safe start. Further from the inflection (|h| = |x|/s large) the small-s expansion
    b ~ e^{-(h^2 + t^2)/2} / sqrt(2 pi) * s / (h^2 - t^2), t = s/2, is better: two
    fixed-point steps on it, taken when they land right of the safe start."""
    xx = x * x
    s_c = 1.0 / math.sqrt(w_c)
    # d ln b / dw at w_c: (b'/b) * ds/dw, ds/dw = -s^3/2
    slope = -_db_ds(x, s_c) / b_c * 0.5 * s_c * s_c * s_c
    safe = w_c + (log_beta - math.log(b_c)) / slope
    w = -2.0 * log_beta / xx
    for _ in range(2):
        a = xx * w - 0.25 / w
        if not a > 0.0:
            break
        w_next = 2.0 / xx * (-log_beta - 0.125 / w + math.log(1.0 / (math.sqrt(w) * a)) - _LN_SQRT_2PI)
        if not w_next > w_c:
            break
        w = w_next
    if xx * safe < _ASYMPTOTIC_H2:
        return safe
    return max(w, safe)


def _solve(x: float, beta: float, b_max: float) -> float | None:
    """s > 0 with b(x, s) == beta, for x <= 0 and 0 < beta < b_max; None if it fails."""
    e_plus = math.exp(0.5 * x)
    e_minus = math.exp(-0.5 * x)
    if x < 0.0:
        s_c = math.sqrt(-2.0 * x)
        b_c = _b(x, s_c)
    else:
        s_c = b_c = 0.0
    if beta <= b_c:
        region = _LOWER
        target = math.log(beta)
        lo, hi = 1.0 / (s_c * s_c), math.inf  # in w = 1/s^2
        y = _lower_guess(x, target, lo, b_c)
    elif beta <= 0.5 * b_max:
        region = _MIDDLE
        target = math.log(beta)
        lo, hi = s_c, math.inf
        slope = _db_ds(x, s_c) if s_c > 0.0 else INV_SQRT_2PI
        y = s_c + (beta - b_c) / slope  # tangent at the inflection: left of the root
    else:
        region = _UPPER
        c_star = b_max - beta
        target = math.log(c_star)
        lo, hi = s_c, math.inf
        y = max(-2.0 * _inv_cdf(c_star / (e_plus + e_minus)), s_c)
    lower = region == _LOWER
    upper = region == _UPPER
    xx = x * x
    prev_step = math.inf
    for _ in range(_MAX_ITER):
        s = 1.0 / math.sqrt(y) if lower else y
        h = x / s
        t = 0.5 * s
        if x == 0.0:
            value = math.erfc(t * SQRT1_2) if upper else math.erf(t * SQRT1_2)
        elif upper:  # b_max - b, a sum: no cancellation near the bound
            value = 0.5 * (e_plus * math.erfc((h + t) * SQRT1_2) + e_minus * math.erfc((t - h) * SQRT1_2))
        else:
            value = 0.5 * (e_plus * math.erfc(-(h + t) * SQRT1_2) - e_minus * math.erfc((t - h) * SQRT1_2))
        if value <= 0.0:
            # underflow: s too small (middle region) or too large (upper), w too large (lower)
            if region == _MIDDLE:
                lo = y
            else:
                hi = y
            y_next = _bisect(lo, hi, y)
            done_at = 0.0
        else:
            f = math.log(value) - target
            if f == 0.0:
                break
            # ln b increases with s (middle); ln b in w (lower) and ln(b_max - b) in s
            # (upper) decrease
            if (f < 0.0) == (region == _MIDDLE):
                if y > lo:
                    lo = y
            elif y < hi:
                hi = y
            q = INV_SQRT_2PI * math.exp(-0.5 * (h * h + t * t)) / value  # b' / value
            curv = xx / (s * s * s) - t * 0.5  # b'' / b'
            if upper:
                g1 = -q
                g2 = -q * curv - q * q
            else:
                g1 = q
                g2 = q * curv - q * q
            if lower:  # to w = 1/s^2: ds/dw = -s^3/2
                ds_dw = -0.5 * s * s * s
                g2 = (g2 * ds_dw - 1.5 * s * s * g1) * ds_dw
                g1 = g1 * ds_dw
            y_next = math.nan
            if g1 != 0.0 and math.isfinite(g1) and math.isfinite(g2):
                newton = -f / g1
                halley = 0.5 * newton * g2 / g1
                if -0.5 < halley < 0.5:
                    y_next = y + newton / (1.0 + halley)
                    done_at = _HALLEY_DONE
                else:
                    y_next = y + newton
                    done_at = _NEWTON_DONE
            if not (lo <= y_next <= hi):
                y_next = _bisect(lo, hi, y)
                done_at = 0.0
        step = abs(y_next - y)
        y = y_next
        # Converged: the error after a Halley step is O(step^3), after Newton O(step^2).
        # Or stuck at the rounding noise of b: the steps no longer shrink.
        if step <= done_at * y or (step <= 1e-9 * y and step > 0.5 * prev_step):
            break
        prev_step = step
    else:
        if not (hi < math.inf and hi - lo <= 1e-9 * hi):
            return None
        y = 0.5 * (lo + hi)
    s = 1.0 / math.sqrt(y) if lower else y
    return s if 0.0 < s < math.inf else None


def _bisect(lo: float, hi: float, y: float) -> float:
    if hi == math.inf:
        return 2.0 * max(y, lo, 1e-8)
    if lo <= 0.0:
        return 0.5 * hi
    return math.sqrt(lo * hi)


def implied_vol(
    kind: str, price: float, forward: float, strike: float, t_years: float, discount: float = 1.0
) -> IvResult:
    """Black-76 implied volatility of a premium ``price`` (quote currency, discounted like
    ``black76_price``). Never raises, never NaN: see ``IvResult`` and the REASON_* codes."""
    try:
        return _implied_vol(kind, price, forward, strike, t_years, discount)
    except (ArithmeticError, ValueError):  # belt and braces: extreme magnitudes
        return _fail(REASON_NO_CONVERGENCE)


def _implied_vol(kind, price, forward, strike, t_years, discount) -> IvResult:
    sign = _SIGNS.get(kind) if isinstance(kind, str) else None
    if sign is None:
        sign = _SIGNS.get(kind.lower()) if isinstance(kind, str) else None
        if sign is None:
            return _fail(REASON_INVALID_INPUT)
    try:
        price = float(price)
        forward = float(forward)
        strike = float(strike)
        t_years = float(t_years)
        discount = float(discount)
    except (TypeError, ValueError):
        return _fail(REASON_INVALID_INPUT)
    inf = math.inf
    if not (
        -inf < price < inf
        and -inf < forward < inf
        and -inf < strike < inf
        and -inf < t_years < inf
        and -inf < discount < inf
    ):
        return _fail(REASON_NON_FINITE)
    if forward <= 0.0 or strike <= 0.0 or discount <= 0.0 or t_years < 0.0:
        return _fail(REASON_INVALID_INPUT)
    if t_years == 0.0:
        return _fail(REASON_ZERO_TIME)
    undiscounted = price / discount
    if sign > 0.0:
        intrinsic = forward - strike if forward > strike else 0.0
        upper = forward
    else:
        intrinsic = strike - forward if strike > forward else 0.0
        upper = strike
    slack = _SLACK * (forward if forward > strike else strike)
    if undiscounted < intrinsic - slack:
        return _fail(REASON_BELOW_INTRINSIC)
    if not undiscounted <= upper + slack:  # also inf, from a tiny discount
        return _fail(REASON_ABOVE_UPPER_BOUND)
    ratio = forward / strike
    x = math.log(ratio) if 0.0 < ratio < inf else math.log(forward) - math.log(strike)
    if x > 0.0:
        x = -x
    beta = (undiscounted - intrinsic) / (math.sqrt(forward) * math.sqrt(strike))
    b_max = math.exp(0.5 * x)
    if beta >= b_max:
        return _fail(REASON_ABOVE_UPPER_BOUND)
    if beta <= 0.0:
        return IvResult(True, 0.0, REASON_OK)
    s = _solve(x, beta, b_max)
    if s is None:
        return _fail(REASON_NO_CONVERGENCE)
    vol = s / math.sqrt(t_years)
    if not vol < inf:
        return _fail(REASON_NO_CONVERGENCE)
    return IvResult(True, vol, REASON_OK)


# --- vectorised ---------------------------------------------------------------------


def _b_vec(x, s):
    h = x / s
    t = 0.5 * s
    out = np.exp(0.5 * x) * special.ndtr(h + t) - np.exp(-0.5 * x) * special.ndtr(h - t)
    return np.where(x == 0.0, special.erf(s * _HALF_SQRT1_2), out)


def _db_ds_vec(x, s):
    h = x / s
    return INV_SQRT_2PI * np.exp(-0.5 * (h * h + 0.25 * s * s))


def implied_vol_vec(kind, price, forward, strike, t_years, discount=1.0) -> IvArrays:
    """``implied_vol`` over numpy arrays (broadcast together). ``kind``: "call"/"put" for all,
    or an array of those strings, of bools (True = call) or of +1/-1. Same reasons as the
    scalar solver; ``vol`` is NaN exactly where ``ok`` is False. Never raises on values."""
    with np.errstate(all="ignore"):
        price, forward, strike, t_years, discount, sign = np.broadcast_arrays(
            *(np.asarray(a, dtype=float) for a in (price, forward, strike, t_years, discount)), kind_signs(kind)
        )
        shape = price.shape
        reason = np.full(shape, REASON_OK, dtype=object)
        vol = np.full(shape, np.nan)

        finite = (
            np.isfinite(price)
            & np.isfinite(forward)
            & np.isfinite(strike)
            & np.isfinite(t_years)
            & np.isfinite(discount)
        )
        invalid = np.isnan(sign) | (finite & ((forward <= 0) | (strike <= 0) | (discount <= 0) | (t_years < 0)))
        pending = ~invalid & finite
        reason[~finite] = REASON_NON_FINITE
        reason[invalid] = REASON_INVALID_INPUT  # an unknown kind wins over a non-finite value
        zero_t = pending & (t_years == 0)
        reason[zero_t] = REASON_ZERO_TIME
        pending &= ~zero_t

        undiscounted = price / discount
        intrinsic = np.maximum(sign * (forward - strike), 0.0)
        upper = np.where(sign > 0, forward, strike)
        slack = _SLACK * np.maximum(forward, strike)
        below = pending & (undiscounted < intrinsic - slack)
        reason[below] = REASON_BELOW_INTRINSIC
        pending &= ~below
        above = pending & ~(undiscounted <= upper + slack)
        reason[above] = REASON_ABOVE_UPPER_BOUND
        pending &= ~above

        ratio = forward / strike
        x = np.where((ratio > 0) & np.isfinite(ratio), np.log(ratio), np.log(forward) - np.log(strike))
        x = -np.abs(x)
        beta = (undiscounted - intrinsic) / (np.sqrt(forward) * np.sqrt(strike))
        b_max = np.exp(0.5 * x)
        at_top = pending & (beta >= b_max)
        reason[at_top] = REASON_ABOVE_UPPER_BOUND
        pending &= ~at_top
        at_intrinsic = pending & (beta <= 0)
        vol[at_intrinsic] = 0.0
        pending &= ~at_intrinsic

        idx = np.flatnonzero(pending)
        flat_vol = vol.reshape(-1)
        if idx.size:
            s = _solve_vec(x.reshape(-1)[idx], beta.reshape(-1)[idx], b_max.reshape(-1)[idx])
            v = s / np.sqrt(t_years.reshape(-1)[idx])
            good = np.isfinite(v) & (v > 0)
            flat_vol[idx[good]] = v[good]
            reason.reshape(-1)[idx[~good]] = REASON_NO_CONVERGENCE
        vol = flat_vol.reshape(shape)
        ok = reason == REASON_OK
        vol[~ok] = np.nan
        return IvArrays(ok.astype(bool), vol, reason)


def _solve_vec(x, beta, b_max):
    """Vectorised ``_solve``: the same regions, starting points, steps and stopping rule,
    element by element; NaN where an element does not converge."""
    n = x.size
    e_plus = np.exp(0.5 * x)
    e_minus = np.exp(-0.5 * x)
    s_c = np.sqrt(-2.0 * x)
    b_c = np.where(x < 0, _b_vec(x, np.where(x < 0, s_c, 1.0)), 0.0)
    region = np.where(beta <= b_c, _LOWER, np.where(beta <= 0.5 * b_max, _MIDDLE, _UPPER))
    lower = region == _LOWER
    middle = region == _MIDDLE
    upper = region == _UPPER
    c_star = b_max - beta
    target = np.where(upper, np.log(c_star), np.log(beta))
    lo = np.where(lower, 1.0 / (s_c * s_c), s_c)
    hi = np.full(n, np.inf)
    y = np.empty(n)
    if lower.any():
        xl = x[lower]
        xx = xl * xl
        w_c = lo[lower]
        sc = s_c[lower]
        bc = b_c[lower]
        log_beta = target[lower]
        slope = -_db_ds_vec(xl, sc) / bc * 0.5 * sc * sc * sc
        safe = w_c + (log_beta - np.log(bc)) / slope
        w = -2.0 * log_beta / xx
        for _ in range(2):
            a = xx * w - 0.25 / w
            w_next = 2.0 / xx * (-log_beta - 0.125 / w + np.log(1.0 / (np.sqrt(w) * a)) - _LN_SQRT_2PI)
            # a refused step leaves w as it is, so the next round refuses it again: the
            # scalar's early exit
            w = np.where((a > 0) & (w_next > w_c), w_next, w)
        w = np.maximum(w, w_c)
        y[lower] = np.where(xx * safe < _ASYMPTOTIC_H2, safe, np.maximum(w, safe))
    if middle.any():
        sc = s_c[middle]
        slope = np.where(sc > 0, _db_ds_vec(x[middle], np.where(sc > 0, sc, 1.0)), INV_SQRT_2PI)
        y[middle] = sc + (beta[middle] - b_c[middle]) / slope
    if upper.any():
        y[upper] = np.maximum(-2.0 * special.ndtri(c_star[upper] / (e_plus[upper] + e_minus[upper])), s_c[upper])

    done = np.zeros(n, dtype=bool)
    prev_step = np.full(n, np.inf)
    for _ in range(_MAX_ITER):
        a = np.flatnonzero(~done)
        if not a.size:
            break
        xa, ya, reg, ep, em = x[a], y[a], region[a], e_plus[a], e_minus[a]
        is_low, is_up, is_mid = reg == _LOWER, reg == _UPPER, reg == _MIDDLE
        s = np.where(is_low, 1.0 / np.sqrt(ya), ya)
        h = xa / s
        t = 0.5 * s
        # upper: e+ N(-h-t) + e- N(h-t);  otherwise: e+ N(h+t) - e- N(h-t)
        up_sign = np.where(is_up, 1.0, -1.0)
        value = 0.5 * (ep * special.erfc(up_sign * (h + t) * SQRT1_2) + up_sign * em * special.erfc((t - h) * SQRT1_2))
        at_money = xa == 0.0
        if at_money.any():
            value = np.where(at_money, np.where(is_up, special.erfc(t * SQRT1_2), special.erf(t * SQRT1_2)), value)
        positive = value > 0
        f = np.log(np.where(positive, value, 1.0)) - target[a]
        exact = positive & (f == 0.0)
        raise_lo = np.where(positive, (f < 0) == is_mid, is_mid)
        lo_a = np.where(raise_lo & ~exact, np.maximum(lo[a], ya), lo[a])
        hi_a = np.where(~raise_lo & ~exact, np.minimum(hi[a], ya), hi[a])
        q = INV_SQRT_2PI * np.exp(-0.5 * (h * h + t * t)) / np.where(positive, value, 1.0)
        curv = xa * xa / (s * s * s) - 0.5 * t
        g1 = np.where(is_up, -q, q)
        g2 = np.where(is_up, -q * curv - q * q, q * curv - q * q)
        ds_dw = -0.5 * s * s * s
        g2 = np.where(is_low, (g2 * ds_dw - 1.5 * s * s * g1) * ds_dw, g2)
        g1 = np.where(is_low, g1 * ds_dw, g1)
        newton = -f / g1
        halley = 0.5 * newton * g2 / g1
        use_halley = (halley > -0.5) & (halley < 0.5)
        y_next = ya + np.where(use_halley, newton / (1.0 + halley), newton)
        done_at = np.where(use_halley, _HALLEY_DONE, _NEWTON_DONE)
        stepped = positive & (g1 != 0) & np.isfinite(g1) & np.isfinite(g2) & (lo_a <= y_next) & (y_next <= hi_a)
        bisected = np.where(
            hi_a == np.inf,
            2.0 * np.maximum(np.maximum(ya, lo_a), 1e-8),
            np.where(lo_a <= 0, 0.5 * hi_a, np.sqrt(lo_a * hi_a)),
        )
        y_next = np.where(exact, ya, np.where(stepped, y_next, bisected))
        done_at = np.where(stepped, done_at, 0.0)
        step = np.abs(y_next - ya)
        lo[a], hi[a], y[a] = lo_a, hi_a, y_next
        finished = exact | (step <= done_at * y_next) | ((step <= 1e-9 * y_next) & (step > 0.5 * prev_step[a]))
        prev_step[a] = step
        done[a[finished]] = True
    stuck = ~done
    if stuck.any():
        narrow = stuck & (hi < np.inf) & (hi - lo <= 1e-9 * hi)
        y[narrow] = 0.5 * (lo[narrow] + hi[narrow])
        y[stuck & ~narrow] = np.nan
    s = np.where(region == _LOWER, 1.0 / np.sqrt(y), y)
    return np.where((s > 0) & np.isfinite(s), s, np.nan)
