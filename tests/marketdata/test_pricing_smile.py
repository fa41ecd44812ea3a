"""SVI smile per expiry (marketdata.pricing.smile)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.pricing import DEFAULT_ATM_VOL, Smile, black76_chain, default_smile
from marketdata.pricing.smile import LEE_MAX_SLOPE

FORWARD = 65000.0


def _vol_derivatives(smile, h=1e-4):
    """Implied vol and its first two derivatives in k at the money, by central differences."""
    up, mid, down = smile.vol_at(h), smile.vol_at(0.0), smile.vol_at(-h)
    return mid, (up - down) / (2 * h), (up - 2 * mid + down) / (h * h)


@pytest.mark.parametrize(
    ("atm", "skew", "curvature", "t"),
    [
        (0.55, -0.1, 0.8, 30 / 365),
        (0.70, 0.05, 0.3, 0.5),
        (0.55, 0.0, 1.0, 7 / 365),
        (1.2, -0.3, 0.5, 2.0),
    ],
)
def test_from_atm_reproduces_level_skew_and_curvature(atm, skew, curvature, t):
    smile = Smile.from_atm(atm, skew, curvature, t)
    level, slope, convexity = _vol_derivatives(smile)
    assert level == pytest.approx(atm, rel=1e-12)
    assert smile.atm_vol == pytest.approx(atm, rel=1e-12)
    assert slope == pytest.approx(skew, rel=1e-6, abs=1e-9)
    assert convexity == pytest.approx(curvature, rel=1e-4)
    assert smile.m == 0.0 and smile.sigma == pytest.approx(atm * math.sqrt(t))


def test_from_atm_refuses_what_svi_cannot_fit():
    with pytest.raises(ValueError, match="convex"):
        Smile.from_atm(0.55, 0.0, -0.5, 0.1)  # concave at the money
    with pytest.raises(ValueError, match="too steep"):
        Smile.from_atm(0.55, -2.0, 0.01, 0.1)
    with pytest.raises(ValueError):
        Smile.from_atm(0.0, 0.0, 1.0, 0.1)
    with pytest.raises(ValueError):
        Smile.from_atm(0.55, 0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    "params",
    [
        dict(b=-0.1),
        dict(rho=1.0),
        dict(rho=-1.5),
        dict(sigma=0.0),
        dict(a=-1.0),
        dict(t_years=0.0),
        dict(a=math.nan),
        dict(m=math.inf),
    ],
)
def test_invalid_svi_parameters_are_refused(params):
    with pytest.raises(ValueError):
        Smile(**(dict(t_years=0.1, a=0.01, b=0.1, rho=-0.3, m=0.0, sigma=0.1) | params))


def test_vol_scalar_and_vectorised_agree():
    smile = default_smile(0.55, 30 / 365)
    strikes = FORWARD * np.linspace(0.3, 3.0, 200)
    vols = smile.vols(strikes, FORWARD)
    assert vols.shape == (200,)
    for k, v in zip(strikes, vols):
        assert smile.vol(float(k), FORWARD) == pytest.approx(float(v), rel=1e-14)
    with pytest.raises(ValueError):
        smile.vol(0.0, FORWARD)
    with pytest.raises(ValueError):
        smile.vols(np.array([1.0, -1.0]), FORWARD)


@pytest.mark.parametrize("underlying", sorted(DEFAULT_ATM_VOL))
@pytest.mark.parametrize("days", [1, 7, 30, 90, 180, 365, 730])
def test_default_smile_is_sane_and_arbitrage_free(underlying, days):
    atm = DEFAULT_ATM_VOL[underlying]
    t = days / 365
    smile = default_smile(atm, t)
    assert smile.violations() == []
    assert smile.is_arbitrage_free()
    assert smile.atm_vol == pytest.approx(atm, rel=1e-12)
    sd = atm * math.sqrt(t)
    put_25, call_25 = smile.vol_at(-0.674 * sd), smile.vol_at(0.674 * sd)
    # puts a bit richer than calls (risk reversal of a few points), wings above the money
    assert -0.05 < call_25 - put_25 < 0.0
    assert 0.0 < 0.5 * (put_25 + call_25) - atm < 0.05
    assert smile.vol_at(-3 * sd) > put_25 and smile.vol_at(3 * sd) > call_25
    # the chain prices from it: calls decrease, puts increase with the strike (no arbitrage)
    strikes = FORWARD * np.exp(np.linspace(-4 * sd, 4 * sd, 200))
    chain = black76_chain(FORWARD, strikes, t, smile.vols(strikes, FORWARD))
    assert np.all(np.diff(chain.call.price) <= 1e-9 * FORWARD)
    assert np.all(np.diff(chain.put.price) >= -1e-9 * FORWARD)
    # and butterflies are worth something: the call price is convex in the strike
    slopes = np.diff(chain.call.price) / np.diff(strikes)
    assert np.all(np.diff(slopes) >= -1e-12)


def test_default_smile_shape_is_the_same_in_standardised_moneyness():
    short, long = default_smile(0.55, 7 / 365), default_smile(0.55, 1.0)
    for z in (-2.0, -1.0, 0.5, 2.0):
        assert short.vol_at(z * 0.55 * math.sqrt(7 / 365)) == pytest.approx(long.vol_at(z * 0.55), rel=1e-12)
    assert short.rho == pytest.approx(long.rho)


def test_violations_are_reported():
    steep = Smile(t_years=1.0, a=0.01, b=1.5, rho=0.5, m=0.0, sigma=0.1)
    assert any("Lee" in v for v in steep.violations())
    # a very convex narrow smile: negative density between the wings
    spiky = Smile(t_years=1.0, a=0.0, b=1.2, rho=0.0, m=0.0, sigma=0.005)
    problems = spiky.violations()
    assert any("butterfly" in p for p in problems)
    assert not spiky.is_arbitrage_free()
    assert any("zero" in p for p in Smile(t_years=1.0, a=-0.1, b=1.0, rho=0.0, m=0.0, sigma=0.1).violations())


def test_durrleman_g_matches_the_density_of_call_prices():
    """g < 0 exactly where d2C/dK2 < 0: check g against the second difference of call prices
    computed from the smile."""
    smile = Smile(t_years=1.0, a=0.0, b=1.2, rho=0.0, m=0.0, sigma=0.005)
    k = np.linspace(-0.3, 0.3, 601)
    strikes = FORWARD * np.exp(k)
    chain = black76_chain(FORWARD, strikes, 1.0, smile.vols(strikes, FORWARD))
    density = chain.call.price[:-2] - 2 * chain.call.price[1:-1] + chain.call.price[2:]
    g = smile.durrleman_g(k[1:-1])
    clear = np.abs(g) > 0.05
    assert np.all((density[clear] < 0) == (g[clear] < 0))


@settings(max_examples=200, deadline=None)
@given(st.floats(0.05, 3.0), st.floats(1 / 365, 2.0), st.floats(-0.1, 0.1), st.floats(0.05, 0.4))
def test_default_smiles_within_lee_are_arbitrage_free(atm, t, skew_z, curvature_z):
    if abs(skew_z) >= skew_z * skew_z + curvature_z:  # SVI rho would leave (-1, 1)
        with pytest.raises(ValueError, match="too steep"):
            default_smile(atm, t, skew_z=skew_z, curvature_z=curvature_z)
        return
    smile = default_smile(atm, t, skew_z=skew_z, curvature_z=curvature_z)
    assert smile.atm_vol == pytest.approx(atm, rel=1e-12)
    if smile.b * (1 + abs(smile.rho)) <= LEE_MAX_SLOPE:
        assert smile.violations() == []
