"""Implied volatility (marketdata.pricing.implied): accuracy against the true vol and
QuantLib, robustness (never raises, never NaN), and the vectorised solver."""

import itertools
import math
import sys

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.pricing import (
    REASON_ABOVE_UPPER_BOUND,
    REASON_BELOW_INTRINSIC,
    REASON_INVALID_INPUT,
    REASON_NO_CONVERGENCE,
    REASON_NON_FINITE,
    REASON_OK,
    REASON_ZERO_TIME,
    IvResult,
    black76_price,
    black76_valuation,
    discount_factor,
    forward_price,
    implied_vol,
    implied_vol_vec,
)

EPS = sys.float_info.epsilon
FORWARD = 65000.0
STRIKES = FORWARD * np.geomspace(0.5, 2.0, 25)
TIMES = np.geomspace(1.0 / 365.0, 2.0, 12)
VOLS = np.geomspace(0.05, 3.0, 12)
REASONS = {
    REASON_OK,
    REASON_BELOW_INTRINSIC,
    REASON_ABOVE_UPPER_BOUND,
    REASON_ZERO_TIME,
    REASON_NON_FINITE,
    REASON_INVALID_INPUT,
    REASON_NO_CONVERGENCE,
}


def _vol_tolerance(vol, forward, strike, vega_points):
    """What the input price can tell: 1e-12 relative, plus the vol that a rounding error of
    a few units of max(F, K) * eps in the premium moves (vega per 1.00 = 100 * per point)."""
    vega = vega_points * 100.0
    return 1e-12 * vol + (64.0 * EPS * max(forward, strike) / vega if vega > 0 else math.inf)


@pytest.mark.parametrize("kind", ["call", "put"])
@pytest.mark.parametrize("rate", [0.0, 0.05])
def test_round_trip_on_a_broad_grid(kind, rate):
    """price(vol) -> implied_vol -> vol back, to what the price determines; and the
    re-priced option matches the input to 1e-10 absolute (on a forward of 65000)."""
    worst_reprice = 0.0
    misses = []
    for strike, t, vol in itertools.product(STRIKES, TIMES, VOLS):
        strike, t, vol = float(strike), float(t), float(vol)
        discount = math.exp(-rate * t)
        v = black76_valuation(kind, FORWARD, strike, t, vol, discount)
        res = implied_vol(kind, v.price, FORWARD, strike, t, discount)
        assert res.ok, (strike, t, vol, res)
        if abs(res.vol - vol) > _vol_tolerance(vol, FORWARD, strike, v.vega):
            misses.append((strike, t, vol, res.vol))
        worst_reprice = max(worst_reprice, abs(black76_price(kind, FORWARD, strike, t, res.vol, discount) - v.price))
    assert misses == []
    assert worst_reprice <= 1e-10


def test_round_trip_is_tight_where_vega_is_not_tiny():
    """Where the vega is at least 1e-6 of the forward per vol point, the vol comes back to
    1e-9 relative; and to 1e-12 where the option has a healthy time value."""
    worst_mid, worst_healthy = 0.0, 0.0
    for strike, t, vol, kind in itertools.product(STRIKES, TIMES, VOLS, ["call", "put"]):
        strike, t, vol = float(strike), float(t), float(vol)
        v = black76_valuation(kind, FORWARD, strike, t, vol)
        if v.vega < 1e-6 * FORWARD:
            continue
        err = abs(implied_vol(kind, v.price, FORWARD, strike, t).vol - vol) / vol
        worst_mid = max(worst_mid, err)
        if v.vega > 1e-3 * FORWARD:
            worst_healthy = max(worst_healthy, err)
    assert worst_mid < 1e-9
    assert worst_healthy < 1e-12


@pytest.mark.parametrize("kind", ["call", "put"])
def test_agrees_with_quantlib_implied_std_dev(kind):
    """QuantLib's blackFormulaImpliedStdDev (accuracy 1e-14) as the reference solver, where
    the problem is well posed (vega at least 1e-4 of the forward per vol point)."""
    compared = 0
    misses = []
    for strike, t, vol in itertools.product(STRIKES, TIMES, VOLS):
        strike, t, vol = float(strike), float(t), float(vol)
        discount = math.exp(-0.03 * t)
        v = black76_valuation(kind, FORWARD, strike, t, vol, discount)
        if v.vega < 1e-4 * FORWARD:
            continue
        ref = ql.blackFormulaImpliedStdDev(
            ql.Option.Call if kind == "call" else ql.Option.Put,
            strike,
            FORWARD,
            v.price,
            discount,
            0.0,
            ql.nullDouble(),
            1e-14,
            1000,
        ) / math.sqrt(t)
        ours = implied_vol(kind, v.price, FORWARD, strike, t, discount).vol
        compared += 1
        if abs(ours - ref) > 1e-6 * ref:
            misses.append((strike, t, vol, ours, ref))
    assert compared > 500
    assert misses == []


def test_hull_implied_volatility_example():
    """Hull, Section 15.11: a call worth 1.875 with S=21, K=20, r=10%, T=0.25 implies
    sigma = 0.235."""
    t = 0.25
    res = implied_vol("call", 1.875, forward_price(21.0, t, r=0.10), 20.0, t, discount_factor(0.10, t))
    assert res.ok and res.reason == REASON_OK
    assert res.vol == pytest.approx(0.235, abs=0.0005)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("call", 9.0, 100.0, 90.0, 0.5), REASON_BELOW_INTRINSIC),
        (("put", -0.01, 100.0, 90.0, 0.5), REASON_BELOW_INTRINSIC),
        (("call", 100.5, 100.0, 90.0, 0.5), REASON_ABOVE_UPPER_BOUND),
        (("call", 100.0, 100.0, 90.0, 0.5), REASON_ABOVE_UPPER_BOUND),  # = F: infinite vol
        (("put", 95.0, 100.0, 90.0, 0.5, 0.9), REASON_ABOVE_UPPER_BOUND),  # > K * D
        (("call", 10.0, 100.0, 90.0, 0.0), REASON_ZERO_TIME),
        (("call", math.nan, 100.0, 90.0, 0.5), REASON_NON_FINITE),
        (("call", 10.0, math.inf, 90.0, 0.5), REASON_NON_FINITE),
        (("call", 10.0, 100.0, 90.0, -math.inf), REASON_NON_FINITE),
        (("call", 10.0, 100.0, 90.0, 0.5, math.nan), REASON_NON_FINITE),
        (("call", 10.0, -100.0, 90.0, 0.5), REASON_INVALID_INPUT),
        (("call", 10.0, 100.0, 0.0, 0.5), REASON_INVALID_INPUT),
        (("call", 10.0, 100.0, 90.0, -0.5), REASON_INVALID_INPUT),
        (("call", 10.0, 100.0, 90.0, 0.5, 0.0), REASON_INVALID_INPUT),
        (("straddle", 10.0, 100.0, 90.0, 0.5), REASON_INVALID_INPUT),
        ((None, 10.0, 100.0, 90.0, 0.5), REASON_INVALID_INPUT),
        (("call", "ten", 100.0, 90.0, 0.5), REASON_INVALID_INPUT),
    ],
)
def test_failures_say_why(args, reason):
    res = implied_vol(*args)
    assert res == IvResult(False, None, reason)


def test_price_at_intrinsic_is_zero_vol():
    assert implied_vol("call", 10.0, 100.0, 90.0, 0.5) == IvResult(True, 0.0, REASON_OK)
    assert implied_vol("put", 0.0, 100.0, 90.0, 0.5) == IvResult(True, 0.0, REASON_OK)
    # a rounding below intrinsic is still intrinsic, not an arbitrage
    assert implied_vol("call", 10.0 - 1e-14, 100.0, 90.0, 0.5).ok


def test_extreme_but_valid_prices_solve():
    # ~1e-243 of the forward, deep out of the money: a tiny but well-defined vol
    price = black76_price("call", FORWARD, 2 * FORWARD, 4 / 365, 0.2)
    assert 0 < price < 1e-200
    res = implied_vol("call", price, FORWARD, 2 * FORWARD, 4 / 365)
    assert res.ok and res.vol == pytest.approx(0.2, rel=1e-8)
    # a huge vol, close to the upper bound
    price = black76_price("call", FORWARD, FORWARD, 2.0, 8.0)
    res = implied_vol("call", price, FORWARD, FORWARD, 2.0)
    assert res.ok and res.vol == pytest.approx(8.0, rel=1e-6)


# --- properties -------------------------------------------------------------------------

kinds = st.sampled_from(["call", "put"])
any_float = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(kinds, st.sampled_from(["C", "Put", "x", ""])),
    any_float,
    any_float,
    any_float,
    any_float,
    st.one_of(st.just(1.0), any_float),
)
def test_never_raises_never_nan(kind, price, forward, strike, t, discount):
    res = implied_vol(kind, price, forward, strike, t, discount)
    assert isinstance(res, IvResult)
    assert res.reason in REASONS
    if res.ok:
        assert res.reason == REASON_OK
        assert isinstance(res.vol, float) and math.isfinite(res.vol) and res.vol >= 0.0
    else:
        assert res.vol is None and res.reason != REASON_OK


@settings(max_examples=500, deadline=None)
@given(
    kinds,
    st.floats(0.0, 1e300),
    st.floats(1e-300, 1e300),
    st.floats(1e-300, 1e300),
    st.floats(1e-300, 1e3),
    st.floats(1e-300, 10.0),
)
def test_never_raises_on_extreme_magnitudes(kind, price, forward, strike, t, discount):
    res = implied_vol(kind, price, forward, strike, t, discount)
    assert res.ok == (res.reason == REASON_OK)
    assert (res.vol is None) if not res.ok else math.isfinite(res.vol)


@settings(max_examples=500, deadline=None)
@given(
    kinds, st.floats(1.0, 1e5), st.floats(0.5, 2.0), st.floats(1 / 365, 2.0), st.floats(0.05, 3.0), st.floats(0.8, 1.0)
)
def test_round_trip_property(kind, forward, moneyness, t, vol, discount):
    strike = forward * moneyness
    v = black76_valuation(kind, forward, strike, t, vol, discount)
    res = implied_vol(kind, v.price, forward, strike, t, discount)
    assert res.ok
    assert abs(black76_price(kind, forward, strike, t, res.vol, discount) - v.price) <= 1e-10
    assert abs(res.vol - vol) <= _vol_tolerance(vol, forward, strike, v.vega / discount)


@settings(max_examples=300, deadline=None)
@given(
    kinds,
    st.floats(1.0, 1e5),
    st.floats(0.5, 2.0),
    st.floats(1 / 365, 2.0),
    st.floats(0.05, 3.0),
    st.floats(1.001, 2.0),
)
def test_implied_vol_is_monotonic_in_price(kind, forward, moneyness, t, vol, bump):
    strike = forward * moneyness
    low = black76_price(kind, forward, strike, t, vol)
    high = black76_price(kind, forward, strike, t, vol * bump)
    if high > low:
        assert implied_vol(kind, high, forward, strike, t).vol > implied_vol(kind, low, forward, strike, t).vol


# --- vectorised ---------------------------------------------------------------------------


def test_vectorised_matches_scalar_on_the_grid():
    cases = list(itertools.product(["call", "put"], STRIKES, TIMES, VOLS))
    kind = np.array([c[0] for c in cases])
    strike = np.array([c[1] for c in cases])
    t = np.array([c[2] for c in cases])
    vol = np.array([c[3] for c in cases])
    discount = np.exp(-0.02 * t)
    prices = np.array(
        [
            black76_price(k, FORWARD, float(s), float(tt), float(v), float(d))
            for k, s, tt, v, d in zip(kind, strike, t, vol, discount)
        ]
    )
    out = implied_vol_vec(kind, prices, FORWARD, strike, t, discount)
    scalar = [
        implied_vol(k, float(p), FORWARD, float(s), float(tt), float(d))
        for k, p, s, tt, d in zip(kind, prices, strike, t, discount)
    ]
    assert out.ok.tolist() == [r.ok for r in scalar]
    assert list(out.reason) == [r.reason for r in scalar]
    scalar_vol = np.array([r.vol for r in scalar])
    live = prices > 1e-290 * FORWARD  # below, both are reading denormals
    np.testing.assert_allclose(out.vol[live], scalar_vol[live], rtol=1e-10, atol=0)


def test_vectorised_failures_and_shapes():
    out = implied_vol_vec(
        np.array(["call", "put", "call", "call", "call", "call", "straddle", "put"]),
        np.array([9.0, -1.0, 101.0, np.nan, 10.0, 10.0, 10.0, 0.0]),
        100.0,
        np.array([90.0, 90.0, 90.0, 90.0, 90.0, -5.0, 90.0, 90.0]),
        np.array([0.5, 0.5, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5]),
    )
    assert out.reason.tolist() == [
        REASON_BELOW_INTRINSIC,
        REASON_BELOW_INTRINSIC,
        REASON_ABOVE_UPPER_BOUND,
        REASON_NON_FINITE,
        REASON_ZERO_TIME,
        REASON_INVALID_INPUT,
        REASON_INVALID_INPUT,
        REASON_OK,
    ]
    assert out.ok.tolist() == [False] * 7 + [True]
    assert np.isnan(out.vol[:7]).all() and out.vol[7] == 0.0
    # broadcasting, bool kinds, a 2-d chain
    strikes = FORWARD * np.linspace(0.6, 1.6, 12).reshape(3, 4)
    prices = np.vectorize(lambda k: black76_price("call", FORWARD, k, 0.1, 0.6))(strikes)
    out = implied_vol_vec(True, prices, FORWARD, strikes, 0.1)
    assert out.vol.shape == (3, 4) and out.ok.all()
    np.testing.assert_allclose(out.vol, 0.6, rtol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(kinds, any_float, any_float, any_float, any_float), min_size=1, max_size=20))
def test_vectorised_never_raises(rows):
    kind, price, forward, strike, t = (np.array(col) for col in zip(*rows))
    out = implied_vol_vec(kind, price, forward, strike, t)
    assert out.vol.shape == (len(rows),)
    assert set(out.reason.tolist()) <= REASONS
    assert (np.isnan(out.vol) == ~out.ok).all()
    assert (out.vol[out.ok] >= 0).all()
