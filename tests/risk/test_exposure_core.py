"""The counter's exposure core (risk/exposure.py), no database: the counter's sign, the soft
and hard limits at their boundaries, widening that only ever widens, and sells that are never
held back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk import exposure as ex
from risk.core import BUY, LIMITS, SELL, Limits

CALL = ex.Greeks(delta=0.5, gamma=0.0001, vega=50.0, theta=-20.0)
PUT = ex.Greeks(delta=-0.5, gamma=0.0001, vega=50.0, theta=-20.0)
K = 1.0


def limits(delta_soft=5, delta=10, vega_soft=500, vega=1000) -> Limits:
    def value(v):
        return None if v is None else Decimal(str(v))

    return Limits(
        {
            "counter_delta_soft": value(delta_soft),
            "counter_delta": value(delta),
            "counter_vega_soft": value(vega_soft),
            "counter_vega": value(vega),
        }
    )


def book(delta=0.0, vega=0.0) -> ex.Exposure:
    return ex.Exposure("BTC", delta=delta, vega=vega)


def decide(exposure, contracts, greeks=CALL, side=BUY, found=None):
    return ex.order_decision(
        exposure, side=side, contracts=Decimal(str(contracts)), greeks=greeks, limits=found or limits(), k=K
    )


# --- the counter's sign -----------------------------------------------------------------------------


def test_the_counter_is_short_what_customers_hold():
    found = ex.net_exposure(
        [
            ex.Holding("BTC-C", "BTC", Decimal("2"), CALL),
            ex.Holding("BTC-P", "BTC", Decimal("1"), PUT),
            ex.Holding("ETH-C", "ETH", Decimal("4"), ex.Greeks(0.25, 0.001, 3.0, -1.0)),
        ]
    )
    btc, eth = found["BTC"], found["ETH"]
    assert btc.delta == pytest.approx(-(2 * 0.5 + 1 * -0.5))  # short calls: negative delta
    assert btc.vega == pytest.approx(-150.0)  # short options: short vega...
    assert btc.gamma < 0  # ...and gamma
    assert btc.theta == pytest.approx(60.0)  # ...and collects theta
    assert btc.contracts == 3
    assert eth.delta == pytest.approx(-1.0) and eth.vega == pytest.approx(-12.0)


def test_a_buy_adds_to_the_short_and_a_sell_takes_it_back():
    after = book().after(side=BUY, contracts=Decimal(2), greeks=CALL)
    assert after.delta == pytest.approx(-1.0) and after.vega == pytest.approx(-100.0)
    back = after.after(side=SELL, contracts=Decimal(2), greeks=CALL)
    assert back.delta == pytest.approx(0.0) and back.vega == pytest.approx(0.0) and back.contracts == 0


def test_greeks_are_the_chains():
    from marketdata.pricing import black76_chain, default_smile
    from marketdata.pricing.smile import DEFAULT_ATM_VOL

    years = 30 / 365
    [call, put] = ex.series_greeks(
        underlying="BTC", index=65000.0, years=years, strikes=[70000.0, 60000.0], calls=[True, False]
    )
    import numpy as np

    strikes = np.array([70000.0, 60000.0])
    vols = default_smile(DEFAULT_ATM_VOL["BTC"], years).vols(strikes, 65000.0)
    chain = black76_chain(65000.0, strikes, years, vols)
    assert call.delta == pytest.approx(float(chain.call.delta[0]))
    assert put.vega == pytest.approx(float(chain.put.vega[1]))
    assert 0 < call.delta < 1 and -1 < put.delta < 0 and call.vega > 0


# --- soft and hard at their boundaries --------------------------------------------------------------


def test_below_the_soft_limit_nothing_changes():
    # |delta| 0 -> 5: exactly the soft limit
    decision = decide(book(), 10)
    assert decision == ex.Decision(1.0, None)


def test_just_past_the_soft_limit_the_ask_widens_a_little():
    decision = decide(book(), Decimal("10.02"))  # |delta| 5.01
    assert decision.refusal is None
    assert 1.0 < decision.multiplier < 1.01


def test_at_the_hard_limit_it_is_widened_by_one_plus_k_and_not_refused():
    decision = decide(book(), 20)  # |delta| 10: exactly the hard limit
    assert decision.refusal is None
    assert decision.multiplier == pytest.approx(1.0 + K)


def test_just_past_the_hard_limit_it_is_refused():
    decision = decide(book(), Decimal("20.02"))  # |delta| 10.01
    refusal = decision.refusal
    assert refusal is not None
    assert (refusal.code, refusal.status, refusal.limit) == ("risk_limit", 422, "counter_delta")
    assert refusal.fields()["limit"] == ["counter_delta"]
    assert refusal.fields()["contracts"] == ["At most 20 of this series now."]


def test_vega_has_its_own_limit():
    found = limits(delta_soft=None, delta=None, vega_soft=500, vega=1000)
    assert decide(book(), 10, found=found).multiplier == 1.0  # vega 500: at soft
    assert decide(book(), 15, found=found).multiplier == pytest.approx(1.5)  # 750: half the band
    refusal = decide(book(), Decimal("20.01"), found=found).refusal
    assert refusal is not None and refusal.limit == "counter_vega"


def test_the_hint_is_what_still_fits():
    refusal = decide(book(delta=-9.0), 5).refusal  # 9 -> 11.5
    assert refusal.fields()["contracts"] == ["At most 2 of this series now."]


def test_widening_is_monotone_in_usage():
    found = limits()
    values = [ex.widening(u / 10, found["counter_delta_soft"], found["counter_delta"], K) for u in range(0, 150)]
    assert values == sorted(values)
    assert values[0] == 1.0 and values[-1] == 1.0 + K


def test_widening_without_a_band():
    assert ex.widening(6, Decimal(5), None, 0.5) == 1.5
    assert ex.widening(6, Decimal(5), Decimal(5), 0.5) == 1.5
    assert ex.widening(6, None, Decimal(10), 0.5) == 1.0


# --- what reduces is never held back ----------------------------------------------------------------


def test_a_sell_to_close_is_never_widened_nor_refused():
    deep = book(delta=-50.0, vega=-5000.0)  # far past both hard limits
    for greeks in (CALL, PUT):
        assert decide(deep, 100, greeks=greeks, side=SELL) == ex.Decision(1.0, None)


def test_a_buy_that_reduces_the_figure_is_not_held_back():
    # short calls past the hard delta limit: buying puts brings the delta back
    found = limits(vega_soft=None, vega=None)
    assert decide(book(delta=-12.0), 4, greeks=PUT, found=found) == ex.Decision(1.0, None)


def test_past_hard_already_a_buy_that_adds_is_refused():
    assert decide(book(delta=-12.0), Decimal("0.01")).refusal.limit == "counter_delta"


def test_the_limit_names_are_known():
    for name in ex.LIMIT_NAMES:
        assert LIMITS[name].scope == "underlying" and LIMITS[name].code == "risk_limit"


# --- the price ---------------------------------------------------------------------------------------


def test_the_widened_ask():
    mark, ask = Decimal("1000.00"), Decimal("1030.00")  # a 3 % half-spread
    assert ex.widened_ask(mark=mark, ask=ask, spread=0.03, multiplier=1.0) == ask
    assert ex.widened_ask(mark=mark, ask=ask, spread=0.03, multiplier=2.0) == Decimal("1060.00")
    assert ex.widened_ask(mark=Decimal("0.10"), ask=Decimal("0.11"), spread=0.03, multiplier=1.5) == Decimal("0.11")


# --- properties --------------------------------------------------------------------------------------

figures = st.floats(min_value=-200, max_value=200, allow_nan=False)
greek_values = st.builds(
    ex.Greeks,
    delta=st.floats(min_value=-1, max_value=1, allow_nan=False),
    gamma=st.floats(min_value=0, max_value=0.001, allow_nan=False),
    vega=st.floats(min_value=0, max_value=200, allow_nan=False),
    theta=st.floats(min_value=-100, max_value=0, allow_nan=False),
)
limit_values = st.tuples(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100)).map(sorted)


@settings(max_examples=400, deadline=None)
@given(
    delta=figures,
    vega=st.floats(min_value=-20000, max_value=0, allow_nan=False),
    greeks=greek_values,
    contracts=st.integers(min_value=1, max_value=10000).map(lambda n: Decimal(n) / 100),
    side=st.sampled_from([BUY, SELL]),
    delta_limits=limit_values,
    vega_limits=limit_values.map(lambda pair: [v * 100 for v in pair]),
    k=st.floats(min_value=0, max_value=5, allow_nan=False),
)
def test_refused_iff_a_buy_takes_a_figure_past_its_hard_limit(
    delta, vega, greeks, contracts, side, delta_limits, vega_limits, k
):
    found = limits(delta_soft=delta_limits[0], delta=delta_limits[1], vega_soft=vega_limits[0], vega=vega_limits[1])
    exposure = book(delta=delta, vega=vega)
    decision = ex.order_decision(exposure, side=side, contracts=contracts, greeks=greeks, limits=found, k=k)
    after = exposure.after(side=side, contracts=contracts, greeks=greeks)
    crossed = side == BUY and any(
        abs(getattr(after, g)) > float(found[name]) and abs(getattr(after, g)) > abs(getattr(exposure, g))
        for name, g in (("counter_delta", "delta"), ("counter_vega", "vega"))
    )
    assert (decision.refusal is not None) == crossed
    assert decision.multiplier >= 1.0
    if side == SELL:
        assert decision == ex.Decision(1.0, None)


@settings(max_examples=400, deadline=None)
@given(
    mark=st.integers(min_value=0, max_value=10_000_000).map(lambda n: Decimal(n) / 100),
    spread=st.floats(min_value=0.001, max_value=0.2, allow_nan=False),
    low=st.floats(min_value=1.0, max_value=6.0, allow_nan=False),
    more=st.floats(min_value=0.0, max_value=6.0, allow_nan=False),
)
def test_widening_never_narrows_the_spread(mark, spread, low, more):
    half = max(mark * Decimal(repr(spread)), Decimal("0.01")).quantize(Decimal("0.01"))
    ask = mark + half
    first = ex.widened_ask(mark=mark, ask=ask, spread=spread, multiplier=low)
    second = ex.widened_ask(mark=mark, ask=ask, spread=spread, multiplier=low + more)
    assert ask <= first <= second


@settings(max_examples=300, deadline=None)
@given(
    usage=st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), min_size=2, max_size=2).map(sorted),
    band=limit_values,
    k=st.floats(min_value=0, max_value=5, allow_nan=False),
)
def test_widening_is_monotone(usage, band, k):
    soft, hard = Decimal(band[0]), Decimal(band[1])
    assert 1.0 <= ex.widening(usage[0], soft, hard, k) <= ex.widening(usage[1], soft, hard, k) <= 1.0 + k
