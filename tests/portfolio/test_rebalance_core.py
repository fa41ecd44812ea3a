"""The rebalancing maths on its own (portfolio/rebalance.py, no Django): exact plans for
known portfolios, every refusal of bad targets, the suggestion's words, and a property on
random portfolios checked against a brute-force reference written here with fractions:
after the proposed orders trade at their estimated prices, the drift is within the
tolerance, or no single valid order (whole lots, at least the minimum value, within what is
available, not undoing one of the plan's own trades) can reduce it, and neither can any
smaller (or no) order in place of one of the plan's."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portfolio.rebalance import (
    BUY,
    SELL,
    Holdings,
    InvalidTargets,
    Market,
    Order,
    apply,
    check_targets,
    check_tolerance,
    drift,
    percent,
    plan,
    suggestions,
)

D = Decimal


def market(base="BTC", price="50000", bid=None, ask=None, lot="0.00001", min_notional="10", max_quantity=None):
    return Market(
        symbol=f"{base}-USDT",
        base=base,
        price=D(price),
        bid=D(bid or price),
        ask=D(ask or price),
        tick=D("0.01"),
        lot=D(lot),
        min_notional=D(min_notional),
        max_quantity=None if max_quantity is None else D(max_quantity),
    )


BTC = market()
ETH = market("ETH", "2500", lot="0.0001")
MARKETS = {"BTC": BTC, "ETH": ETH}


def weights_of(p, places="0.0001"):
    return {a: w.quantize(D(places)) for a, w in p.weights_after.items()}


# --- exact plans -------------------------------------------------------------------------------


def test_within_tolerance_nothing_to_do():
    holdings = Holdings.of({"USDT": D("5100"), "BTC": D("0.098")})  # BTC 49 %, USDT 51 %
    p = plan(holdings=holdings, markets=MARKETS, targets={"BTC": D("0.5"), "USDT": D("0.5")})
    assert p.orders == ()
    assert p.drift_before == D("0.01")
    assert p.drift_after == p.drift_before
    assert p.within_tolerance


def test_all_usdt_to_half_bitcoin_without_fees():
    holdings = Holdings.of({"USDT": D("10000")})
    p = plan(holdings=holdings, markets=MARKETS, targets={"BTC": D("0.5"), "USDT": D("0.5")})
    assert p.orders == (Order("BTC-USDT", "BTC", BUY, D("0.1"), D("50000")),)
    assert p.drift_before == D("0.5")
    assert p.drift_after == 0
    assert p.value == D("10000")


def test_the_fee_comes_out_of_what_each_order_receives():
    # 1 BTC at 50,000 and nothing else; half of it to USDT with a 0.2 % taker fee. Selling q
    # leaves (1 - q) x 50000 in BTC and q x 50000 x 0.998 in USDT; equal when q = 1 / 1.998.
    holdings = Holdings.of({"BTC": D("1")})
    p = plan(holdings=holdings, markets=MARKETS, targets={"BTC": D("0.5"), "USDT": D("0.5")}, fee=D("0.002"))
    [order] = p.orders
    assert (order.side, order.quantity) == (SELL, D("0.50050"))  # 1 / 1.998 = 0.500500..., to the lot
    after = apply(holdings, p.orders, MARKETS, D("0.002"))
    assert after.total["BTC"] == D("0.49950")
    assert after.total["USDT"] == D("0.50050") * 50000 * D("0.998")  # 24974.95
    assert p.drift_after < D("0.00001")


def test_quantities_are_whole_lots_and_sells_come_first():
    holdings = Holdings.of({"USDT": D("1000"), "BTC": D("0.3"), "ETH": D("0")})
    targets = {"BTC": D("0.2"), "ETH": D("0.5"), "USDT": D("0.3")}
    p = plan(holdings=holdings, markets=MARKETS, targets=targets, fee=D("0.001"))
    assert [o.side for o in p.orders] == [SELL, BUY]
    assert [o.symbol for o in p.orders] == ["BTC-USDT", "ETH-USDT"]
    for order in p.orders:
        lot = MARKETS[order.base].lot
        assert order.quantity % lot == 0 and order.quantity > 0
    assert p.drift_after <= D("0.001")
    assert weights_of(p) == {"BTC": D("0.2000"), "ETH": D("0.5000"), "USDT": D("0.3000")}


def test_an_asset_left_out_of_the_targets_is_sold():
    holdings = Holdings.of({"USDT": D("5000"), "ETH": D("2")})
    p = plan(holdings=holdings, markets=MARKETS, targets={"USDT": D("1")})
    assert p.orders == (Order("ETH-USDT", "ETH", SELL, D("2"), D("2500")),)
    assert p.drift_after == 0


def test_only_what_is_available_is_sold():
    # 1 BTC in total, 0.8 of it held by an open order: at most 0.2 can be sold.
    holdings = Holdings.of({"BTC": D("1")}, {"BTC": D("0.2")})
    p = plan(holdings=holdings, markets=MARKETS, targets={"BTC": D("0.5"), "USDT": D("0.5")})
    assert p.orders == (Order("BTC-USDT", "BTC", SELL, D("0.2"), D("50000")),)
    assert p.drift_after == D("0.3")
    assert not p.within_tolerance


def test_a_correction_below_the_minimum_order_is_not_proposed():
    # BTC is 50.3 % of 1,000 USDT against 50 % +/- 0.2: the sell that fixes it is worth 3
    # USDT, below the 10 USDT minimum, and the smallest valid sell overshoots further.
    holdings = Holdings.of({"USDT": D("497"), "BTC": D("0.01006")})
    p = plan(holdings=holdings, markets=MARKETS, targets={"BTC": D("0.5"), "USDT": D("0.5")}, tolerance=D("0.002"))
    assert p.drift_before == D("0.003")
    assert p.orders == ()
    assert p.drift_after == p.drift_before


def test_the_minimum_order_is_used_when_it_still_helps():
    # 4 percentage points off on 200 USDT is 8 USDT of BTC to buy: too small, but buying the
    # 10 USDT minimum overshoots by only 1 point, within the 2 % tolerance.
    holdings = Holdings.of({"USDT": D("108"), "BTC": D("0.00184")})  # BTC 46 %
    p = plan(holdings=holdings, markets=MARKETS, targets={"BTC": D("0.5"), "USDT": D("0.5")})
    assert p.drift_before == D("0.04")
    assert p.orders == (Order("BTC-USDT", "BTC", BUY, D("0.0002"), D("50000")),)
    assert p.drift_after == D("0.01")


def test_buys_share_the_usdt_there_is():
    # Spread and fees make the exact targets cost more USDT than the sells leave: the buys
    # are cut to fit, and never spend more than there is.
    wide = {"BTC": market(price="50000", bid="49000", ask="51000"), "ETH": market("ETH", "2500", "2450", "2550")}
    holdings = Holdings.of({"USDT": D("0.5"), "BTC": D("0.2")})
    p = plan(holdings=holdings, markets=wide, targets={"BTC": D("0"), "ETH": D("1")}, fee=D("0.01"))
    after = apply(holdings, p.orders, wide, D("0.01"))
    assert after.available["USDT"] >= 0
    assert after.total["BTC"] == 0
    assert [o.side for o in p.orders] == [SELL, BUY]


def test_the_largest_order_is_respected():
    capped = {"BTC": market(max_quantity="0.05")}
    holdings = Holdings.of({"USDT": D("10000")})
    p = plan(holdings=holdings, markets=capped, targets={"BTC": D("0.5"), "USDT": D("0.5")})
    assert [o.quantity for o in p.orders] == [D("0.05"), D("0.05")]
    assert p.drift_after == 0


def test_an_empty_portfolio_has_nothing_to_do():
    p = plan(holdings=Holdings.of({}), markets=MARKETS, targets={"BTC": D("1")})
    assert (p.orders, p.drift_before, p.value) == ((), 0, 0)


def test_the_same_inputs_give_the_same_plan():
    holdings = Holdings.of({"USDT": D("1234.567891"), "BTC": D("0.12345678"), "ETH": D("3.3")})
    targets = {"BTC": D("0.35"), "ETH": D("0.35"), "USDT": D("0.3")}
    first = plan(holdings=holdings, markets=MARKETS, targets=targets, fee=D("0.002"))
    assert plan(holdings=holdings, markets=MARKETS, targets=targets, fee=D("0.002")) == first


# --- bad targets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "targets, fields",
    [
        ({"BTC": D("0.5"), "USDT": D("0.49")}, {"targets": ["The weights add up to 0.99, not 1."]}),
        ({"BTC": D("0.5"), "USDT": D("0.5000001")}, {"targets": ["The weights add up to 1.0000001, not 1."]}),
        ({"BTC": D("0.5"), "DOGE": D("0.5")}, {"targets": {"DOGE": ["Unknown asset; one of USDT, BTC, ETH."]}}),
        (
            {"BTC": D("1.5"), "USDT": D("-0.5")},
            {"targets": {"BTC": ["A weight is at most 1."], "USDT": ["A weight cannot be negative."]}},
        ),
        ({"BTC": D("0.5"), "btc": D("0.5")}, {"targets": {"btc": ["Given twice."]}}),
        ({}, {"targets": ["Give at least one asset's weight."]}),
    ],
)
def test_bad_targets_are_refused_with_fields(targets, fields):
    with pytest.raises(InvalidTargets) as refused:
        check_targets(targets, ("USDT", "BTC", "ETH"))
    assert refused.value.fields == fields
    assert refused.value.message


def test_targets_are_read_in_any_case():
    assert check_targets({"btc": D("0.25"), "Usdt": D("0.75")}, ("USDT", "BTC")) == {
        "BTC": D("0.25"),
        "USDT": D("0.75"),
    }


@pytest.mark.parametrize("tolerance", [D("-0.01"), D("0.51"), D("NaN"), D("Infinity")])
def test_bad_tolerances_are_refused(tolerance):
    with pytest.raises(InvalidTargets) as refused:
        check_tolerance(tolerance)
    assert list(refused.value.fields) == ["tolerance"]


def test_tolerance_defaults_to_two_points():
    assert check_tolerance(None) == D("0.02")
    assert check_tolerance(D("0")) == 0


# --- the suggestion ----------------------------------------------------------------------------


def test_suggestion_names_the_drift_and_the_orders():
    holdings = Holdings.of({"USDT": D("3000"), "BTC": D("0.14")})  # BTC 70 %
    targets = {"BTC": D("0.5"), "USDT": D("0.5")}
    p = plan(holdings=holdings, markets=MARKETS, targets=targets)
    [drifted, concentrated] = suggestions(
        weights_now=p.weights_before, targets=targets, tolerance=D("0.02"), concentration=D("0.6"), plan_orders=p.orders
    )
    assert drifted.kind == "drift" and drifted.asset == "BTC"
    assert drifted.message == (
        "Your portfolio has drifted from your targets: BTC is 70 % of it, above its 50 % target by more than "
        "the 2 % you allow. A rebalance would sell 0.04 BTC."
    )
    assert concentrated.kind == "concentration"
    assert concentrated.message.startswith("BTC is 70 % of your portfolio, more than 60 %")


def test_no_suggestion_for_a_balanced_portfolio_or_for_cash():
    assert (
        suggestions(
            weights_now={"USDT": D("0.9"), "BTC": D("0.1")}, targets=None, tolerance=D("0.02"), concentration=D("0.6")
        )
        == []
    )
    assert (
        suggestions(
            weights_now={"USDT": D("0.51"), "BTC": D("0.49")},
            targets={"USDT": D("0.5"), "BTC": D("0.5")},
            tolerance=D("0.02"),
            concentration=D("0.6"),
        )
        == []
    )


def test_percent_for_people():
    assert [percent(D(x)) for x in ("0.6", "0.625", "0.02", "0.0004")] == ["60 %", "62.5 %", "2 %", "0 %"]


# --- the property ------------------------------------------------------------------------------


def ref_drift(total: dict, prices: dict, targets: dict) -> Fraction:
    """The drift in exact fractions, written from the definition."""
    assets = set(targets) | {a for a, q in total.items() if q}
    values = {a: Fraction(total.get(a, 0)) * Fraction(prices[a]) for a in assets}
    whole = sum(values.values(), Fraction(0))
    if whole <= 0:
        return Fraction(0)
    return max(abs(values[a] / whole - Fraction(targets.get(a, 0))) for a in assets)


def ref_trade(total: dict, available: dict, m: Market, side: str, quantity, price, fee) -> bool:
    """Trade in place at ``price``; False (and nothing changed) when it is not affordable."""
    q, price, fee = Fraction(quantity), Fraction(price), Fraction(fee)
    if side == SELL:
        if q > available.get(m.base, 0):
            return False
        moves = {m.base: -q, "USDT": q * price * (1 - fee)}
    else:
        if q * price > available.get("USDT", 0):
            return False
        moves = {"USDT": -q * price, m.base: q * (1 - fee)}
    for asset, change in moves.items():
        total[asset] = total.get(asset, 0) + change
        available[asset] = available.get(asset, 0) + change
    return True


def valid_quantities(m: Market, side: str, available: dict):
    """Every valid quantity of one order, by brute force: whole lots from 1 up to what is
    available and the pair's largest order, worth at least the pair's minimum."""
    lot, price = Fraction(m.lot), Fraction(m.bid if side == SELL else m.ask)
    budget = available.get(m.base, 0) if side == SELL else available.get("USDT", 0) / price
    k = 1
    while k * lot <= budget and (m.max_quantity is None or k * lot <= m.max_quantity):
        if k * lot * price >= Fraction(m.min_notional):
            yield k * lot
        k += 1


@st.composite
def portfolios(draw):
    fee = D(draw(st.sampled_from(["0", "0.001", "0.002", "0.0075"])))
    markets, total = {}, {}
    # One lot of either pair is worth about the same (within a factor of ~3), so no order
    # has more than a few hundred lots and the brute force below stays short.
    lot_value = D(10) ** draw(st.integers(-2, 3))
    for base in ("BTC", "ETH"):
        price = D(draw(st.integers(100, 10_000_000))) / 100  # 1.00 .. 100,000.00
        lot = D(1).scaleb(round(math.log10(lot_value / price)))
        spread = D(draw(st.integers(0, 300))) / 10000  # up to 3 % either side
        markets[base] = Market(
            symbol=f"{base}-USDT",
            base=base,
            price=price,
            bid=(price * (1 - spread)).quantize(D("0.01")),
            ask=(price * (1 + spread)).quantize(D("0.01")),
            tick=D("0.01"),
            lot=lot,
            min_notional=D(draw(st.sampled_from(["0", "1", "10", "50"]))),
            max_quantity=draw(st.sampled_from([None, None, lot * 40])),
        )
        # at most 40 lots of each asset, so the brute force stays short
        total[base] = lot * draw(st.integers(0, 40))
    total["USDT"] = (lot_value * draw(st.integers(0, 4000)) / 100).quantize(D("0.000001"))
    # sometimes part of an asset is held by open orders and cannot be traded
    available = {a: q * D(draw(st.sampled_from(["1", "1", "1", "0.5"]))) for a, q in total.items()}
    parts = [draw(st.integers(0, 100)) for _ in range(3)]
    if not sum(parts):
        parts[0] = 1
    scale = sum(parts)
    raw = [D(p) / scale for p in parts]
    raw = [w.quantize(D("0.0001"), rounding="ROUND_FLOOR") for w in raw]
    raw[2] = 1 - raw[0] - raw[1]
    targets = {a: w for a, w in zip(("BTC", "ETH", "USDT"), raw, strict=True) if w or draw(st.booleans())}
    if sum(targets.values()) != 1:  # a dropped zero weight never changes the sum; be sure
        targets = dict(zip(("BTC", "ETH", "USDT"), raw, strict=True))
    tolerance = D(draw(st.sampled_from(["0", "0.005", "0.02", "0.1"])))
    return Holdings(total, available), markets, targets, tolerance, fee


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolios())
def test_after_the_plan_the_drift_is_within_tolerance_or_no_valid_order_reduces_it(case):
    holdings, markets, targets, tolerance, fee = case
    p = plan(holdings=holdings, markets=markets, targets=targets, tolerance=tolerance, fee=fee)
    prices = {"USDT": 1, **{b: m.price for b, m in markets.items()}}

    total = {a: Fraction(q) for a, q in holdings.total.items()}
    available = {a: Fraction(q) for a, q in holdings.available.items()}
    # each order must be able to trade in turn, in the plan's order
    for order in p.orders:
        m = markets[order.base]
        assert order.quantity > 0 and order.quantity % m.lot == 0
        assert order.est_price == (m.bid if order.side == SELL else m.ask)
        assert order.quantity * order.est_price >= m.min_notional
        assert m.max_quantity is None or order.quantity <= m.max_quantity
        assert ref_trade(total, available, m, order.side, order.quantity, order.est_price, fee), (
            f"{order} needs more than is available"
        )

    after = ref_drift(total, prices, targets)
    before = ref_drift({a: Fraction(q) for a, q in holdings.total.items()}, prices, targets)
    assert abs(Fraction(p.drift_after) - after) < Fraction(1, 10**60)
    assert abs(Fraction(p.drift_before) - before) < Fraction(1, 10**60)
    assert after <= before
    if after <= Fraction(tolerance):
        return
    # Above the tolerance: no single valid order from here may reduce the drift (beyond the
    # last digits of the plan's 80-digit arithmetic).
    for m in markets.values():
        for side in (SELL, BUY):
            if any(o.base == m.base and o.side != side for o in p.orders):
                continue  # buying back what the plan sold (or the reverse) is no rebalancing order
            for quantity in valid_quantities(m, side, available):
                t, a = dict(total), dict(available)
                assert ref_trade(t, a, m, side, quantity, m.bid if side == SELL else m.ask, fee)
                assert ref_drift(t, prices, targets) > after - Fraction(1, 10**50), (
                    f"{side} {quantity} {m.base} would reduce the drift from {float(after)} "
                    f"to {float(ref_drift(t, prices, targets))}; plan: {p.orders}"
                )
    # nor would any of the plan's orders, smaller (still valid) or left out
    for n, order in enumerate(p.orders):
        m = markets[order.base]
        up_to = {order.base: Fraction(order.quantity), "USDT": Fraction(order.quantity) * Fraction(order.est_price)}
        valid = (Decimal(q.numerator) / q.denominator for q in valid_quantities(m, order.side, up_to))
        for smaller in [Decimal(0), *valid]:
            if smaller >= order.quantity:
                continue
            changed = [*p.orders[:n], *([replace(order, quantity=smaller)] if smaller else []), *p.orders[n + 1 :]]
            t = {a: Fraction(q) for a, q in holdings.total.items()}
            a = {a: Fraction(q) for a, q in holdings.available.items()}
            if all(ref_trade(t, a, markets[o.base], o.side, o.quantity, o.est_price, fee) for o in changed):
                assert ref_drift(t, prices, targets) > after - Fraction(1, 10**50), (
                    f"{order} as {smaller} would reduce the drift; plan: {p.orders}"
                )


def test_drift_of_a_known_portfolio():
    prices = {"USDT": D(1), "BTC": D("50000"), "ETH": D("2500")}
    assert drift({"USDT": D("500"), "BTC": D("0.01")}, prices, {"USDT": D("0.5"), "BTC": D("0.5")}) == 0
    assert drift({"USDT": D("750"), "BTC": D("0.005")}, prices, {"USDT": D("0.5"), "BTC": D("0.5")}) == D("0.25")
    # an untargeted asset counts with a target of 0
    assert drift({"USDT": D("750"), "ETH": D("0.1")}, prices, {"USDT": D("1")}) == D("0.25")
