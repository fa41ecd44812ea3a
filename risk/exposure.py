"""The options counter's own exposure, and what it does to an order (no Django).

Traders only buy options from the counter and sell them back, so the counter is short every
customer position: its net greeks per underlying are minus the customers' sum. Two limits
bound them, each with a soft and a hard value per underlying:

* ``counter_delta`` -- |net delta| in units of the underlying (BTC, ETH);
* ``counter_vega`` -- |net vega| in USDT per volatility point (the pricing core's unit: the
  change in value when the implied vol moves by 0.01, e.g. 55% -> 56%).

For a customer buy that moves a figure away from zero (adds to the counter's short), the
counter widens its ask between the soft and the hard value: the half-spread is multiplied by
``1 + k * (usage - soft) / (hard - soft)`` (usage after the order, capped at the hard value),
and an order that would take the figure past the hard value is refused (``risk_limit``,
``fields.limit`` = the limit's name). A customer sell (to close) is never widened nor
refused: a trader can always get out, and whatever it does to the book the counter asked to
hold no more than what it already sold.

Greeks are the pricing core's (``marketdata.pricing``), per contract of one unit of the
underlying: delta in the underlying, gamma per USDT, vega in USDT per vol point, theta in USDT
per calendar day. ``series_greeks`` prices them exactly as the option chain does (the default
smile per expiry, Black-76 on the index).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import numpy as np

from marketdata.pricing import DEFAULT_ATM_VOL, black76_chain, default_smile

from .core import BUY, LIMITS, Limits, Refusal, number

# (hard limit name, soft limit name, greek, what it is, unit for messages)
METRICS = (
    ("counter_delta", "counter_delta_soft", "delta", "net delta", ""),
    ("counter_vega", "counter_vega_soft", "vega", "net vega", " USDT per vol point"),
)
LIMIT_NAMES = tuple(name for hard, soft, *_ in METRICS for name in (soft, hard))
LOT = Decimal("0.01")
TICK = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities of one long contract (units in the module docstring)."""

    delta: float
    gamma: float
    vega: float
    theta: float


@dataclass(frozen=True, slots=True)
class Holding:
    """Customers' open contracts of one series, with that series' greeks per contract."""

    series: str
    underlying: str
    contracts: Decimal
    greeks: Greeks


@dataclass(frozen=True, slots=True)
class Exposure:
    """The counter's net greeks on one underlying (its sign: minus the customers' sum)."""

    underlying: str
    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0
    contracts: Decimal = Decimal(0)  # customer contracts open, all series

    def after(self, *, side: str, contracts: Decimal, greeks: Greeks) -> Exposure:
        """The exposure once a customer has bought (or sold) ``contracts`` more."""
        signed = float(contracts) if side == BUY else -float(contracts)
        return Exposure(
            self.underlying,
            self.delta - signed * greeks.delta,
            self.gamma - signed * greeks.gamma,
            self.vega - signed * greeks.vega,
            self.theta - signed * greeks.theta,
            self.contracts + (contracts if side == BUY else -contracts),
        )


def net_exposure(holdings: Iterable[Holding]) -> dict[str, Exposure]:
    """The counter's net greeks per underlying."""
    sums: dict[str, list] = {}
    for holding in holdings:
        row = sums.setdefault(holding.underlying, [0.0, 0.0, 0.0, 0.0, Decimal(0)])
        n = float(holding.contracts)
        g = holding.greeks
        row[0] -= n * g.delta
        row[1] -= n * g.gamma
        row[2] -= n * g.vega
        row[3] -= n * g.theta
        row[4] += holding.contracts
    return {u: Exposure(u, *row) for u, row in sums.items()}


def series_greeks(
    *, underlying: str, index: float, years: float, strikes: Sequence[float], calls: Sequence[bool]
) -> list[Greeks]:
    """Greeks per contract of series of one expiry (``years`` ahead), priced as the chain
    prices them: the default smile's vol at each strike, Black-76 on the index."""
    if not strikes:
        return []
    years = max(years, 1e-9)
    strike_array = np.array([float(s) for s in strikes])
    vols = default_smile(DEFAULT_ATM_VOL[underlying], years).vols(strike_array, float(index))
    valuation = black76_chain(float(index), strike_array, years, vols)
    found = []
    for i, call in enumerate(calls):
        v = valuation.call if call else valuation.put
        found.append(Greeks(float(v.delta[i]), float(v.gamma[i]), float(v.vega[i]), float(v.theta[i])))
    return found


# --- what an order does ---------------------------------------------------------------------------


def _refusal(limit: str, message: str, *, field: str, hint: str) -> Refusal:
    spec = LIMITS[limit]
    return Refusal(spec.code, spec.status, limit, message, field, hint)


@dataclass(frozen=True, slots=True)
class Decision:
    """``multiplier`` (>= 1) scales the counter's half-spread on the ask; ``refusal`` is set
    when the order would take a figure past its hard limit."""

    multiplier: float = 1.0
    refusal: Refusal | None = None


def widening(usage: float, soft: Decimal | None, hard: Decimal | None, k: float) -> float:
    """The half-spread multiplier at ``usage`` (an absolute figure): 1 up to the soft limit,
    rising linearly to ``1 + k`` at the hard limit (and staying there past it). Without a
    soft limit nothing widens; with no room between soft and hard, past soft is ``1 + k``."""
    if soft is None or usage <= float(soft):
        return 1.0
    if hard is None or hard <= soft:
        return 1.0 + k
    share = min((usage - float(soft)) / float(hard - soft), 1.0)
    return 1.0 + k * share


def adds(before: float, after: float) -> bool:
    """Whether a figure moved away from zero (more of the counter's exposure)."""
    return abs(after) > abs(before)


def room(before: float, per_contract: float, hard: Decimal, lot: Decimal = LOT) -> Decimal:
    """The most contracts a customer may still buy before the figure (which moves by
    ``-per_contract`` per contract bought) passes ``hard``, rounded down to the lot."""
    move = -per_contract
    if move == 0:
        return Decimal(0)
    left = (float(hard) - (before if move > 0 else -before)) / abs(move)
    if left <= 0:
        return Decimal(0)
    return (Decimal(repr(left)) / lot).to_integral_value(rounding=ROUND_FLOOR) * lot


def order_decision(
    exposure: Exposure, *, side: str, contracts: Decimal, greeks: Greeks, limits: Limits, k: float
) -> Decision:
    """What the counter does with an order: refuse it (a buy past a hard limit), widen its
    ask (a buy that adds to a figure past its soft limit), or nothing (anything else, and
    every sell)."""
    if side != BUY:
        return Decision()
    after = exposure.after(side=side, contracts=contracts, greeks=greeks)
    multiplier = 1.0
    for hard_name, soft_name, greek, what, unit in METRICS:
        was, now = getattr(exposure, greek), getattr(after, greek)
        if not adds(was, now):
            continue
        hard = limits[hard_name]
        if hard is not None and abs(now) > float(hard):
            most = room(was, getattr(greeks, greek), hard)
            return Decision(
                multiplier,
                _refusal(
                    hard_name,
                    f"The counter's {exposure.underlying} {what} would reach {abs(now):.4f}{unit}; "
                    f"its limit is {number(hard)}. Try fewer contracts or another series.",
                    field="contracts",
                    hint=f"At most {number(most)} of this series now.",
                ),
            )
        multiplier = max(multiplier, widening(abs(now), limits[soft_name], hard, k))
    return Decision(multiplier)


def widened_ask(*, mark: Decimal, ask: Decimal, spread: float, multiplier: float, tick: Decimal = TICK) -> Decimal:
    """The ask with the half-spread (a fraction of the mark) multiplied: never below the
    ask it widens, and equal to it at a multiplier of 1."""
    if multiplier <= 1.0:
        return ask
    half = max(mark * Decimal(repr(spread * multiplier)), tick).quantize(tick, rounding=ROUND_HALF_EVEN)
    return max(ask, (mark + half).quantize(tick))


def usage_percent(exposure: Exposure, limits: Limits) -> Decimal | None:
    """The larger share of its hard limit that |net delta| and |net vega| use, in percent
    (None when neither has a hard limit)."""
    shares = []
    for hard_name, _, greek, *_ in METRICS:
        hard = limits[hard_name]
        if hard:
            shares.append(Decimal(repr(abs(getattr(exposure, greek)))) * 100 / hard)
    return max(shares).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN) if shares else None
