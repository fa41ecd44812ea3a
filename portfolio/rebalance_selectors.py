"""Rebalancing reads: the trader's spot holdings and markets as the rebalancing maths
(``portfolio.rebalance``) needs them, the plan for a trader now, their saved targets, the
Portfolio page's suggestion, and their rebalance batches."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from django.conf import settings

from ledger.selectors import balances_for
from marketdata.models import Instrument, InstrumentKind
from marketdata.selectors import index_is_fresh, index_latest, spot_market
from orders.models import SpotOrder
from risk import services as risk
from trading.errors import DomainError, ValidationFailed
from trading.formatting import decimal_string
from trading.money import ASSETS, parse_decimal, quantize

from . import rebalance as core
from . import selectors
from .models import RebalanceBatch, RebalanceTargets

DRIFT_STEP = Decimal("0.000001")
MAX_TARGETS = len(ASSETS)
# the limits a single market order is held to: its value, and its quantity
_ORDER_LIMITS = ("min_notional", "max_notional", "max_market_quantity")


class PricesUnavailable(DomainError):
    status = 503
    code = "index_stale"


# --- inputs -------------------------------------------------------------------------------------------


def targets_parse(raw, tolerance_raw=None) -> tuple[dict[str, Decimal], Decimal]:
    """``{ASSET: "weight"}`` and an optional tolerance from a request, as the maths takes them:
    any refusal is a 400 validation_error naming the field (``targets.BTC`` nests under
    ``targets``)."""
    if not isinstance(raw, dict) or not raw:
        raise ValidationFailed(
            "targets are required: {ASSET: weight}.", fields={"targets": ["Give each asset's weight."]}
        )
    if len(raw) > MAX_TARGETS:
        raise ValidationFailed(
            f"At most {MAX_TARGETS} targets.",
            fields={"targets": [f"At most {MAX_TARGETS} assets: {', '.join(ASSETS)}."]},
        )
    weights, problems = {}, {}
    for asset, weight in raw.items():
        try:
            weights[asset] = parse_decimal(weight, field=str(asset), signed=True, maximum=Decimal(1))
        except ValidationFailed as refused:
            problems[str(asset)] = refused.fields[str(asset)]
    if problems:
        first = next(iter(problems))
        raise ValidationFailed(f"targets.{first}: {problems[first][0]}", fields={"targets": problems})
    tolerance = None
    if tolerance_raw not in (None, ""):
        tolerance = parse_decimal(tolerance_raw, field="tolerance", signed=True)
    try:
        return core.check_targets(weights, ASSETS), core.check_tolerance(
            Decimal(settings.PORTFOLIO_REBALANCE_TOLERANCE) if tolerance is None else tolerance
        )
    except core.InvalidTargets as refused:
        raise ValidationFailed(refused.message, fields=refused.fields) from None


# --- the trader's portfolio as the maths reads it ------------------------------------------------------


@dataclass(frozen=True)
class Situation:
    holdings: core.Holdings
    markets: dict[str, core.Market]
    fee: Decimal
    stale: tuple[str, ...]  # assets whose price is not live


def situation_of(*, user) -> Situation:
    """The trader's spot balances (total and available) and every USDT pair with its
    valuation price (the live price the portfolio shows), its best bid and ask (the last
    price when a side of the book is empty), lot, tick and the limits a market order meets."""
    balances = balances_for(user=user)
    prices = selectors.prices_now()
    markets, stale = {}, []
    instruments = Instrument.objects.filter(kind=InstrumentKind.SPOT, active=True, quote=core.QUOTE)
    for instrument in instruments:
        price = prices.get(instrument.base)
        if price is None or price.price is None:
            stale.append(instrument.base)
            continue
        if price.stale:
            stale.append(instrument.base)
        book = spot_market(instrument.symbol)
        tick = instrument.tick_size
        bid = Decimal(book["bids"][0][0]) if book.get("bids") else price.price
        ask = Decimal(book["asks"][0][0]) if book.get("asks") else price.price
        # on the tick, and on the trader's side of any rounding
        bid, ask = _on_tick(bid, tick, ROUND_FLOOR), _on_tick(ask, tick, ROUND_CEILING)
        limits = risk.spot_limits(user, instrument, _ORDER_LIMITS)
        markets[instrument.base] = core.Market(
            symbol=instrument.symbol,
            base=instrument.base,
            price=price.price,
            bid=bid,
            ask=ask,
            tick=tick,
            lot=instrument.lot_size,
            min_notional=limits["min_notional"] or Decimal(0),
            max_quantity=_largest(instrument, limits, (price.price, bid, ask)),
        )
    return Situation(
        holdings=core.Holdings(
            total={b.asset: b.total for b in balances}, available={b.asset: b.available for b in balances}
        ),
        markets=markets,
        fee=Decimal(settings.SPOT_TAKER_FEE),
        stale=tuple(sorted(stale)),
    )


def _on_tick(price: Decimal, tick: Decimal, rounding) -> Decimal:
    return (price / tick).to_integral_value(rounding=rounding) * tick


def _largest(instrument: Instrument, limits, prices) -> Decimal | None:
    """The largest market order: its quantity limit, and its value limit at the highest of
    the prices it may be checked at (order entry values a market order at the index)."""
    caps = []
    if limits["max_market_quantity"] is not None:
        caps.append(limits["max_market_quantity"])
    if limits["max_notional"] is not None:
        index = index_latest(underlying=instrument.base)
        highest = max([*prices, *([index.price] if index_is_fresh(index) else [])])
        caps.append(limits["max_notional"] / highest)
    if not caps:
        return None
    lot = instrument.lot_size
    return (min(caps) / lot).to_integral_value(rounding=ROUND_FLOOR) * lot


# --- the plan -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedOrder:
    symbol: str
    side: str
    quantity: Decimal
    est_price: Decimal
    est_notional: Decimal  # quantity x est_price, USDT
    quote_quantity: Decimal | None  # a buy spends this much USDT (placed as a quote amount)
    est_fee: Decimal
    fee_asset: str

    def as_json(self) -> dict:
        """As the API writes it (``rebalance_api.PlannedOrderSerializer``), for the batch to keep."""
        return {
            "symbol": self.symbol,
            "side": self.side,
            "quantity": decimal_string(self.quantity),
            "est_price": decimal_string(self.est_price),
            "est_notional": decimal_string(self.est_notional, asset=core.QUOTE),
            "quote_quantity": decimal_string(self.quote_quantity),
            "est_fee": decimal_string(self.est_fee),
            "fee_asset": self.fee_asset,
        }


@dataclass(frozen=True)
class Preview:
    targets: dict[str, Decimal]
    tolerance: Decimal
    fee_rate: Decimal
    value_usdt: Decimal
    drift_before: Decimal
    drift_after: Decimal
    within_tolerance: bool
    weights_before: dict[str, Decimal]
    weights_after: dict[str, Decimal]
    orders: list[PlannedOrder]


def planned_order(order: core.Order, market: core.Market, fee: Decimal) -> PlannedOrder:
    """An order of the plan as the API shows it and placement enters it. Fees are taken from
    what the order receives: USDT for a sell, the base for a buy."""
    notional = order.quantity * order.est_price
    if order.side == core.SELL:
        return PlannedOrder(
            market.symbol,
            order.side,
            order.quantity,
            order.est_price,
            quantize(core.QUOTE, notional, rounding=ROUND_HALF_EVEN),
            None,
            quantize(core.QUOTE, notional * fee, rounding=ROUND_HALF_EVEN),
            core.QUOTE,
        )
    return PlannedOrder(
        market.symbol,
        order.side,
        order.quantity,
        order.est_price,
        quantize(core.QUOTE, notional, rounding=ROUND_HALF_EVEN),
        # at least quantity x ask, so the engine can buy the whole quantity at the ask
        quantize(core.QUOTE, notional, rounding=ROUND_CEILING),
        quantize(market.base, order.quantity * fee, rounding=ROUND_HALF_EVEN),
        market.base,
    )


def rebalance_preview(*, user, targets: dict[str, Decimal], tolerance: Decimal) -> Preview:
    """The orders that would rebalance the trader now, and the drift before and after at the
    estimated prices. Refused (503 index_stale) while a price it needs is not live."""
    found = situation_of(user=user)
    involved = {a for a, q in found.holdings.total.items() if q} | {a for a, w in targets.items() if w}
    missing = sorted(a for a in involved - {core.QUOTE} if a not in found.markets or a in found.stale)
    if missing:
        raise PricesUnavailable(
            f"The price of {', '.join(missing)} is not live; rebalancing waits until it is.",
            headers={"Retry-After": "5"},
        )
    try:
        plan = core.plan(
            holdings=found.holdings, markets=found.markets, targets=targets, tolerance=tolerance, fee=found.fee
        )
    except core.InvalidTargets as refused:  # an asset with no market listed now
        raise ValidationFailed(refused.message, fields=refused.fields) from None
    return Preview(
        targets=dict(targets),
        tolerance=tolerance,
        fee_rate=found.fee,
        value_usdt=quantize(core.QUOTE, plan.value, rounding=ROUND_HALF_EVEN),
        drift_before=_drift(plan.drift_before),
        drift_after=_drift(plan.drift_after),
        within_tolerance=plan.within_tolerance,
        weights_before=_weights(plan.weights_before),
        weights_after=_weights(plan.weights_after),
        orders=[planned_order(o, found.markets[o.base], found.fee) for o in plan.orders],
    )


def _drift(value: Decimal) -> Decimal:
    # up, so a drift just above the tolerance never shows as equal to it
    return value.quantize(DRIFT_STEP, rounding=ROUND_CEILING)


def _weights(weights: dict[str, Decimal]) -> dict[str, Decimal]:
    return {a: w.quantize(DRIFT_STEP, rounding=ROUND_HALF_EVEN) for a, w in sorted(weights.items())}


# --- saved targets and the suggestion ---------------------------------------------------------------------


def targets_of(*, user) -> RebalanceTargets | None:
    return RebalanceTargets.objects.filter(user=user).first()


def stored_targets(row: RebalanceTargets) -> dict[str, Decimal]:
    return {asset: Decimal(weight) for asset, weight in row.targets.items()}


@dataclass(frozen=True)
class Advice:
    targets: dict[str, Decimal] | None
    tolerance: Decimal
    concentration_threshold: Decimal
    weights: dict[str, Decimal]
    drift: Decimal | None
    suggestions: list[core.Suggestion]
    orders: list[PlannedOrder]
    stale: bool


def advice_of(*, user) -> Advice:
    """What the Portfolio page suggests: against the trader's saved targets (if any), the
    drift and the orders a rebalance would place when it exceeds their tolerance; and any
    asset but USDT above the concentration threshold. Never refused: an asset that has never
    had a price is left out, and ``stale`` says when a price used is not live."""
    saved = targets_of(user=user)
    targets = stored_targets(saved) if saved else None
    tolerance = saved.tolerance if saved else Decimal(settings.PORTFOLIO_REBALANCE_TOLERANCE)
    threshold = Decimal(settings.PORTFOLIO_CONCENTRATION_THRESHOLD)
    found = situation_of(user=user)
    prices = {core.QUOTE: Decimal(1), **{b: m.price for b, m in found.markets.items()}}
    held = {a: q for a, q in found.holdings.total.items() if q and a in prices}
    value, weights = core.weights(held, prices, sorted(held))
    plan = None
    # with the last known prices when one is not live: the page marks them, and a suggestion
    # places nothing (the preview and placing refuse until they are live)
    if targets is not None and set(targets) <= set(prices):
        plan = core.plan(
            holdings=found.holdings, markets=found.markets, targets=targets, tolerance=tolerance, fee=found.fee
        )
    said = core.suggestions(
        weights_now=plan.weights_before if plan else weights,
        targets=targets if plan else None,
        tolerance=tolerance,
        concentration=threshold,
        plan_orders=plan.orders if plan else (),
    )
    if value <= 0:
        said = []
    return Advice(
        targets=targets,
        tolerance=tolerance,
        concentration_threshold=threshold,
        weights=_weights(plan.weights_before if plan else weights),
        drift=_drift(plan.drift_before) if plan else None,
        suggestions=said,
        orders=[planned_order(o, found.markets[o.base], found.fee) for o in plan.orders] if plan else [],
        stale=bool(found.stale),
    )


# --- batches --------------------------------------------------------------------------------------------


def batches_of(*, user):
    return RebalanceBatch.objects.filter(user=user)


def batch_orders(batch: RebalanceBatch) -> list[dict]:
    """The batch's planned orders, each with the spot order it entered as it stands now."""
    ids = [entry["order_id"] for entry in batch.orders if entry.get("order_id")]
    orders = {o.pk: o for o in SpotOrder.objects.filter(pk__in=ids, user_id=batch.user_id)}
    result = []
    for entry in batch.orders:
        order = orders.get(entry.get("order_id"))
        result.append(
            {
                **entry,
                "order": None
                if order is None
                else {
                    "id": order.pk,
                    "status": order.status,
                    "filled_quantity": order.filled_quantity,
                    "filled_quote": order.filled_quote,
                    "average_price": order.average_price,
                    "fees_paid": order.fees_paid,
                    "cancel_reason": order.cancel_reason or None,
                },
            }
        )
    return result
