"""The pure risk core: every check at its boundary (just inside passes, just outside refuses),
trading states, and the order-rate algorithm."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk import core

D = Decimal
INDEX = D("65000")
TICK = D("0.01")


def limits(**values) -> core.Limits:
    return core.Limits({name: None if value is None else D(str(value)) for name, value in values.items()})


BANDS = limits(buy_band_above="0.02", buy_band_below="0.10", sell_band_above="0.10", sell_band_below="0.03")


def spot(side="buy", type="limit", quantity="1", notional="100", price=None, stop_price=None) -> core.SpotOrder:
    return core.SpotOrder(
        side=side,
        type=type,
        quantity=None if quantity is None else D(quantity),
        notional=D(notional),
        price=None if price is None else D(price),
        stop_price=None if stop_price is None else D(stop_price),
        tick=TICK,
    )


@pytest.mark.parametrize(
    "side, inside, outside, limit",
    [
        ("buy", "66300.00", "66300.01", "buy_band_above"),  # +2 %
        ("buy", "58500.00", "58499.99", "buy_band_below"),  # -10 %
        ("sell", "71500.00", "71500.01", "sell_band_above"),  # +10 %
        ("sell", "63050.00", "63049.99", "sell_band_below"),  # -3 %
    ],
)
def test_the_price_band_is_per_side_and_direction(side, inside, outside, limit):
    assert core.band_refusal(spot(side=side, price=inside), BANDS, INDEX) is None
    refusal = core.band_refusal(spot(side=side, price=outside), BANDS, INDEX)
    assert (refusal.code, refusal.status, refusal.limit) == ("price_out_of_band", 400, limit)
    assert refusal.fields()["limit"] == [limit]
    assert refusal.fields()["price"][0].startswith("Between ")
    # a stop price is held to the same band
    assert core.band_refusal(spot(side=side, type="stop_limit", price=inside, stop_price=outside), BANDS, INDEX)


def test_no_index_or_no_band_means_no_band_check():
    assert core.band_refusal(spot(price="1.00"), BANDS, None) is None
    assert core.band_refusal(spot(price="1.00"), limits(buy_band_above=None, buy_band_below=None), INDEX) is None


def test_band_bounds_round_inwards_to_the_tick():
    low, high = core.band(D("100.005"), limits(buy_band_above="0.01", buy_band_below="0.01"), "buy", TICK)
    assert (low, high) == (D("99.01"), D("101.00"))  # 99.00495 -> 99.01; 101.00505 -> 101.00


def test_notional_bounds():
    found = limits(min_notional="10", max_notional="1000000")
    assert core.size_refusal(spot(notional="10"), found) is None
    assert core.size_refusal(spot(notional="9.99999999"), found).code == "min_notional"
    assert core.size_refusal(spot(notional="1000000"), found) is None
    refusal = core.size_refusal(spot(notional="1000000.01"), found)
    assert (refusal.code, refusal.limit, refusal.field) == ("max_order_size", "max_notional", "quantity")


def test_market_orders_have_their_own_quantity_limit():
    found = limits(max_order_quantity="100", max_market_quantity="20")
    assert core.size_refusal(spot(quantity="100"), found) is None
    refusal = core.size_refusal(spot(quantity="100.00000001"), found)
    assert (refusal.code, refusal.status, refusal.limit) == ("risk_limit", 422, "max_order_quantity")
    assert core.size_refusal(spot(type="market", quantity="20"), found) is None
    assert core.size_refusal(spot(type="market", quantity="20.00000001"), found).limit == "max_market_quantity"
    # a market buy by amount has no quantity: its value is what is checked
    assert core.size_refusal(spot(type="market", quantity=None, notional="50"), found) is None


def test_open_orders_and_position():
    found = limits(max_open_orders="3", max_position="2")
    assert core.usage_refusal(spot(), found, core.SpotUsage(open_orders=2)) is None
    refusal = core.usage_refusal(spot(), found, core.SpotUsage(open_orders=3))
    assert (refusal.code, refusal.status, refusal.limit) == ("max_open_orders", 409, "max_open_orders")
    assert core.usage_refusal(spot(quantity="0.5"), found, core.SpotUsage(base_held=D("1.5"))) is None
    refusal = core.usage_refusal(spot(quantity="0.50000001"), found, core.SpotUsage(base_held=D("1.5")))
    assert (refusal.code, refusal.limit, refusal.hint) == ("risk_limit", "max_position", "At most 0.5 more.")
    # a sell reduces the holding: never refused by the position limit
    assert core.usage_refusal(spot(side="sell", quantity="9"), found, core.SpotUsage(base_held=D("9"))) is None


def test_max_quantity_for_the_ticket():
    found = limits(max_order_quantity="100", max_market_quantity="20", max_notional="1000000", max_position="50")
    usage = core.SpotUsage(base_held=D("45"))
    assert core.max_quantity(found, usage, side="buy", order_type="limit", price=D("65000")) == 5
    assert core.max_quantity(found, usage, side="sell", order_type="limit", price=D("65000")) == D("1000000") / 65000
    assert core.max_quantity(found, usage, side="sell", order_type="market", price=None) == 20
    assert core.max_quantity(limits(), usage, side="buy", order_type="limit", price=None) is None


def option(side="buy", contracts="1", total="100", held="0", premium="0") -> core.OptionOrder:
    return core.OptionOrder(side, D(contracts), D(total), D(held), D(premium))


def test_option_series_and_premium_limits():
    found = limits(max_series_contracts="2", max_option_premium="1000")
    assert core.option_refusal(option(contracts="0.5", held="1.5"), found) is None
    refusal = core.option_refusal(option(contracts="0.51", held="1.5"), found)
    assert (refusal.code, refusal.status, refusal.limit) == ("position_limit", 422, "max_series_contracts")
    assert refusal.fields()["contracts"] == ["At most 0.5 more."]
    assert core.option_refusal(option(total="400", premium="600"), found) is None
    assert core.option_refusal(option(total="400.01", premium="600"), found).limit == "max_option_premium"
    # selling to close is never refused by a limit
    assert core.option_refusal(option(side="sell", contracts="9", held="9", premium="99999"), found) is None


def test_withdrawal_limit():
    assert core.withdrawal_refusal(asset="BTC", amount=D("0.5"), used=D("1.5"), limit=D("2")) is None
    refusal = core.withdrawal_refusal(asset="BTC", amount=D("0.50000001"), used=D("1.5"), limit=D("2"))
    assert (refusal.code, refusal.limit, refusal.field) == ("limit_exceeded", "daily_withdrawal", "amount")
    assert "0.5" in refusal.hint
    assert core.withdrawal_refusal(asset="BTC", amount=D("99"), used=D(0), limit=None) is None


def test_states():
    assert core.strictest([]) == core.ACTIVE
    assert core.strictest([core.ACTIVE, core.REDUCE_ONLY]) == core.REDUCE_ONLY
    assert core.strictest([core.HALTED, core.REDUCE_ONLY, core.ACTIVE]) == core.HALTED
    assert core.state_refusal(core.ACTIVE, reduces=False, what="x") is None
    assert core.state_refusal(core.REDUCE_ONLY, reduces=True, what="x") is None
    refusal = core.state_refusal(core.REDUCE_ONLY, reduces=False, what="on BTC-USDT")
    assert (refusal.code, refusal.status) == ("reduce_only", 403) and "on BTC-USDT" in refusal.message
    for reduces in (True, False):
        assert core.state_refusal(core.HALTED, reduces=reduces, what="x").code == "trading_halted"


def test_gcra_allows_the_burst_then_the_rate():
    rate, burst, tat, now = 10.0, 5.0, 0.0, 100.0
    allowed = 0
    for _ in range(20):  # all at one instant: the burst passes, the rest waits
        ok, tat, _ = core.gcra(tat, now, rate=rate, burst=burst)
        allowed += ok
    assert allowed == 5
    assert not core.gcra(tat, now, rate=rate, burst=burst)[0]
    assert core.gcra(tat, now, rate=rate, burst=burst)[2] == pytest.approx(0.1)
    # one interval later exactly one more passes
    ok, tat, _ = core.gcra(tat, now + 0.1, rate=rate, burst=burst)
    assert ok and not core.gcra(tat, now + 0.1, rate=rate, burst=burst)[0]


@given(
    st.lists(st.floats(min_value=0, max_value=0.5, allow_nan=False), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=1, max_value=20),
)
def test_gcra_never_lets_more_than_burst_plus_rate_times_elapsed(gaps, rate, burst):
    tat, now, times = 0.0, 1000.0, []
    for gap in gaps:
        now += gap
        ok, tat, _ = core.gcra(tat, now, rate=float(rate), burst=float(burst))
        if ok:
            times.append(now)
    # over any window of the run, at most burst + rate x window orders passed
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-6


def test_every_limit_has_a_code_and_a_scope():
    for spec in core.LIMITS.values():
        assert spec.scope in {"symbol", "asset", "underlying", "user"}
        assert spec.status in {400, 403, 409, 422, 429}
        assert spec.code and spec.summary


def test_a_band_refusal_writes_prices_at_the_ticks_places():
    # the index and prices come from columns of 8 decimals; the message showed them raw
    # ("price 1.00000000 ... the index 65078.14000000", "Between 58570.32000000 and ...")
    refusal = core.band_refusal(spot(price="1.00000000"), BANDS, D("65078.14000000"))
    assert refusal.message == "A buy price of 1.00 is more than 10% below the index 65,078.14."
    assert refusal.fields()["price"] == ["Between 58,570.33 and 66,379.70."]
