"""The counter's bid and ask around the model mark: a half-spread that scales with vega.

Plain numpy, no Django: floats (or arrays of one shape) in, floats out; callers quantize.

What the counter risks on a contract it sells or buys back is mostly a volatility error
(its smile being a point or two off) and the cost of hedging the delta. So the half-spread
is a number of volatility points charged on the contract's vega, plus a fraction of the
hedged notional, and not a fixed fraction of the premium::

    err(T)  = vol_points * (1 + short_boost * max(0, 1 - days / short_days))
    raw     = vega * err(T) + delta_cost * |delta| * forward
    half    = max(min_half, min(cap * price, raw))
    ask     = price + half
    bid     = min(price, max(price - half, intrinsic - intrinsic_fee * forward, 0))

``vega`` is USDT per vol point (``black`` units), ``days`` calendar days to expiry. Near the
money vega is large but so is the premium: the half-spread is about ``err / (100 * vol)`` of
the price (1.4 % at a 55 % vol and 0.75 points), the same fraction at any expiry, widened only
in the last ``short_days`` (gamma makes hedging dearer there). In the money vega fades and
the premium is mostly intrinsic value: the spread shrinks to the delta's hedging cost, and
the bid never falls below intrinsic value less ``intrinsic_fee`` of the forward (exercising
at once would pay more). Far out of the money the cap keeps a lottery ticket's spread a
bounded share of its price, and ``min_half`` (a tick) keeps the ask above the mark.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SpreadParams(NamedTuple):
    """The counter's spread settings (see the module docstring for the formula)."""

    #: volatility points charged on vega (1.0 = one point: vol 0.55 -> 0.56)
    vol_points: float = 0.75
    #: extra share of ``vol_points`` at expiry, fading linearly to 0 at ``short_days``
    short_boost: float = 0.5
    short_days: float = 7.0
    #: hedging cost per unit of |delta|, as a fraction of the forward (0.0001 = 1 bp)
    delta_cost: float = 0.0001
    #: the half-spread is at most this fraction of the price...
    cap: float = 0.15
    #: ...and at least this (USDT: one price tick)
    min_half: float = 0.01
    #: the bid is never below intrinsic value less this fraction of the forward
    intrinsic_fee: float = 0.0005


#: the shipped defaults (the settings' defaults)
DEFAULTS = SpreadParams()


class CounterPrices(NamedTuple):
    """Bid, mark, ask and the half-spread (the ask's distance from the mark), USDT per contract."""

    bid: np.ndarray | float
    mark: np.ndarray | float
    ask: np.ndarray | float
    half: np.ndarray | float


def vol_error(days, params: SpreadParams = DEFAULTS):
    """Volatility points charged on vega at ``days`` to expiry: ``vol_points``, and up to
    ``1 + short_boost`` times that in the last ``short_days``."""
    days = np.maximum(np.asarray(days, dtype=float), 0.0)
    fade = np.maximum(0.0, 1.0 - days / params.short_days) if params.short_days > 0 else 0.0
    return params.vol_points * (1.0 + params.short_boost * fade)


def half_spread(*, price, vega, delta, forward, days, params: SpreadParams = DEFAULTS):
    """The counter's half-spread in USDT per contract (formula in the module docstring)."""
    price = np.asarray(price, dtype=float)
    raw = np.abs(vega) * vol_error(days, params) + params.delta_cost * np.abs(delta) * np.asarray(forward, dtype=float)
    return np.maximum(params.min_half, np.minimum(params.cap * price, raw))


def intrinsic_value(sign, forward, strike, discount=1.0):
    """Discounted intrinsic value: ``discount * max(sign * (F - K), 0)`` (sign +1 call, -1 put)."""
    return np.asarray(discount, dtype=float) * np.maximum(
        np.asarray(sign, dtype=float) * (np.asarray(forward, dtype=float) - np.asarray(strike, dtype=float)), 0.0
    )


def bid_floor(sign, forward, strike, discount=1.0, *, params: SpreadParams = DEFAULTS):
    """The least the counter bids: intrinsic value less ``intrinsic_fee`` of the forward
    (negative out of the money, where 0 is the floor)."""
    return intrinsic_value(sign, forward, strike, discount) - params.intrinsic_fee * np.asarray(forward, dtype=float)


def counter_prices(
    *, sign, forward, strike, price, vega, delta, days, discount=1.0, params: SpreadParams = DEFAULTS
) -> CounterPrices:
    """The counter's bid and ask around ``price`` (the model mark): bid <= mark <= ask, the
    ask at least ``min_half`` above the mark, the bid never below 0 nor below intrinsic
    value less ``intrinsic_fee * forward`` (unless that is above the mark: then the mark)."""
    price = np.asarray(price, dtype=float)
    half = half_spread(price=price, vega=vega, delta=delta, forward=forward, days=days, params=params)
    floor = bid_floor(sign, forward, strike, discount, params=params)
    bid = np.minimum(price, np.maximum(np.maximum(price - half, floor), 0.0))
    return CounterPrices(bid, price, price + half, half)


def round_trip_cost(prices: CounterPrices):
    """What buying at the ask and selling straight back at the bid loses, as a fraction of
    what the buy paid (NaN for a zero ask)."""
    ask = np.asarray(prices.ask, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ask > 0, (ask - np.asarray(prices.bid, dtype=float)) / ask, np.nan)
