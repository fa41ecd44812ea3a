"""Option pricing maths: pure, deterministic Python (math, numpy, scipy.special).

Nothing here imports Django or the rest of the project. Floats in, floats out; callers
quantize to ``Decimal`` at their edges.

Units (see ``black``): premium in the quote currency (USDT) per contract of one unit of the
underlying; delta per unit of the underlying; gamma per USDT; vega in USDT per volatility
point (0.01); theta in USDT per calendar day (365-day year); time in 365-day years; vol as
a fraction (0.55 = 55%).

* ``black`` -- scalar Black-76 (forward) and Black-Scholes (spot) prices and greeks;
* ``vector`` -- the same over numpy arrays, a whole chain per call;
* ``implied`` -- implied volatility, scalar and vectorised, never raising;
* ``smile`` -- SVI smile per expiry and the simulator's default smile;
* ``spread`` -- the counter's bid and ask around the mark (a half-spread that scales with vega).
"""

from ._common import CALL, DAYS_PER_YEAR, PUT, SECONDS_PER_YEAR, VOL_POINT
from .black import (
    Greeks,
    Valuation,
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
from .implied import (
    REASON_ABOVE_UPPER_BOUND,
    REASON_BELOW_INTRINSIC,
    REASON_INVALID_INPUT,
    REASON_NO_CONVERGENCE,
    REASON_NON_FINITE,
    REASON_OK,
    REASON_ZERO_TIME,
    IvArrays,
    IvResult,
    implied_vol,
    implied_vol_vec,
)
from .smile import DEFAULT_ATM_VOL, Smile, default_smile
from .spread import CounterPrices, SpreadParams, bid_floor, counter_prices, half_spread, round_trip_cost
from .vector import ChainValuation, ValuationArrays, black76_chain, black76_vec

__all__ = [
    "CALL",
    "DAYS_PER_YEAR",
    "DEFAULT_ATM_VOL",
    "PUT",
    "REASON_ABOVE_UPPER_BOUND",
    "REASON_BELOW_INTRINSIC",
    "REASON_INVALID_INPUT",
    "REASON_NON_FINITE",
    "REASON_NO_CONVERGENCE",
    "REASON_OK",
    "REASON_ZERO_TIME",
    "SECONDS_PER_YEAR",
    "VOL_POINT",
    "ChainValuation",
    "CounterPrices",
    "Greeks",
    "IvArrays",
    "IvResult",
    "Smile",
    "SpreadParams",
    "Valuation",
    "ValuationArrays",
    "bid_floor",
    "black76_chain",
    "black76_price",
    "black76_valuation",
    "black76_vec",
    "bs_greeks",
    "bs_price",
    "bs_valuation",
    "counter_prices",
    "default_smile",
    "discount_factor",
    "forward_price",
    "greeks",
    "half_spread",
    "implied_vol",
    "implied_vol_vec",
    "premium_in_quote",
    "premium_in_underlying",
    "round_trip_cost",
    "year_fraction",
]
