"""Black-76 / Black-Scholes prices and greeks (marketdata.pricing), scalar API.

References: QuantLib's BlackCalculator on a broad grid, mpmath at 40 digits in the tails
(where QuantLib itself rounds), and published textbook figures (Hull; Haug).

Units: our vega is per volatility point (QuantLib's per 1.00: divide by 100); our theta is
per calendar day (QuantLib's per year: divide by 365).

Tolerance against QuantLib: 1e-6 relative, with an absolute floor of 1e-14 in each value's
natural scale (forward F for price, vega and theta; 1 for delta; 1/F for gamma). The floor
covers values near zero: the two libraries round differently (QuantLib takes N(-d) as
1 - N(d)), so far out of the money they agree only to a few units of F * 1e-16.
"""

import itertools
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mpmath
import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.pricing import (
    DAYS_PER_YEAR,
    Greeks,
    black76_price,
    black76_valuation,
    bs_greeks,
    bs_price,
    bs_valuation,
    discount_factor,
    forward_price,
    greeks,
    premium_in_quote,
    premium_in_underlying,
    year_fraction,
)

RTOL = 1e-6
FLOOR = 1e-14

FORWARD = 65000.0
STRIKES = FORWARD * np.geomspace(0.5, 2.0, 25)
TIMES = np.geomspace(1.0 / 365.0, 2.0, 12)
VOLS = np.geomspace(0.05, 3.0, 12)


def _ql_type(kind):
    return ql.Option.Call if kind == "call" else ql.Option.Put


def _mismatches(rows):
    """rows of (label, ours, reference, scale) -> the ones outside RTOL + FLOOR * scale."""
    return [
        (label, ours, ref) for label, ours, ref, scale in rows if not abs(ours - ref) <= RTOL * abs(ref) + FLOOR * scale
    ]


@pytest.mark.parametrize("kind", ["call", "put"])
@pytest.mark.parametrize("rate", [0.0, 0.05])
def test_black76_matches_quantlib_on_a_broad_grid(kind, rate):
    rows = []
    for strike, t, vol in itertools.product(STRIKES, TIMES, VOLS):
        strike, t, vol = float(strike), float(t), float(vol)
        discount = math.exp(-rate * t)
        ours = black76_valuation(kind, FORWARD, strike, t, vol, discount)
        ref = ql.BlackCalculator(ql.PlainVanillaPayoff(_ql_type(kind), strike), FORWARD, vol * math.sqrt(t), discount)
        case = (strike, t, vol)
        rows += [
            (("price", case), ours.price, ref.value(), FORWARD),
            (("delta", case), ours.delta, ref.deltaForward(), 1.0),
            (("gamma", case), ours.gamma, ref.gammaForward(), 1.0 / FORWARD),
            (("vega", case), ours.vega, ref.vega(t) / 100.0, FORWARD),
            # forward held fixed: QuantLib's theta with spot = forward
            (("theta", case), ours.theta, ref.theta(FORWARD, t) / DAYS_PER_YEAR, FORWARD),
        ]
    assert len(rows) == 5 * len(STRIKES) * len(TIMES) * len(VOLS)
    assert _mismatches(rows) == []


@pytest.mark.parametrize("kind", ["call", "put"])
@pytest.mark.parametrize(("rate", "carry_q"), [(0.0, 0.0), (0.05, 0.0), (0.05, 0.02), (-0.01, 0.03)])
def test_black_scholes_on_spot_matches_quantlib(kind, rate, carry_q):
    spot = FORWARD
    rows = []
    for strike, t, vol in itertools.product(STRIKES[::2], TIMES, VOLS[::2]):
        strike, t, vol = float(strike), float(t), float(vol)
        ours = bs_valuation(kind, spot, strike, t, vol, rate, carry_q)
        d_r, d_q = math.exp(-rate * t), math.exp(-carry_q * t)
        ref = ql.BlackCalculator(
            ql.PlainVanillaPayoff(_ql_type(kind), strike), spot * d_q / d_r, vol * math.sqrt(t), d_r
        )
        case = (strike, t, vol)
        rows += [
            (("price", case), ours.price, ref.value(), spot),
            (("delta", case), ours.delta, ref.delta(spot), 1.0),
            (("gamma", case), ours.gamma, ref.gamma(spot), 1.0 / spot),
            (("vega", case), ours.vega, ref.vega(t) / 100.0, spot),
            (("theta", case), ours.theta, ref.theta(spot, t) / DAYS_PER_YEAR, spot),
        ]
    assert _mismatches(rows) == []


@pytest.mark.parametrize(
    ("kind", "spot", "strike", "days", "vol", "rate", "carry_q"),
    [
        ("call", 65000.0, 70000.0, 30, 0.55, 0.0, 0.0),
        ("put", 65000.0, 60000.0, 7, 0.60, 0.05, 0.0),
        ("call", 3400.0, 3000.0, 90, 0.70, 0.04, 0.01),
        ("put", 3400.0, 4000.0, 365, 0.80, 0.03, 0.0),
    ],
)
def test_matches_a_full_quantlib_engine_with_dates(kind, spot, strike, days, vol, rate, carry_q):
    """The day-count convention end to end: QuantLib's analytic European engine with
    Actual/365 Fixed dates, NPV/delta/gamma/vega/thetaPerDay against bs_valuation."""
    today = ql.Date(1, 12, 2026)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    expiry = today + days
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, carry_q, day_count)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, day_count)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, day_count)),
    )
    option = ql.VanillaOption(ql.PlainVanillaPayoff(_ql_type(kind), strike), ql.EuropeanExercise(expiry))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    ours = bs_valuation(kind, spot, strike, days / 365.0, vol, rate, carry_q)
    assert ours.price == pytest.approx(option.NPV(), rel=1e-9)
    assert ours.delta == pytest.approx(option.delta(), rel=1e-9)
    assert ours.gamma == pytest.approx(option.gamma(), rel=1e-9)
    assert ours.vega == pytest.approx(option.vega() / 100.0, rel=1e-9)
    assert ours.theta == pytest.approx(option.thetaPerDay(), rel=1e-9)


def test_far_tails_match_mpmath_where_quantlib_cannot_tell():
    """Down to 1e-300 of the forward (deep out of the money, short, low vol) the premium is
    still right to 1e-8 relative: the out-of-the-money side is never computed as 1 - N."""
    mpmath.mp.dps = 40
    worst = 0.0
    checked = 0
    for strike, t, vol, kind in itertools.product(STRIKES[::2], TIMES[::2], VOLS[::2], ["call", "put"]):
        strike, t, vol = float(strike), float(t), float(vol)
        f, k = mpmath.mpf(FORWARD), mpmath.mpf(strike)
        s = mpmath.mpf(vol) * mpmath.sqrt(mpmath.mpf(t))
        d1 = mpmath.log(f / k) / s + s / 2
        d2 = d1 - s
        if kind == "call":
            exact = float(f * mpmath.ncdf(d1) - k * mpmath.ncdf(d2))
        else:
            exact = float(k * mpmath.ncdf(-d2) - f * mpmath.ncdf(-d1))
        if exact > 1e-300 * FORWARD:
            checked += 1
            worst = max(worst, abs(black76_price(kind, FORWARD, strike, t, vol) - exact) / exact)
    assert checked > 300
    assert worst < 1e-8


# --- textbook figures -------------------------------------------------------------------


def test_hull_black_scholes_example():
    """Hull, Options, Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%,
    sigma=20%, T=0.5 -> c = 4.76, p = 0.81."""
    assert bs_price("call", 42.0, 40.0, 0.5, 0.20, r=0.10) == pytest.approx(4.76, abs=0.005)
    assert bs_price("put", 42.0, 40.0, 0.5, 0.20, r=0.10) == pytest.approx(0.81, abs=0.005)


def test_hull_black76_futures_option_example():
    """Hull, Black's model for futures options: F=20, K=20, r=9%, sigma=25%, 4 months ->
    put = 1.12."""
    t = 4.0 / 12.0
    assert black76_price("put", 20.0, 20.0, t, 0.25, math.exp(-0.09 * t)) == pytest.approx(1.12, abs=0.005)


def test_hull_greek_letters_example():
    """Hull's running Greeks example: S=49, K=50, r=5%, sigma=20%, T=20 weeks. Call 2.40,
    delta 0.522, gamma 0.066, vega 12.1 per 1.00 of vol (0.121 per point), theta -4.31 per
    year (-0.0118 per calendar day)."""
    v = bs_valuation("call", 49.0, 50.0, 20.0 / 52.0, 0.20, r=0.05)
    assert v.price == pytest.approx(2.40, abs=0.005)
    assert v.delta == pytest.approx(0.522, abs=0.0005)
    assert v.gamma == pytest.approx(0.066, abs=0.0005)
    assert v.vega * 100 == pytest.approx(12.1, abs=0.05)
    assert v.theta * 365 == pytest.approx(-4.31, abs=0.005)
    assert v.theta == pytest.approx(-0.0118, abs=0.00005)


def test_haug_examples():
    """Haug, The Complete Guide to Option Pricing Formulas: generalized Black-Scholes call
    S=60, X=65, T=0.25, r=8%, sigma=30% -> 2.1334; Black-76 F=19, X=19, T=0.75, r=10%,
    sigma=28% -> call = put = 1.7011; futures option delta S=105, X=100, T=0.5, r=10%, b=0,
    sigma=36% -> call 0.5946, put -0.3566; gamma S=55, X=60, T=0.75, r=b=10%, sigma=30% ->
    0.0278; theta of a put S=430, X=405, T=0.0833, r=7%, b=2%, sigma=20% -> -31.1924 per year."""
    assert bs_price("call", 60.0, 65.0, 0.25, 0.30, r=0.08) == pytest.approx(2.1334, abs=0.00005)
    discount = math.exp(-0.10 * 0.75)
    assert black76_price("call", 19.0, 19.0, 0.75, 0.28, discount) == pytest.approx(1.7011, abs=0.00005)
    assert black76_price("put", 19.0, 19.0, 0.75, 0.28, discount) == pytest.approx(1.7011, abs=0.00005)
    assert bs_greeks("call", 105.0, 100.0, 0.5, 0.36, r=0.10, q=0.10).delta == pytest.approx(0.5946, abs=0.00005)
    assert bs_greeks("put", 105.0, 100.0, 0.5, 0.36, r=0.10, q=0.10).delta == pytest.approx(-0.3566, abs=0.00005)
    assert bs_greeks("call", 55.0, 60.0, 0.75, 0.30, r=0.10).gamma == pytest.approx(0.0278, abs=0.00005)
    theta = bs_greeks("put", 430.0, 405.0, 0.0833, 0.20, r=0.07, q=0.05).theta
    assert theta * 365 == pytest.approx(-31.1924, abs=0.00005)


# --- identities and edges ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("strike", "t", "vol", "discount"),
    [
        (65000.0, 30 / 365, 0.55, 1.0),
        (32500.0, 1 / 365, 0.05, 0.9999),
        (130000.0, 2.0, 3.0, 0.9),
        (64000.0, 0.25, 0.7, 1.02),
    ],
)
def test_put_call_parity(strike, t, vol, discount):
    call = black76_valuation("call", FORWARD, strike, t, vol, discount)
    put = black76_valuation("put", FORWARD, strike, t, vol, discount)
    assert call.price - put.price == pytest.approx(discount * (FORWARD - strike), abs=1e-9 * FORWARD)
    assert call.delta - put.delta == pytest.approx(discount, rel=1e-14)
    assert call.gamma == pytest.approx(put.gamma, rel=1e-14)
    assert call.vega == pytest.approx(put.vega, rel=1e-14)


def test_greeks_units_against_finite_differences():
    """vega = price change for +1 vol point; theta = price change over one calendar day
    (forward and rate held); delta/gamma = derivatives in the forward."""
    kind, strike, t, vol, rate = "call", 70000.0, 30 / 365, 0.55, 0.04

    def price(f=FORWARD, tt=t, v=vol):
        return black76_price(kind, f, strike, tt, v, math.exp(-rate * tt))

    g = greeks(kind, FORWARD, strike, t, vol, math.exp(-rate * t))
    assert isinstance(g, Greeks)
    h = 1e-4
    assert g.vega == pytest.approx((price(v=vol + h) - price(v=vol - h)) / (2 * h) * 0.01, rel=1e-7)
    day = 1 / 365
    assert g.theta == pytest.approx((price(tt=t - 1e-3 * day) - price(tt=t + 1e-3 * day)) / 2e-3, rel=1e-6)
    df = 1.0
    assert g.delta == pytest.approx((price(f=FORWARD + df) - price(f=FORWARD - df)) / (2 * df), rel=1e-7)
    assert g.gamma == pytest.approx((price(f=FORWARD + 10) - 2 * price() + price(f=FORWARD - 10)) / 100, rel=1e-4)


def test_zero_time_and_zero_vol_give_intrinsic():
    assert black76_price("call", 100.0, 90.0, 0.0, 0.5) == 10.0
    assert black76_price("put", 100.0, 90.0, 0.0, 0.5) == 0.0
    assert black76_price("put", 100.0, 110.0, 1.0, 0.0, 0.9) == pytest.approx(9.0)
    expired = black76_valuation("call", 100.0, 90.0, 0.0, 0.5)
    assert (expired.delta, expired.gamma, expired.vega, expired.theta) == (1.0, 0.0, 0.0, 0.0)
    at_money = black76_valuation("put", 100.0, 100.0, 0.0, 0.5)
    assert (at_money.price, at_money.delta) == (0.0, -0.5)
    # no vol, positive time: the intrinsic accrues at the rate implied by the discount
    flat = black76_valuation("put", 100.0, 110.0, 1.0, 0.0, math.exp(-0.05))
    assert flat.theta == pytest.approx(0.05 * flat.price / 365, rel=1e-12)


@pytest.mark.parametrize(
    "bad",
    [
        dict(forward=0.0),
        dict(forward=-1.0),
        dict(forward=math.nan),
        dict(strike=0.0),
        dict(strike=math.inf),
        dict(t_years=-1e-9),
        dict(vol=-0.1),
        dict(vol=math.inf),
        dict(discount=0.0),
        dict(kind="straddle"),
        dict(kind=None),
    ],
)
def test_impossible_inputs_raise_value_error(bad):
    args = dict(kind="call", forward=100.0, strike=100.0, t_years=0.5, vol=0.5, discount=1.0) | bad
    with pytest.raises(ValueError):
        black76_price(args["kind"], args["forward"], args["strike"], args["t_years"], args["vol"], args["discount"])
    with pytest.raises(ValueError):
        black76_valuation(args["kind"], args["forward"], args["strike"], args["t_years"], args["vol"], args["discount"])


def test_kind_spellings():
    a = black76_price("call", 100.0, 95.0, 0.5, 0.5)
    assert black76_price("CALL", 100.0, 95.0, 0.5, 0.5) == a == black76_price("C", 100.0, 95.0, 0.5, 0.5)
    assert black76_price("p", 100.0, 95.0, 0.5, 0.5) == black76_price("put", 100.0, 95.0, 0.5, 0.5)


def test_spot_helpers_and_premium_units():
    assert forward_price(65000.0, 0.5, r=0.04, q=0.01) == pytest.approx(65000.0 * math.exp(0.015))
    assert discount_factor(0.04, 0.5) == pytest.approx(math.exp(-0.02))
    spot, r, t = 65000.0, 0.04, 0.25
    assert bs_price("call", spot, 66000.0, t, 0.55, r) == pytest.approx(
        black76_price("call", forward_price(spot, t, r), 66000.0, t, 0.55, discount_factor(r, t)), rel=1e-14
    )
    assert premium_in_underlying(1300.0, 65000.0) == pytest.approx(0.02)
    assert premium_in_quote(0.02, 65000.0) == pytest.approx(1300.0)
    with pytest.raises(ValueError):
        premium_in_underlying(1300.0, 0.0)


def test_year_fraction_is_calendar_time_over_365_days():
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert year_fraction(now, now + timedelta(days=365)) == 1.0
    assert year_fraction(now, now + timedelta(hours=12)) == pytest.approx(0.5 / 365)
    assert year_fraction(now, now - timedelta(days=1)) < 0


def test_pricing_imports_nothing_from_django_or_the_project():
    code = (
        "import sys, marketdata.pricing as p\n"
        "p.black76_chain(65000.0, [60000.0, 70000.0], 0.1, 0.5); p.implied_vol('call', 1.0, 100.0, 100.0, 0.1)\n"
        "p.half_spread(price=100.0, vega=2.0, delta=0.5, forward=65000.0, days=3.0)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'django', 'rest_framework', 'trading', 'accounts', 'ledger', 'compliance', 'notifications', 'orders', "
        "'settlement'}"
        " or (m.startswith('marketdata') and not m.startswith('marketdata.pricing') and m != 'marketdata'))\n"
        "print(bad)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


# --- properties ---------------------------------------------------------------------------

kinds = st.sampled_from(["call", "put"])
forwards = st.floats(1.0, 1e6)
moneyness = st.floats(0.2, 5.0)
times = st.floats(1e-4, 5.0)
vols = st.floats(1e-3, 5.0)
discounts = st.floats(0.5, 1.0)


@settings(max_examples=300, deadline=None)
@given(kinds, forwards, moneyness, times, vols, discounts)
def test_price_within_no_arbitrage_bounds(kind, forward, m, t, vol, discount):
    strike = forward * m
    price = black76_price(kind, forward, strike, t, vol, discount)
    sign = 1.0 if kind == "call" else -1.0
    assert discount * max(sign * (forward - strike), 0.0) <= price
    assert price <= discount * (forward if kind == "call" else strike)


@settings(max_examples=300, deadline=None)
@given(forwards, moneyness, times, vols, discounts)
def test_put_call_parity_property(forward, m, t, vol, discount):
    strike = forward * m
    call = black76_price("call", forward, strike, t, vol, discount)
    put = black76_price("put", forward, strike, t, vol, discount)
    assert call - put == pytest.approx(discount * (forward - strike), abs=4e-15 * max(forward, strike))


@settings(max_examples=300, deadline=None)
@given(kinds, forwards, moneyness, times, vols, st.floats(1.0001, 3.0), discounts)
def test_price_increases_with_vol(kind, forward, m, t, vol, bump, discount):
    strike = forward * m
    low = black76_price(kind, forward, strike, t, vol, discount)
    high = black76_price(kind, forward, strike, t, vol * bump, discount)
    assert high >= low - 4e-16 * max(forward, strike)
    g = greeks(kind, forward, strike, t, vol, discount)
    assert g.vega >= 0.0 and g.gamma >= 0.0
    assert (0.0 <= g.delta <= discount) if kind == "call" else (-discount <= g.delta <= 0.0)
