"""Rebalancing as plain maths (no Django): target weights -> the spot orders that bring a
portfolio back within a tolerance of them, and the plain-language suggestion the Portfolio
page shows.

The portfolio is the trader's spot assets (USDT and the bases of the USDT pairs) valued at
each market's valuation price (USDT at 1); option positions are not traded by a rebalance
and are left out of its weights. A weight is an asset's share of that value, the drift is
the largest distance between a weight and its target (``max |w - t|``), and an asset the
targets leave out has a target of 0.

A plan is market orders against USDT: sells by quantity at the estimated bid, buys that
spend quantity x the estimated ask (placed as a quote amount, so a buy never needs more USDT
than the sells left). Orders trade in the plan's order, sells first: the trades to the
targets sell everything they sell before any buy; an extra order the polish adds (below) goes
last unless it can join an earlier one. Every quantity is a whole number of lots, every order is
worth at least the pair's minimum, sells use only what is available and buys only the USDT
the sells and the balance leave. The taker fee is taken from what each order receives (the
exchange's rule): a sell yields ``q x bid x (1 - fee)`` USDT, a buy ``q x (1 - fee)`` of the base.

How the plan is found: the exact trades to the targets (with the fees they cost, solved by a
few fixed-point rounds), rounded to lots and clipped to what is available; then, while the
drift is still above the tolerance, the one extra order that lowers it most is added (the
best quantity of each market and side is exact: see ``_line_search``) or one of the plan's
orders is made smaller or dropped, whichever lowers it most, until nothing does. An extra
order never trades against the plan's own order on that pair: buying back what it sold pays
the spread and the fee twice (and with a wide spread such round trips "improve" the drift
only by burning value). So after the plan the drift is within the tolerance, or no single
valid order that does not undo one of the plan's, and no smaller order of the plan's, can
reduce it.
Everything is exact ``Decimal`` arithmetic; the same inputs always give the same plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

QUOTE = "USDT"
BUY, SELL = "buy", "sell"
DEFAULT_TOLERANCE = Decimal("0.02")
MAX_TOLERANCE = Decimal("0.5")
# Enough precision that the fixed-point rounds and the weight comparisons are exact for any
# balance the ledger can hold (38 digits) divided by any other.
PRECISION = 80
# The fee rounds converge geometrically (each round changes the value by fee x the last change).
FEE_ROUNDS = 6
MAX_EXTRA_ORDERS = 60
WEIGHT_PLACES = Decimal("0.000001")


class InvalidTargets(ValueError):
    """Targets or a tolerance the maths cannot use; ``fields`` says which and why, in the
    API's error shape (``{"targets": {"DOGE": ["..."]}}`` or ``{"targets": ["..."]}``)."""

    def __init__(self, message: str, fields: dict):
        super().__init__(message)
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class Market:
    """A USDT spot pair as a plan needs it. ``price`` values the holdings; ``bid`` and ``ask``
    are the prices a market sell and buy are expected to get."""

    symbol: str
    base: str
    price: Decimal
    bid: Decimal
    ask: Decimal
    tick: Decimal
    lot: Decimal
    min_notional: Decimal = Decimal(0)
    max_quantity: Decimal | None = None


@dataclass(frozen=True)
class Holdings:
    """``total`` values the portfolio (available + held in open orders); ``available`` is
    what orders may use. Amounts of assets not listed are 0."""

    total: Mapping[str, Decimal]
    available: Mapping[str, Decimal]

    @classmethod
    def of(cls, total: Mapping[str, Decimal], available: Mapping[str, Decimal] | None = None) -> Holdings:
        total = {asset: Decimal(amount) for asset, amount in total.items()}
        return cls(total, dict(total) if available is None else {a: Decimal(v) for a, v in available.items()})


@dataclass(frozen=True)
class Order:
    symbol: str
    base: str
    side: str
    quantity: Decimal
    est_price: Decimal

    def spend(self) -> Decimal:
        """USDT a buy spends, or a sell's gross proceeds (before the fee)."""
        return self.quantity * self.est_price


@dataclass(frozen=True)
class Plan:
    orders: tuple[Order, ...]
    drift_before: Decimal
    drift_after: Decimal
    weights_before: dict[str, Decimal]
    weights_after: dict[str, Decimal]
    value: Decimal
    tolerance: Decimal
    fee: Decimal
    targets: dict[str, Decimal] = field(default_factory=dict)

    @property
    def within_tolerance(self) -> bool:
        return self.drift_after <= self.tolerance


# --- inputs ----------------------------------------------------------------------------------


def check_targets(targets: Mapping[str, Decimal], assets) -> dict[str, Decimal]:
    """Targets as ``{ASSET: weight}``: known assets (any case; given back upper-case), each
    weight in [0, 1], adding up to exactly 1."""
    if not isinstance(targets, Mapping) or not targets:
        raise InvalidTargets(
            "targets are required: {ASSET: weight}.", {"targets": ["Give at least one asset's weight."]}
        )
    assets = tuple(assets)
    result: dict[str, Decimal] = {}
    problems: dict[str, list[str]] = {}
    for raw, weight in targets.items():
        asset = raw.upper() if isinstance(raw, str) else ""
        if asset not in assets:
            problems[str(raw)] = [f"Unknown asset; one of {', '.join(assets)}."]
        elif asset in result:
            problems[str(raw)] = ["Given twice."]
        elif weight < 0:
            problems[str(raw)] = ["A weight cannot be negative."]
        elif weight > 1:
            problems[str(raw)] = ["A weight is at most 1."]
        else:
            result[asset] = weight
    if problems:
        first = next(iter(problems))
        raise InvalidTargets(f"targets.{first}: {problems[first][0]}", {"targets": problems})
    total = sum(result.values(), Decimal(0))
    if total != 1:
        raise InvalidTargets(
            f"The weights add up to {_plain(total)}; they must add up to exactly 1.",
            {"targets": [f"The weights add up to {_plain(total)}, not 1."]},
        )
    return result


def check_tolerance(tolerance: Decimal | None) -> Decimal:
    if tolerance is None:
        return DEFAULT_TOLERANCE
    if not isinstance(tolerance, Decimal) or not tolerance.is_finite() or not 0 <= tolerance <= MAX_TOLERANCE:
        raise InvalidTargets(
            f"tolerance must be between 0 and {_plain(MAX_TOLERANCE)}.",
            {"tolerance": [f"Between 0 and {_plain(MAX_TOLERANCE)} (0.02 is 2 percentage points)."]},
        )
    return tolerance


def _plain(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


# --- valuation -------------------------------------------------------------------------------


def _prices(markets: Mapping[str, Market]) -> dict[str, Decimal]:
    return {QUOTE: Decimal(1), **{base: market.price for base, market in markets.items()}}


def _assets(holdings: Mapping[str, Decimal], targets: Mapping[str, Decimal], prices) -> list[str]:
    return sorted(set(targets) | {a for a, q in holdings.items() if q and a in prices})


def weights(holdings: Mapping[str, Decimal], prices: Mapping[str, Decimal], assets) -> tuple[Decimal, dict]:
    """(value in USDT, {asset: weight}); an empty portfolio has every weight 0."""
    with localcontext(prec=PRECISION):
        values = {a: holdings.get(a, Decimal(0)) * prices[a] for a in assets}
        total = sum(values.values(), Decimal(0))
        if total <= 0:
            return Decimal(0), {a: Decimal(0) for a in assets}
        return total, {a: values[a] / total for a in assets}


def drift(holdings: Mapping[str, Decimal], prices: Mapping[str, Decimal], targets: Mapping[str, Decimal]) -> Decimal:
    """The largest distance between an asset's weight and its target (0 for an empty portfolio)."""
    assets = _assets(holdings, targets, prices)
    total, shares = weights(holdings, prices, assets)
    if total <= 0:
        return Decimal(0)
    with localcontext(prec=PRECISION):
        return max(abs(shares[a] - targets.get(a, Decimal(0))) for a in assets)


def apply(holdings: Holdings, orders, markets: Mapping[str, Market], fee: Decimal) -> Holdings:
    """The holdings after ``orders`` trade at their estimated prices, with the fee taken from
    what each receives."""
    total, available = dict(holdings.total), dict(holdings.available)
    zero = Decimal(0)
    with localcontext(prec=PRECISION):
        for order in orders:
            base = markets[order.base].base
            if order.side == SELL:
                proceeds = order.quantity * order.est_price * (1 - fee)
                moves = ((base, -order.quantity), (QUOTE, proceeds))
            else:
                moves = ((QUOTE, -order.quantity * order.est_price), (base, order.quantity * (1 - fee)))
            for asset, change in moves:
                total[asset] = total.get(asset, zero) + change
                available[asset] = available.get(asset, zero) + change
    return Holdings(total, available)


# --- the plan --------------------------------------------------------------------------------


def plan(
    *,
    holdings: Holdings,
    markets: Mapping[str, Market],
    targets: Mapping[str, Decimal],
    tolerance: Decimal | None = None,
    fee: Decimal = Decimal(0),
) -> Plan:
    """The orders that bring ``holdings`` within ``tolerance`` of ``targets`` ({asset: weight},
    validated here), in the order they are to trade. ``markets`` maps each base asset to its
    USDT pair."""
    tolerance = check_tolerance(tolerance)
    targets = check_targets(targets, (QUOTE, *sorted(markets)))
    prices = _prices(markets)
    assets = _assets(holdings.total, targets, prices)
    value, before = weights(holdings.total, prices, assets)
    start = drift(holdings.total, prices, targets)
    orders: list[Order] = []
    if start > tolerance and value > 0:
        orders = _to_targets(holdings, markets, targets, prices, value, fee)
        if drift(apply(holdings, orders, markets, fee).total, prices, targets) >= start:
            orders = []
        orders = _polish(holdings, orders, markets, targets, prices, tolerance, fee)
    after_holdings = apply(holdings, orders, markets, fee)
    _, after = weights(after_holdings.total, prices, assets)
    return Plan(
        orders=tuple(orders),
        drift_before=start,
        drift_after=drift(after_holdings.total, prices, targets),
        weights_before=before,
        weights_after=after,
        value=value,
        tolerance=tolerance,
        fee=fee,
        targets=dict(targets),
    )


def _lots(quantity: Decimal, lot: Decimal, rounding) -> int:
    with localcontext(prec=PRECISION):
        return int((quantity / lot).to_integral_value(rounding=rounding))


def _to_targets(holdings: Holdings, markets, targets, prices, value: Decimal, fee: Decimal) -> list[Order]:
    """The trades to the exact targets, in whole lots, within what is available."""
    zero = Decimal(0)
    with localcontext(prec=PRECISION):
        # The value after the trades is less than now by what the fees and the spread cost;
        # the trades depend on it, so solve for it by fixed-point rounds.
        after = value
        trades: dict[str, Decimal] = {}
        for _ in range(FEE_ROUNDS):
            cost = zero
            for base, market in markets.items():
                held = holdings.total.get(base, zero) * market.price
                change = targets.get(base, zero) * after - held
                if change < 0:
                    quantity = -change / market.price
                    trades[base] = -quantity
                    cost += quantity * (market.price - market.bid * (1 - fee))
                elif change > 0:
                    quantity = change / (market.price * (1 - fee))
                    trades[base] = quantity
                    cost += quantity * (market.ask - market.price * (1 - fee))
                else:
                    trades[base] = zero
            after = value - cost

        orders: list[Order] = []
        cash = holdings.available.get(QUOTE, zero)
        for base, quantity in sorted(trades.items()):
            market = markets[base]
            if quantity >= 0:
                continue
            lots = min(
                _lots(-quantity, market.lot, ROUND_HALF_EVEN),
                _lots(holdings.available.get(base, zero), market.lot, ROUND_FLOOR),
            )
            for order in _split(market, SELL, lots):
                orders.append(order)
                cash += order.spend() * (1 - fee)
        buys = [
            (base, _lots(quantity, markets[base].lot, ROUND_HALF_EVEN))
            for base, quantity in sorted(trades.items())
            if quantity > 0
        ]
        wanted = sum((lots * markets[base].lot * markets[base].ask for base, lots in buys), zero)
        if wanted > cash:
            # Not enough USDT for every buy at the estimated prices: each gets its share.
            share = cash / wanted
            buys = [(base, _lots(lots * share, Decimal(1), ROUND_FLOOR)) for base, lots in buys]
        for base, lots in buys:
            orders.extend(_split(markets[base], BUY, lots))
    return orders


def _split(market: Market, side: str, lots: int) -> list[Order]:
    """``lots`` as orders of at most the pair's largest order each, every one worth at least
    its minimum (a remainder below it is left out)."""
    price = market.bid if side == SELL else market.ask
    largest = _max_lots(market)
    orders = []
    while lots > 0:
        size = min(lots, largest)
        order = Order(market.symbol, market.base, side, size * market.lot, price)
        if order.spend() < market.min_notional:
            break
        orders.append(order)
        lots -= size
    return orders


def _max_lots(market: Market) -> int:
    if market.max_quantity is None:
        return 1 << 62
    return _lots(market.max_quantity, market.lot, ROUND_FLOOR)


def _polish(holdings: Holdings, orders: list[Order], markets, targets, prices, tolerance, fee) -> list[Order]:
    """While the drift is above the tolerance, make the one change that lowers it most: one
    more order on any pair and side, or a smaller (or no) order where the plan has one."""
    orders = list(orders)
    for _ in range(MAX_EXTRA_ORDERS):
        now = apply(holdings, orders, markets, fee)
        current = drift(now.total, prices, targets)
        if current <= tolerance:
            break
        best: tuple[Decimal, list[Order]] | None = None
        for candidate in _changes(holdings, now, orders, markets, targets, prices, fee):
            if candidate[0] < current and (best is None or candidate[0] < best[0]):
                best = candidate
        if best is None:
            break
        orders = best[1]
    return orders


def _unit_moves(market: Market, side: str, fee: Decimal) -> dict[str, Decimal]:
    """What one lot of an order on ``market`` changes, in value at the valuation prices."""
    lot = market.lot
    if side == SELL:
        return {market.base: -lot * market.price, QUOTE: lot * market.bid * (1 - fee)}
    return {market.base: lot * (1 - fee) * market.price, QUOTE: -lot * market.ask}


def _changes(holdings: Holdings, now: Holdings, orders: list[Order], markets, targets, prices, fee):
    """(drift after, orders) for the best quantity of each possible change, exactly."""
    with localcontext(prec=PRECISION):
        for base in sorted(markets):
            market = markets[base]
            for side in (SELL, BUY):
                if any(o.base == base and o.side != side for o in orders):
                    # buying back what the plan sells (or the reverse) pays the spread and the
                    # fee twice: a smaller order of the plan's (below) does that job
                    continue
                low, high = order_range(now, market, side)
                found = _line_search(now, _unit_moves(market, side, fee), low, high, targets, prices)
                if found is not None:
                    extra = Order(
                        market.symbol, base, side, found[1] * market.lot, market.bid if side == SELL else market.ask
                    )
                    yield found[0], _merge(holdings, orders, extra, markets, fee)
        for n, order in enumerate(orders):
            market = markets[order.base]
            lots = _lots(order.quantity, market.lot, ROUND_FLOOR)
            smallest = order_range(Holdings({}, {}), market, order.side)[0]  # the fewest lots of a valid order
            undo = {asset: -move for asset, move in _unit_moves(market, order.side, fee).items()}
            reductions = []
            found = _line_search(now, undo, 1, lots - smallest, targets, prices)
            if found is not None:
                reductions.append(found[1])
            reductions.append(lots)  # or none of it
            for k in reductions:
                rest = order.quantity - k * market.lot
                changed = [*orders[:n], *([replace(order, quantity=rest)] if rest > 0 else []), *orders[n + 1 :]]
                if feasible(holdings, changed, markets, fee):  # a smaller sell leaves less USDT for the buys
                    yield drift(apply(holdings, changed, markets, fee).total, prices, targets), changed


def _merge(holdings: Holdings, orders: list[Order], extra: Order, markets, fee) -> list[Order]:
    """``extra`` added to an earlier order of the same pair and side when the sum stays within
    the pair's largest order and every order can still trade in turn; else ``extra`` goes
    last. (One price and a fee linear in the quantity make the sum trade exactly like the two.)"""
    cap = markets[extra.base].max_quantity
    for n, order in enumerate(orders):
        if order.symbol == extra.symbol and order.side == extra.side and order.est_price == extra.est_price:
            quantity = order.quantity + extra.quantity
            merged = [*orders[:n], replace(order, quantity=quantity), *orders[n + 1 :]]
            if (cap is None or quantity <= cap) and feasible(holdings, merged, markets, fee):
                return merged
    return [*orders, extra]


def feasible(holdings: Holdings, orders, markets: Mapping[str, Market], fee: Decimal) -> bool:
    """Whether ``orders`` can trade one after the other: each sell within the base then
    available, each buy within the USDT then available."""
    available = dict(holdings.available)
    zero = Decimal(0)
    with localcontext(prec=PRECISION):
        for order in orders:
            base = markets[order.base].base
            if order.side == SELL:
                if order.quantity > available.get(base, zero):
                    return False
                available[base] = available.get(base, zero) - order.quantity
                available[QUOTE] = available.get(QUOTE, zero) + order.spend() * (1 - fee)
            else:
                if order.spend() > available.get(QUOTE, zero):
                    return False
                available[QUOTE] = available.get(QUOTE, zero) - order.spend()
                available[base] = available.get(base, zero) + order.quantity * (1 - fee)
    return True


def order_range(holdings: Holdings, market: Market, side: str) -> tuple[int, int]:
    """The whole numbers of lots a single valid order may have: at least the pair's minimum
    value at its estimated price, at most what is available (a buy: the USDT it spends) and
    the pair's largest order. Empty when the first exceeds the second."""
    zero = Decimal(0)
    with localcontext(prec=PRECISION):
        price = market.bid if side == SELL else market.ask
        if price <= 0:
            return 1, 0
        low = max(1, _lots(market.min_notional / price, market.lot, ROUND_CEILING))
        if side == SELL:
            high = _lots(max(holdings.available.get(market.base, zero), zero), market.lot, ROUND_FLOOR)
        else:
            high = _lots(max(holdings.available.get(QUOTE, zero), zero) / price, market.lot, ROUND_FLOOR)
        return low, min(high, _max_lots(market))


def _line_search(holdings: Holdings, moves: dict[str, Decimal], low: int, high: int, targets, prices):
    """(drift, k) for the whole ``k`` in [low, high] that leaves the lowest drift when every
    asset's value changes by ``k x moves[asset]``; None for an empty range.

    Every value moves linearly in k, and so does the total; an asset's distance from its
    target is ``|A + B k| / (V + beta k)``, which only falls then rises in k. The drift, the
    largest of them, is therefore quasi-convex in k: its lowest point over the reals is at an
    end of the range, where one distance is zero, or where two are equal; and over whole
    numbers it is at one next to that point. So trying the whole numbers around those few
    points is exact, without walking the range."""
    if low > high:
        return None
    zero = Decimal(0)
    # the assets moved count even when neither is held nor targeted yet
    assets = sorted(set(_assets(holdings.total, targets, prices)) | set(moves))
    with localcontext(prec=PRECISION):
        values = {a: holdings.total.get(a, zero) * prices[a] for a in assets}
        total = sum(values.values(), zero)
        beta = sum(moves.values(), zero)
        lines = [
            (values[a] - targets.get(a, zero) * total, moves.get(a, zero) - targets.get(a, zero) * beta) for a in assets
        ]
        points = [Decimal(low), Decimal(high)]
        for n, (a1, b1) in enumerate(lines):
            if b1:
                points.append(-a1 / b1)
            for a2, b2 in lines[n + 1 :]:
                if b1 != b2:
                    points.append((a2 - a1) / (b1 - b2))
                if b1 != -b2:
                    points.append(-(a1 + a2) / (b1 + b2))
        candidates = set()
        for point in points:
            if point < low - 1 or point > high + 1:
                point = min(max(point, Decimal(low)), Decimal(high))
            whole = math.floor(point)
            candidates.update(min(max(k, low), high) for k in (whole - 1, whole, whole + 1, whole + 2))

        def spread(k: int) -> Decimal:
            denominator = total + beta * k
            if denominator <= 0:
                return Decimal(1)
            return max(abs(a + b * k) for a, b in lines) / denominator

        best = min(sorted(candidates), key=spread)
        return spread(best), best


# --- the suggestion --------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    kind: str  # "drift" or "concentration"
    asset: str
    weight: Decimal
    target: Decimal | None
    message: str


def suggestions(
    *,
    weights_now: Mapping[str, Decimal],
    targets: Mapping[str, Decimal] | None,
    tolerance: Decimal,
    concentration: Decimal,
    plan_orders=(),
) -> list[Suggestion]:
    """What the Portfolio page says in plain words: the asset furthest from its target when
    the drift exceeds the tolerance (with the orders a rebalance would place), and any asset
    other than USDT that is more than ``concentration`` of the portfolio."""
    found: list[Suggestion] = []
    if targets:
        assets = sorted(set(weights_now) | set(targets))
        gaps = {a: weights_now.get(a, Decimal(0)) - targets.get(a, Decimal(0)) for a in assets}
        worst = max(sorted(assets), key=lambda a: (abs(gaps[a]), a != QUOTE))  # a tie names the asset, not cash
        if abs(gaps[worst]) > tolerance:
            direction = "above" if gaps[worst] > 0 else "below"
            trades = _orders_in_words(plan_orders)
            message = (
                f"Your portfolio has drifted from your targets: {worst} is {percent(weights_now.get(worst, 0))} "
                f"of it, {direction} its {percent(targets.get(worst, 0))} target by more than the "
                f"{percent(tolerance)} you allow."
            )
            message += f" A rebalance would {trades}." if trades else " No order can bring it closer at the moment."
            found.append(Suggestion("drift", worst, weights_now.get(worst, Decimal(0)), targets.get(worst), message))
    for asset in sorted(weights_now):
        weight = weights_now[asset]
        if asset != QUOTE and weight > concentration:
            found.append(
                Suggestion(
                    "concentration",
                    asset,
                    weight,
                    None if not targets else targets.get(asset),
                    f"{asset} is {percent(weight)} of your portfolio, more than {percent(concentration)}: "
                    f"your value rises and falls with it. Consider spreading it over other assets or "
                    f"holding part in USDT.",
                )
            )
    return found


def percent(value) -> str:
    """A weight as a percentage for people: one decimal, trailing zero dropped (60 %, 62.5 %)."""
    tenths = (Decimal(value) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    text = f"{tenths:f}"
    return f"{text[:-2] if text.endswith('.0') else text} %"


def _orders_in_words(orders) -> str:
    words = [f"{o.side} {_plain(o.quantity)} {o.base}" for o in orders]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
