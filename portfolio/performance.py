"""Returns from an equity curve: time-weighted (TWR) and money-weighted (MWR, an IRR).

Pure and deterministic: no Django. A curve is a list of ``Point``: a value at a moment and
the net deposits minus withdrawals (in USDT) that came in since the previous point. The
first point is the base: its flows are already inside its value and are ignored.

* **TWR** chains one factor per step, so deposits and withdrawals do not count as gains or
  losses: ``V_i / (V_{i-1} + F_i)``, the flows taken as arriving at the start of the step
  (a deposit is money at work for the day it came in). When that denominator is not
  positive (more left during the step than its start value: gains withdrawn the same day),
  the step is read with its flows at the end instead, ``(V_i - F_i) / V_{i-1}``; a step with
  nothing invested at its start and nothing coming in has no return and is skipped. Exact
  Decimal arithmetic throughout.
* **MWR** is the internal rate of return of the trader's own cash flows: the opening value
  invested at the base point, every step's net flow invested at the start of its step (the
  TWR's convention), the closing value taken out at the last point. Solved for the growth
  over the whole period (``y = ln(1 + R)`` with time in fractions of the period), so short
  and long periods have the same well-scaled equation; every sign change of the net present
  value on a grid is refined by safeguarded Newton steps inside its bracket, and with several
  roots (flows that change sign more than once) the one nearest a zero return is taken.
  No sign change: no rate (``None``), never a made-up number.

Both are returned for the period as fractions (``0.0523`` = 5.23 %); annualized figures only
for periods of a year or more (annualizing a week's return says little and GIPS forbids it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from itertools import pairwise

RATE_PLACES = Decimal("0.00000001")  # returns are given to 1e-8 (a millionth of a percent)
_PRECISION = 50
# y = ln(1 + R) over the whole period: from a 99.9999999 % loss to a gain of 10^13 times.
_Y_MIN, _Y_MAX = -21.0, 30.0
_GRID = 512


@dataclass(frozen=True)
class Point:
    at: datetime
    value: Decimal
    net_flows: Decimal = Decimal(0)


@dataclass(frozen=True)
class Returns:
    twr: Decimal | None
    mwr: Decimal | None
    twr_annualized: Decimal | None
    mwr_annualized: Decimal | None
    days: Decimal  # the period's length


def _rate(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(RATE_PLACES)


def twr_factors(points: Sequence[Point]) -> list[Decimal | None]:
    """The growth factor of each step after the base point (``None``: a step with nothing
    invested, skipped)."""
    factors: list[Decimal | None] = []
    with localcontext(prec=_PRECISION):
        for before, after in pairwise(points):
            start = before.value + after.net_flows
            if start > 0:
                factors.append(after.value / start)
            elif before.value > 0:
                factors.append((after.value - after.net_flows) / before.value)
            else:
                factors.append(None)
    return factors


def twr(points: Sequence[Point]) -> Decimal | None:
    """The time-weighted return over the curve, or ``None`` when no step had money in it."""
    factors = [f for f in twr_factors(points) if f is not None]
    if not factors:
        return None
    with localcontext(prec=_PRECISION):
        growth = Decimal(1)
        for factor in factors:
            growth *= factor
        return growth - 1


def cash_flows(points: Sequence[Point]) -> list[tuple[datetime, Decimal]]:
    """The trader's side of the curve, for the IRR: money put in is negative, money taken
    out (and the closing value) positive. Each step's flow is dated at the start of the step."""
    if len(points) < 2:
        return []
    flows = [(points[0].at, -points[0].value)]
    flows += [(before.at, -after.net_flows) for before, after in pairwise(points) if after.net_flows]
    flows.append((points[-1].at, points[-1].value))
    return flows


def _npv(y: float, terms: list[tuple[float, float]]) -> tuple[float, float]:
    """NPV at log-growth ``y`` and its derivative; ``terms`` are (fraction of the period, flow)."""
    value = slope = 0.0
    for s, amount in terms:
        discounted = amount * math.exp(-y * s)
        value += discounted
        slope -= s * discounted
    return value, slope


def _refine(lo: float, hi: float, f_lo: float, terms) -> float:
    """A root of the NPV inside [lo, hi] where it changes sign: Newton steps while they stay
    inside the bracket, bisection otherwise (always converges)."""
    y = (lo + hi) / 2
    for _ in range(200):
        value, slope = _npv(y, terms)
        if value == 0.0:
            return y
        if (value < 0) == (f_lo < 0):
            lo, f_lo = y, value
        else:
            hi = y
        newton = y - value / slope if slope else math.nan
        if lo < newton < hi:
            if abs(newton - y) <= 1e-14 * max(1.0, abs(y)):
                return newton
            y = newton
        else:
            y = (lo + hi) / 2
        if hi - lo <= 1e-14 * max(1.0, abs(y)):
            return y
    return y


def irr_log_growth(flows: Sequence[tuple[datetime, Decimal]], *, start: datetime, end: datetime) -> float | None:
    """``ln(1 + R)`` where R is the money-weighted return from ``start`` to ``end`` (the rate
    that brings the flows' present value to zero), or None when the flows have no rate (all
    of one sign, nothing at stake, or no root in range)."""
    flows = [(at, amount) for at, amount in flows if amount]
    if not flows or all(a > 0 for _, a in flows) or all(a < 0 for _, a in flows):
        return None
    span = (end - start).total_seconds()
    if span <= 0:
        return None
    scale = max(abs(a) for _, a in flows)
    terms = [((at - start).total_seconds() / span, float(amount / scale)) for at, amount in flows]
    roots = []
    step = (_Y_MAX - _Y_MIN) / _GRID
    y_prev, f_prev = _Y_MIN, _npv(_Y_MIN, terms)[0]
    for i in range(1, _GRID + 1):
        y = _Y_MIN + i * step
        f = _npv(y, terms)[0]
        if f_prev == 0.0:
            roots.append(y_prev)
        elif (f < 0) != (f_prev < 0) and f != 0.0:
            roots.append(_refine(y_prev, y, f_prev, terms))
        y_prev, f_prev = y, f
    if f_prev == 0.0:
        roots.append(y_prev)
    if not roots:
        return None
    return min(roots, key=abs)


def mwr(points: Sequence[Point]) -> Decimal | None:
    """The money-weighted return over the curve (the period's IRR, not annualized)."""
    if len(points) < 2:
        return None
    y = irr_log_growth(cash_flows(points), start=points[0].at, end=points[-1].at)
    return None if y is None else Decimal(repr(math.expm1(y)))


def _annualized(period_return: Decimal | None, days: Decimal) -> Decimal | None:
    if period_return is None or days < 365 or period_return <= -1:
        return None
    with localcontext(prec=_PRECISION):
        growth = (1 + period_return).ln() * Decimal(365) / days
        return growth.exp() - 1


def returns(points: Sequence[Point]) -> Returns:
    """TWR and MWR of the curve, for the period and (a year or longer) annualized."""
    if len(points) < 2:
        return Returns(None, None, None, None, Decimal(0))
    days = Decimal((points[-1].at - points[0].at).total_seconds()) / 86400
    period_twr, period_mwr = twr(points), mwr(points)
    return Returns(
        twr=_rate(period_twr),
        mwr=_rate(period_mwr),
        twr_annualized=_rate(_annualized(period_twr, days)),
        mwr_annualized=_rate(_annualized(period_mwr, days)),
        days=days,
    )
