"""The counter's spread model (marketdata.pricing.spread): pure maths, no database.

Properties over a broad grid of forwards, strikes, expiries and vols: bid <= mark <= ask, the
bid never below intrinsic value less the fee nor below 0, the ask at least a tick above the
mark, the half-spread never above the cap (beyond the tick), more vega or delta never a
narrower spread, a call's spread a larger share of its price the higher its strike, and near
the money a round trip that costs a few percent where the flat spread cost up to 12 %.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from marketdata.pricing import black76_chain, black76_valuation, default_smile
from marketdata.pricing.spread import (
    DEFAULTS,
    SpreadParams,
    bid_floor,
    counter_prices,
    half_spread,
    intrinsic_value,
    round_trip_cost,
    vol_error,
)

forwards = st.floats(min_value=50.0, max_value=200_000.0)
moneyness = st.floats(min_value=0.3, max_value=3.0)
days = st.floats(min_value=0.01, max_value=400.0)
vols = st.floats(min_value=0.05, max_value=2.0)
kinds = st.sampled_from(["call", "put"])


def quoted(kind: str, forward: float, strike: float, day: float, vol: float, params: SpreadParams = DEFAULTS):
    v = black76_valuation(kind, forward, strike, day / 365.0, vol)
    sign = 1.0 if kind == "call" else -1.0
    prices = counter_prices(
        sign=sign,
        forward=forward,
        strike=strike,
        price=v.price,
        vega=v.vega,
        delta=v.delta,
        days=day,
        params=params,
    )
    return v, prices


@settings(max_examples=400, deadline=None)
@given(kind=kinds, forward=forwards, m=moneyness, day=days, vol=vols)
def test_bid_mark_ask_in_order_and_the_bid_never_below_intrinsic_less_the_fee(kind, forward, m, day, vol):
    strike = forward * m
    _, p = quoted(kind, forward, strike, day, vol)
    bid, mark, ask, half = float(p.bid), float(p.mark), float(p.ask), float(p.half)
    assert 0.0 <= bid <= mark <= ask
    assert ask - mark >= DEFAULTS.min_half - 1e-12  # deep out of the money keeps a tick
    intrinsic = max((forward - strike) if kind == "call" else (strike - forward), 0.0)
    assert bid >= intrinsic - DEFAULTS.intrinsic_fee * forward - 1e-9 * forward
    # the cap: never more than its share of the price, beyond the minimum tick
    assert half <= max(DEFAULTS.cap * mark, DEFAULTS.min_half) + 1e-12
    assert float(round_trip_cost(p)) == pytest.approx((ask - bid) / ask)


@settings(max_examples=300, deadline=None)
@given(
    price=st.floats(min_value=0.0, max_value=1e5),
    vega=st.floats(min_value=0.0, max_value=500.0),
    more=st.floats(min_value=0.0, max_value=500.0),
    delta=st.floats(min_value=0.0, max_value=1.0),
    forward=forwards,
    day=days,
)
def test_more_vega_or_delta_or_less_time_never_narrows_the_spread(price, vega, more, delta, forward, day):
    base = half_spread(price=price, vega=vega, delta=delta, forward=forward, days=day)
    assert half_spread(price=price, vega=vega + more, delta=delta, forward=forward, days=day) >= base
    assert half_spread(price=price, vega=vega, delta=min(1.0, delta + more / 500), forward=forward, days=day) >= base
    assert half_spread(price=price, vega=vega, delta=delta, forward=forward, days=day / 2) >= base
    # the sign of the greeks (a put's delta) does not matter
    assert half_spread(price=price, vega=vega, delta=-delta, forward=forward, days=day) == base


@settings(max_examples=200, deadline=None)
@given(forward=forwards, day=st.floats(min_value=0.5, max_value=400.0), vol=st.floats(min_value=0.2, max_value=1.5))
def test_a_calls_spread_is_a_larger_share_of_its_price_the_higher_its_strike(forward, day, vol):
    """Tighter near (and in) the money, wider out of it; a put the mirror image."""
    strikes = forward * np.exp(np.linspace(-0.6, 0.6, 49))
    t = day / 365.0
    chain = black76_chain(forward, strikes, t, np.full(strikes.shape, vol))
    for sign, values, direction in ((1.0, chain.call, 1), (-1.0, chain.put, -1)):
        p = counter_prices(
            sign=sign,
            forward=forward,
            strike=strikes,
            price=values.price,
            vega=values.vega,
            delta=values.delta,
            days=day,
            params=DEFAULTS._replace(min_half=0.0, intrinsic_fee=math.inf),  # the model alone
        )
        live = values.price > 1e-6 * forward  # where the price is more than rounding
        assume(live.sum() > 3)
        share = (p.half[live] / values.price[live])[::direction]
        assert np.all(np.diff(share) >= -1e-9 * np.maximum(share[1:], 1e-12)), share


def test_vol_error_is_boosted_in_the_last_week_only():
    assert vol_error(30) == DEFAULTS.vol_points
    assert vol_error(7) == DEFAULTS.vol_points
    assert vol_error(0) == pytest.approx(DEFAULTS.vol_points * (1 + DEFAULTS.short_boost))
    assert vol_error(3.5) == pytest.approx(DEFAULTS.vol_points * (1 + DEFAULTS.short_boost / 2))
    assert np.all(np.diff(vol_error(np.linspace(0, 10, 41))) <= 0)


def test_intrinsic_value_and_the_bid_floor():
    assert intrinsic_value(1.0, 100.0, 90.0) == 10.0
    assert intrinsic_value(-1.0, 100.0, 90.0) == 0.0
    assert intrinsic_value(-1.0, 100.0, 110.0) == 10.0
    assert float(bid_floor(1.0, 65000.0, 60000.0)) == pytest.approx(5000.0 - 0.0005 * 65000.0)


def test_deep_out_of_the_money_keeps_a_tick_and_the_cap_binds_short_wings():
    v, p = quoted("call", 65000.0, 130000.0, 1.0, 0.55)
    assert float(p.mark) < 1e-6 and float(p.ask) == pytest.approx(float(p.mark) + 0.01) and float(p.bid) == 0.0
    # a 1-day 15 % out-of-the-money call: vega is large against its price, the cap holds it
    v, p = quoted("call", 65000.0, 65000.0 * 1.15, 1.0, 0.8)
    assert float(p.half) == pytest.approx(DEFAULTS.cap * v.price)


# --- the figures docs/options.md quotes ---------------------------------------------------------

FORWARD = 65000.0


def flat_spread(days: float, base: float = 0.03) -> float:
    """The counter's former half-spread: 3 % of the mark, x1.5 inside a week, x2 inside a day."""
    return base * (2 if days < 1 else 1.5 if days < 7 else 1)


def round_trips(day: float, m: float) -> tuple[float, float, float]:
    """(new round-trip cost, former round-trip cost, new bid - intrinsic) of a BTC call."""
    strike = FORWARD * m
    vol = default_smile(0.55, day / 365.0).vol(strike, FORWARD)
    _, p = quoted("call", FORWARD, strike, day, vol)
    old = flat_spread(day)
    old_cost = 2 * old / (1 + old)
    return float(round_trip_cost(p)), old_cost, float(p.bid) - max(FORWARD - strike, 0.0)


@pytest.mark.parametrize(
    "day,m,most",
    [
        (0.5, 1.0, 0.06),  # the near-the-money call with hours to go: 11.3 % before
        (1, 1.0, 0.05),
        (7, 1.0, 0.04),
        (30, 1.0, 0.03),
        (90, 1.0, 0.03),
        (1, 0.95, 0.01),  # in the money: mostly intrinsic value
        (30, 0.9, 0.015),
        (30, 1.1, 0.06),  # out of the money: a larger share, still below the old 5.8 %
    ],
)
def test_round_trip_costs_quoted_in_the_docs(day, m, most):
    new, old, over_intrinsic = round_trips(day, m)
    assert new < most, (day, m, new)
    assert new < old
    assert over_intrinsic >= -DEFAULTS.intrinsic_fee * FORWARD


def test_a_one_day_in_the_money_calls_bid_was_below_intrinsic_and_is_not_now():
    strike = FORWARD * 0.95
    vol = default_smile(0.55, 1 / 365).vol(strike, FORWARD)
    v, p = quoted("call", FORWARD, strike, 1.0, vol)
    intrinsic = FORWARD - strike
    assert v.price * (1 - flat_spread(1)) < intrinsic  # the former bid: 70 USDT under intrinsic
    assert float(p.bid) > intrinsic  # now above it (the floor allows 32.50 under)
