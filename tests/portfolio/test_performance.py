"""The returns maths (portfolio/performance.py): TWR chained daily with flows excluded, MWR
as the IRR of the trader's flows, against hand-worked cases, scipy's root finder, and
properties over random curves."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from portfolio.performance import Point, cash_flows, irr_log_growth, mwr, returns, twr, twr_factors

T0 = datetime(2026, 1, 1, tzinfo=UTC)
D = Decimal


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def curve(*rows) -> list[Point]:
    """(value, flows) per day from day 0."""
    return [Point(day(i), D(str(value)), D(str(flows))) for i, (value, flows) in enumerate(rows)]


def test_without_flows_both_returns_are_the_value_change():
    points = curve((1000, 0), (1050, 0), (990, 0), (1100, 0))
    result = returns(points)
    assert result.twr == D("0.1")
    assert result.mwr == D("0.1")
    assert result.days == 3
    assert result.twr_annualized is None and result.mwr_annualized is None  # under a year


def test_a_deposit_is_not_a_gain():
    # 1000 grows 10 %, then 1000 more arrives and the whole grows 10 % again: each day +10 %,
    # TWR 21 %; the money-weighted return is higher, more money was at work in the good day
    points = curve((0, 0), (1000, 1000), (1100, 0), (2310, 1000))
    assert twr_factors(points) == [D(1), D("1.1"), D("1.1")]
    assert twr(points) == D("0.21")
    result = returns(points)
    assert result.twr == D("0.21")
    # 1000 g + 1000 g^(1/3) = 2310, g = 1 + MWR
    g = 1 + float(mwr(points))
    assert 1000 * g + 1000 * g ** (1 / 3) == pytest.approx(2310, rel=1e-9)
    assert result.mwr == D("0.23663548")


def test_a_withdrawal_is_not_a_loss():
    points = curve((1000, 0), (1200, 0), (700, -600))
    # day 2: 1200 - 600 withdrawn at the start, 600 -> 700
    with localcontext(prec=50):
        assert twr_factors(points) == [D("1.2"), D(700) / D(600)]
        assert twr(points) == D("1.2") * (D(700) / D(600)) - 1


def test_gains_withdrawn_the_same_day_are_read_with_the_flow_at_the_end():
    # 100 at the start, 1000 withdrawn in the day after a big gain, 50 left: 100 -> 1050
    points = curve((100, 0), (50, -1000))
    assert twr_factors(points) == [D("10.5")]


def test_a_step_with_nothing_invested_is_skipped():
    points = curve((0, 0), (0, 0), (500, 500), (550, 0))
    assert twr_factors(points) == [None, D(1), D("1.1")]
    assert twr(points) == D("0.1")
    assert twr(curve((0, 0), (0, 0))) is None
    assert mwr(curve((0, 0), (0, 0))) is None


def test_everything_lost():
    assert twr(curve((1000, 0), (0, 0))) == D(-1)
    assert returns(curve((1000, 0), (0, 0))).mwr is None  # no rate brings -1000 to 0 in range


def test_one_point_has_no_return():
    result = returns(curve((1000, 0)))
    assert result.twr is None and result.mwr is None


def test_annualized_from_a_year_on():
    points = [Point(T0, D(1000)), Point(day(730), D(1210))]
    result = returns(points)
    assert result.twr == D("0.21")
    assert result.twr_annualized == D("0.1")
    assert result.mwr_annualized == D("0.1")


def test_the_mwr_flows_are_the_traders_side():
    points = curve((1000, 0), (1500, 400), (1400, -200))
    assert cash_flows(points) == [(day(0), D(-1000)), (day(0), D(-400)), (day(1), D(200)), (day(2), D(1400))]


def test_no_rate_when_every_flow_has_one_sign():
    assert irr_log_growth([(day(0), D(100)), (day(1), D(50))], start=day(0), end=day(1)) is None
    assert irr_log_growth([(day(0), D(-100))], start=day(0), end=day(1)) is None


def test_several_roots_take_the_one_nearest_no_return():
    # -1, +2.3, -1.32: NPV = -(1 - x)... roots at growth 1.1 and 1.2 per half period
    flows = [(day(0), D(-1)), (day(1), D("2.3")), (day(2), D("-1.32"))]
    y = irr_log_growth(flows, start=day(0), end=day(2))
    # per-period growth g satisfies -1 + 2.3 / sqrt(g) - 1.32 / g = 0 -> sqrt(g) in {1.1, 1.2}
    assert math.exp(y) == pytest.approx(1.21, rel=1e-9)


def _scipy_period_return(points: list[Point]) -> float:
    flows = cash_flows(points)
    start, span = points[0].at, (points[-1].at - points[0].at).total_seconds()

    def npv(y):
        return sum(float(a) * math.exp(-y * (at - start).total_seconds() / span) for at, a in flows)

    return math.expm1(brentq(npv, -20, 20, xtol=1e-14))


values = st.decimals(min_value=1, max_value=10_000_000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    opening=values,
    moves=st.lists(st.tuples(st.integers(-30, 40), st.integers(0, 3)), min_size=1, max_size=60),
)
def test_mwr_agrees_with_scipy_on_conventional_flows(opening, moves):
    """Deposits only (one change of sign in the flows): one root, which scipy's Brent finds too."""
    points = [Point(T0, opening)]
    value = opening
    for i, (pct, deposit_units) in enumerate(moves, start=1):
        deposit = D(deposit_units * 250)
        value = ((value + deposit) * (100 + D(pct)) / 100).quantize(D("0.01"))
        points.append(Point(day(i), value, deposit))
    ours = mwr(points)
    if value == 0:
        return
    assert float(ours) == pytest.approx(_scipy_period_return(points), rel=1e-7, abs=1e-10)


@settings(max_examples=200, deadline=None)
@given(
    opening=values,
    daily=st.lists(st.integers(-50, 80), min_size=1, max_size=40),
    flows=st.lists(st.integers(-5, 5), min_size=40, max_size=40),
)
def test_twr_ignores_the_size_and_timing_of_flows(opening, daily, flows):
    """The same daily market moves give the same TWR whatever was deposited or withdrawn in
    between: the product of the daily moves."""
    points = [Point(T0, opening)]
    value = opening
    expected = D(1)
    with localcontext(prec=60):
        for i, pct in enumerate(daily, start=1):
            flow = D(flows[i - 1] * 100)
            if value + flow <= 0:
                flow = D(0)
            move = (100 + D(pct)) / 100
            value = (value + flow) * move
            expected *= move
            points.append(Point(day(i), value, flow))
        assert abs(twr(points) - (expected - 1)) < D("1e-30")


@settings(max_examples=100, deadline=None)
@given(opening=values, daily=st.lists(st.integers(-20, 30), min_size=1, max_size=30))
def test_without_flows_twr_equals_mwr(opening, daily):
    points = [Point(T0, opening)]
    value = opening
    for i, pct in enumerate(daily, start=1):
        value = (value * (100 + D(pct)) / 100).quantize(D("0.01"))
        points.append(Point(day(i), value))
    result = returns(points)
    if value == 0:
        return
    assert result.twr == (value / opening - 1).quantize(D("0.00000001"))
    assert abs(result.mwr - result.twr) <= D("0.00000002")
