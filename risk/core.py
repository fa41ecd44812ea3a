"""The pre-trade risk checks as data and plain functions (no Django).

A check reads a ``Limits`` (every limit that applies to one order, already resolved from
the instrument's defaults, the trader's KYC tier and their own overrides) and the facts of
the order (what it is, and the usage figures order entry has at hand), and answers ``None``
or the first ``Refusal``. Nothing here touches a database or a clock: the service
(``risk.services``) gathers the facts and raises the refusal as an API error.

Every limit has a name (``LIMITS``): the name is what staff override, what a ``risk_limit``
refusal puts in ``fields["limit"]``, and what ``GET /api/v1/risk/limits`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

BUY, SELL = "buy", "sell"
MARKET = "market"

# trading states, from the least to the most restrictive
ACTIVE, REDUCE_ONLY, HALTED = "active", "reduce_only", "halted"
STATES = (ACTIVE, REDUCE_ONLY, HALTED)
PLATFORM, SYMBOL, USER = "platform", "symbol", "user"
HALTED_REASON = "trading_halted"  # why an order taken before a halt's commit ends unmatched
SCOPES = (PLATFORM, SYMBOL, USER)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    name: str
    unit: str  # "fraction", "USDT", "base", "contracts", "orders", "orders/s", or an asset
    scope: str  # what the limit is set per: "symbol", "underlying", "asset" or "user"
    code: str  # the error code of a refusal
    status: int
    summary: str


def _spec(name, unit, scope, code, status, summary):
    return LimitSpec(name, unit, scope, code, status, summary)


# Every limit the platform enforces. Codes other than ``risk_limit`` are the ones order entry
# has always answered for that check; they stay so that clients keep working.
LIMITS: dict[str, LimitSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "buy_band_above",
            "fraction",
            "symbol",
            "price_out_of_band",
            400,
            "how far above the index a buy may be priced",
        ),
        _spec(
            "buy_band_below",
            "fraction",
            "symbol",
            "price_out_of_band",
            400,
            "how far below the index a buy may be priced",
        ),
        _spec(
            "sell_band_above",
            "fraction",
            "symbol",
            "price_out_of_band",
            400,
            "how far above the index a sell may be priced",
        ),
        _spec(
            "sell_band_below",
            "fraction",
            "symbol",
            "price_out_of_band",
            400,
            "how far below the index a sell may be priced",
        ),
        _spec("min_notional", "USDT", "symbol", "min_notional", 400, "the smallest order value"),
        _spec("max_notional", "USDT", "symbol", "max_order_size", 400, "the largest order value"),
        _spec(
            "max_order_quantity", "base", "symbol", "risk_limit", 422, "the largest quantity of a limit or stop order"
        ),
        _spec("max_market_quantity", "base", "symbol", "risk_limit", 422, "the largest quantity of a market order"),
        _spec("max_open_orders", "orders", "user", "max_open_orders", 409, "open spot orders at once"),
        _spec(
            "max_position", "base", "asset", "risk_limit", 422, "the most of an asset a buy may bring the holding to"
        ),
        _spec(
            "max_series_contracts",
            "contracts",
            "underlying",
            "position_limit",
            422,
            "contracts held in one option series",
        ),
        _spec("max_option_premium", "USDT", "user", "position_limit", 422, "premium paid for open option positions"),
        _spec("order_rate", "orders/s", "user", "rate_limited", 429, "orders per second, sustained"),
        _spec("order_burst", "orders", "user", "rate_limited", 429, "orders at once above the sustained rate"),
        _spec("daily_withdrawal", "asset", "asset", "limit_exceeded", 400, "withdrawals in any 24 hours"),
        # the options counter's own book (risk/exposure.py): past soft its ask widens, past hard
        # a buy that adds to the figure is refused; set for all traders, per underlying
        _spec(
            "counter_delta_soft",
            "underlying",
            "underlying",
            "risk_limit",
            422,
            "the counter's |net delta| above which its ask widens",
        ),
        _spec(
            "counter_delta",
            "underlying",
            "underlying",
            "risk_limit",
            422,
            "the counter's |net delta| no customer buy may take it past",
        ),
        _spec(
            "counter_vega_soft",
            "USDT/vol point",
            "underlying",
            "risk_limit",
            422,
            "the counter's |net vega| above which its ask widens",
        ),
        _spec(
            "counter_vega",
            "USDT/vol point",
            "underlying",
            "risk_limit",
            422,
            "the counter's |net vega| no customer buy may take it past",
        ),
    )
}
BANDS = {
    (BUY, "above"): "buy_band_above",
    (BUY, "below"): "buy_band_below",
    (SELL, "above"): "sell_band_above",
    (SELL, "below"): "sell_band_below",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an order (or a withdrawal) is refused: its error code and HTTP status, the limit
    it hit (``""`` for a trading state), a message for people and the field to blame."""

    code: str
    status: int
    limit: str
    message: str
    field: str = ""
    hint: str = ""

    def fields(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if self.limit:
            found["limit"] = [self.limit]
        if self.field:
            found[self.field] = [self.hint or self.message]
        return found


def _refuse(limit: str, message: str, *, field: str = "", hint: str = "") -> Refusal:
    spec = LIMITS[limit]
    return Refusal(spec.code, spec.status, limit, message, field, hint)


@dataclass(frozen=True, slots=True)
class Limits:
    """The resolved value of each limit for one trader on one instrument (``None``: no such
    limit here). Built by ``risk.selectors.limits_for``."""

    values: dict[str, Decimal | None] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Decimal | None:
        return self.values.get(name)


def number(value: Decimal) -> str:
    """A limit or a figure in a message: plain digits, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def price(value: Decimal, tick: Decimal | None) -> str:
    """A price in a message as the market shows it: its tick's places, thousands separated
    (``65,078.14``), as ``trading.formatting.display_price`` writes it on the pages."""
    if not tick:
        return number(value)
    places = max(0, -tick.normalize().as_tuple().exponent)
    return f"{value.quantize(Decimal(1).scaleb(-places)):,f}"


# --- trading states ----------------------------------------------------------------------------


def strictest(states) -> str:
    """The state that applies when several scopes set one (a halted symbol stays halted on an
    active platform; a halted platform halts everything)."""
    found = ACTIVE
    for state in states:
        if STATES.index(state) > STATES.index(found):
            found = state
    return found


def state_refusal(state: str, *, reduces: bool, what: str) -> Refusal | None:
    """``halted``: nothing new; ``reduce_only``: only what reduces a position (a spot sell, an
    option sell to close). ``what`` names where the state is set, for the message."""
    if state == HALTED:
        return Refusal("trading_halted", 403, "", f"Trading is halted ({what}); no new orders are accepted.")
    if state == REDUCE_ONLY and not reduces:
        return Refusal(
            "reduce_only",
            403,
            "",
            f"Trading is reduce-only ({what}): only orders that reduce a position (sells) are accepted.",
        )
    return None


# --- spot orders -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpotOrder:
    """The facts of one spot order that the checks read."""

    side: str
    type: str
    quantity: Decimal | None  # None: a market buy by quote amount
    notional: Decimal  # USDT value at its limit, stop or reference price (or its amount)
    price: Decimal | None = None
    stop_price: Decimal | None = None
    tick: Decimal = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class SpotUsage:
    """What the trader already has, read by order entry under the trader's lock."""

    open_orders: int = 0
    base_held: Decimal = Decimal(0)  # total of the base asset, held included
    open_buys: Decimal = Decimal(0)  # what the trader's live buys on the pair may still buy

    @property
    def position(self) -> Decimal:
        """What the holding may become before this order: held, plus every live buy filled
        (as Binance's MAX_POSITION counts it)."""
        return self.base_held + self.open_buys


def band(index: Decimal, limits: Limits, side: str, tick: Decimal) -> tuple[Decimal, Decimal] | None:
    """The prices (rounded inwards to the tick) an order on ``side`` may carry around the
    index, or None when no band applies."""
    above, below = limits[BANDS[side, "above"]], limits[BANDS[side, "below"]]
    if above is None or below is None:
        return None
    low = (index * (1 - below) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
    high = (index * (1 + above) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    return low, high


def band_refusal(order: SpotOrder, limits: Limits, index: Decimal | None) -> Refusal | None:
    """A limit or stop price outside the side's band around the index (no index: no band;
    a market order by quantity is refused elsewhere when the index is stale)."""
    if index is None:
        return None
    bounds = band(index, limits, order.side, order.tick)
    if bounds is None:
        return None
    low, high = bounds
    for name in ("price", "stop_price"):
        value = getattr(order, name)
        if value is None:
            continue
        if value > high:
            limit = BANDS[order.side, "above"]
        elif value < low:
            limit = BANDS[order.side, "below"]
        else:
            continue
        share = limits[limit] * 100
        where = "above" if value > high else "below"
        return _refuse(
            limit,
            f"A {order.side} {name} of {price(value, order.tick)} is more than {number(share)}% {where} "
            f"the index {price(index, order.tick)}.",
            field=name,
            hint=f"Between {price(low, order.tick)} and {price(high, order.tick)}.",
        )
    return None


def spot_refusal(order: SpotOrder, limits: Limits, usage: SpotUsage, index: Decimal | None) -> Refusal | None:
    """Every limit a spot order must respect, in the order a trader would want to hear them:
    the price, the size, then what they already have."""
    return band_refusal(order, limits, index) or size_refusal(order, limits) or usage_refusal(order, limits, usage)


def size_refusal(order: SpotOrder, limits: Limits) -> Refusal | None:
    """The order's value (min and max notional) and quantity (market orders separately)."""
    low, high = limits["min_notional"], limits["max_notional"]
    if low is not None and order.notional < low:
        return _refuse(
            "min_notional",
            f"The order is worth {order.notional:.2f} USDT; the minimum is {number(low)}.",
            field="quantity",
            hint=f"At least {number(low)} USDT.",
        )
    if high is not None and order.notional > high:
        return _refuse(
            "max_notional",
            f"The order is worth {order.notional:.2f} USDT; the maximum per order is {number(high)}.",
            field="quantity",
            hint=f"At most {number(high)} USDT.",
        )
    if order.quantity is not None:
        name = "max_market_quantity" if order.type == MARKET else "max_order_quantity"
        most = limits[name]
        if most is not None and order.quantity > most:
            return _refuse(
                name,
                f"At most {number(most)} per {'market ' if order.type == MARKET else ''}order.",
                field="quantity",
                hint=f"At most {number(most)}.",
            )
    return None


def usage_refusal(order: SpotOrder, limits: Limits, usage: SpotUsage) -> Refusal | None:
    """The limits on what the trader already has (open orders, the holding a buy grows)."""
    most = limits["max_open_orders"]
    if most is not None and usage.open_orders >= most:
        return _refuse(
            "max_open_orders", f"You have {usage.open_orders} open orders, the most allowed; cancel some first."
        )
    cap = limits["max_position"]
    buys = order.side == BUY and order.quantity is not None
    if cap is not None and buys and usage.position + order.quantity > cap:
        room = max(cap - usage.position, Decimal(0))
        return _refuse(
            "max_position",
            f"This buy would bring your holding (with your open buys) to {number(usage.position + order.quantity)}; "
            f"the most allowed is {number(cap)}.",
            field="quantity",
            hint=f"At most {number(room)} more.",
        )
    return None


def max_quantity(
    limits: Limits, usage: SpotUsage, *, side: str, order_type: str, price: Decimal | None
) -> Decimal | None:
    """The largest quantity an order could have under the limits (for the order ticket), or
    None when nothing caps it."""
    caps = []
    name = "max_market_quantity" if order_type == MARKET else "max_order_quantity"
    if limits[name] is not None:
        caps.append(limits[name])
    if price and limits["max_notional"] is not None:
        caps.append(limits["max_notional"] / price)
    if side == BUY and limits["max_position"] is not None:
        caps.append(max(limits["max_position"] - usage.position, Decimal(0)))
    return min(caps) if caps else None


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionOrder:
    side: str
    contracts: Decimal
    total_usdt: Decimal
    held: Decimal  # contracts of the series held before this order
    premium_open: Decimal  # premium paid for every open position before this order


def option_refusal(order: OptionOrder, limits: Limits) -> Refusal | None:
    """Buying to open: the contracts of one series and the premium of all positions. Selling
    to close reduces both and is never refused here."""
    if order.side != BUY:
        return None
    cap = limits["max_series_contracts"]
    if cap is not None and order.held + order.contracts > cap:
        return _refuse(
            "max_series_contracts",
            f"At most {number(cap)} contracts of one series; you hold {number(order.held)}.",
            field="contracts",
            hint=f"At most {number(max(cap - order.held, Decimal(0)))} more.",
        )
    premium = limits["max_option_premium"]
    if premium is not None and order.premium_open + order.total_usdt > premium:
        return _refuse(
            "max_option_premium",
            f"Your open option positions may cost at most {number(premium)} USDT in premium "
            f"(now {number(order.premium_open)} USDT).",
            field="contracts",
            hint=f"At most {number(max(premium - order.premium_open, Decimal(0)))} USDT more.",
        )
    return None


# --- withdrawals -------------------------------------------------------------------------------


def withdrawal_refusal(*, asset: str, amount: Decimal, used: Decimal, limit: Decimal | None) -> Refusal | None:
    if limit is None or used + amount <= limit:
        return None
    left = max(limit - used, Decimal(0))
    return _refuse(
        "daily_withdrawal",
        f"This exceeds your 24-hour {asset} withdrawal limit of {number(limit)} (left: {number(left)}).",
        field="amount",
        hint=f"At most {number(left)} {asset} more in the next 24 hours.",
    )


# --- order rate ------------------------------------------------------------------------------


def gcra(tat: float, now: float, *, rate: float, burst: float) -> tuple[bool, float, float]:
    """The generic cell rate algorithm (a token bucket kept as one number): ``tat`` is the
    theoretical arrival time of the next order at the sustained ``rate``; up to ``burst``
    orders may come at once. Returns ``(allowed, new_tat, retry_after_seconds)``."""
    interval = 1.0 / rate
    tat = max(tat, now)
    allow_at = tat + interval - burst * interval
    if now < allow_at:
        return False, tat, allow_at - now
    return True, tat + interval, 0.0


def rate_refusal(retry_after: float, limits: Limits) -> Refusal:
    rate, burst = limits["order_rate"], limits["order_burst"]
    return _refuse(
        "order_rate",
        f"Too many orders: at most {number(rate)} per second (bursts of {number(burst)}); "
        f"try again in {max(retry_after, 0.001):.3f} s.",
    )
