"""Vectorised Black-76 (marketdata.pricing.vector): the same numbers as the scalar API,
a whole chain per call."""

import itertools
import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marketdata.pricing import (
    ValuationArrays,
    black76_chain,
    black76_valuation,
    black76_vec,
    default_smile,
)

FORWARD = 65000.0
FIELDS = ValuationArrays._fields


def _scalar(kind, forward, strike, t, vol, discount):
    return black76_valuation(kind, float(forward), float(strike), float(t), float(vol), float(discount))


def _assert_matches_scalar(out, kinds, forward, strike, t, vol, discount, rtol=1e-13):
    for i in np.ndindex(out.price.shape):
        kind = kinds if isinstance(kinds, str) else kinds[i]
        ref = _scalar(
            kind,
            np.broadcast_to(forward, out.price.shape)[i],
            strike[i],
            np.broadcast_to(t, out.price.shape)[i],
            np.broadcast_to(vol, out.price.shape)[i],
            np.broadcast_to(discount, out.price.shape)[i],
        )
        for name in FIELDS:
            got, want = float(getattr(out, name)[i]), getattr(ref, name)
            if got == want:  # also the same infinity (gamma at the money as vol -> 0)
                continue
            scale = {
                "price": 1e-15 * forward,
                "delta": 1e-15,
                "gamma": 1e-15 / forward,
                "vega": 1e-15 * forward,
                "theta": 1e-15 * forward,
            }[name]
            assert abs(got - want) <= rtol * abs(want) + np.max(scale), (name, i, got, want)


def test_chain_of_200_strikes_matches_scalar_and_quantlib():
    t = 30 / 365
    strikes = FORWARD * np.linspace(0.5, 2.0, 200)
    vols = default_smile(0.55, t).vols(strikes, FORWARD)
    discount = math.exp(-0.04 * t)
    chain = black76_chain(FORWARD, strikes, t, vols, discount)
    assert chain.call.price.shape == chain.put.price.shape == (200,)
    _assert_matches_scalar(chain.call, "call", FORWARD, strikes, t, vols, discount)
    _assert_matches_scalar(chain.put, "put", FORWARD, strikes, t, vols, discount)
    for i in range(0, 200, 7):
        ref = ql.BlackCalculator(
            ql.PlainVanillaPayoff(ql.Option.Put, strikes[i]), FORWARD, vols[i] * math.sqrt(t), discount
        )
        assert chain.put.price[i] == pytest.approx(ref.value(), rel=1e-9)
        assert chain.put.vega[i] == pytest.approx(ref.vega(t) / 100, rel=1e-9)
    # put-call parity across the chain
    np.testing.assert_allclose(
        chain.call.price - chain.put.price, discount * (FORWARD - strikes), rtol=0, atol=1e-10 * FORWARD
    )
    np.testing.assert_allclose(chain.call.delta - chain.put.delta, discount, rtol=1e-14)


def test_vec_matches_scalar_on_the_broad_grid():
    cases = list(
        itertools.product(
            ["call", "put"],
            FORWARD * np.geomspace(0.5, 2.0, 25),
            np.geomspace(1 / 365, 2, 12),
            np.geomspace(0.05, 3.0, 12),
        )
    )
    kinds = np.array([c[0] for c in cases])
    strikes, times, vols = (np.array([c[j] for c in cases]) for j in (1, 2, 3))
    discounts = np.exp(-0.05 * times)
    out = black76_vec(kinds, FORWARD, strikes, times, vols, discounts)
    _assert_matches_scalar(out, kinds, FORWARD, strikes, times, vols, discounts)


def test_edges_match_scalar():
    strikes = np.array([90.0, 100.0, 110.0, 90.0, 100.0, 110.0])
    times = np.array([0.0, 0.0, 0.0, 0.5, 0.5, 0.5])
    vols = np.array([0.5, 0.5, 0.5, 0.0, 0.0, 0.0])
    for kind in ("call", "put"):
        out = black76_vec(kind, 100.0, strikes, times, vols, 0.95)
        _assert_matches_scalar(out, kind, 100.0, strikes, times, vols, 0.95, rtol=0)


def test_kinds_as_bools_and_signs_and_broadcasting():
    strikes = FORWARD * np.linspace(0.8, 1.2, 6).reshape(2, 3)
    by_name = black76_vec(np.array([["call", "put", "call"], ["put", "call", "put"]]), FORWARD, strikes, 0.1, 0.6)
    by_bool = black76_vec(np.array([[True, False, True], [False, True, False]]), FORWARD, strikes, 0.1, 0.6)
    by_sign = black76_vec(np.array([[1, -1, 1], [-1, 1, -1]]), FORWARD, strikes, 0.1, 0.6)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(by_name, name), getattr(by_bool, name))
        np.testing.assert_array_equal(getattr(by_name, name), getattr(by_sign, name))
    assert by_name.price.shape == (2, 3)


@pytest.mark.parametrize(
    "bad",
    [
        dict(forward=0.0),
        dict(strike=np.array([1.0, -1.0])),
        dict(t_years=np.array([0.1, np.nan])),
        dict(vol=-0.5),
        dict(discount=np.inf),
        dict(kind="straddle"),
        dict(kind=np.array(["call", "x"])),
    ],
)
def test_impossible_inputs_raise(bad):
    args = dict(kind="call", forward=100.0, strike=np.array([90.0, 110.0]), t_years=0.5, vol=0.5, discount=1.0) | bad
    with pytest.raises(ValueError):
        black76_vec(args.pop("kind"), **args)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["call", "put"]),
    st.floats(1.0, 1e6),
    hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(0.2, 5.0)),
    st.floats(0.0, 5.0),
    st.floats(0.0, 5.0),
    st.floats(0.5, 1.0),
)
def test_vectorised_equals_scalar_property(kind, forward, moneyness, t, vol, discount):
    strikes = forward * moneyness
    out = black76_vec(kind, forward, strikes, t, vol, discount)
    _assert_matches_scalar(out, kind, forward, strikes, t, vol, discount, rtol=1e-12)
