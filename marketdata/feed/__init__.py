"""The market-data source layer for the index price: pure Python, no Django.

Sources (a simulator, or real exchanges through ccxt) produce ``Quote``s; ``compute_index``
turns one underlying's quotes into an ``IndexResult`` (median with outliers clipped, stale
when too few fresh sources agree). The Django side — models, the ``run_feed`` command,
candles — builds on these names only.
"""

from .ccxt_source import CcxtTickerSource
from .index import (
    INSUFFICIENT,
    MISSING,
    OUTLIER,
    STALE,
    IndexResult,
    IndexStaleError,
    compute_index,
)
from .simulator import (
    DEFAULT_EXCHANGES,
    DEFAULT_UNDERLYINGS,
    ExchangeProfile,
    MarketSimulator,
    SimParams,
    SimulatedExchangeSource,
)
from .sources import PRICE_QUANTUM, Quote, Source, SourceError, collect_quotes, to_price

__all__ = [
    "DEFAULT_EXCHANGES",
    "DEFAULT_UNDERLYINGS",
    "INSUFFICIENT",
    "MISSING",
    "OUTLIER",
    "PRICE_QUANTUM",
    "STALE",
    "CcxtTickerSource",
    "ExchangeProfile",
    "IndexResult",
    "IndexStaleError",
    "MarketSimulator",
    "Quote",
    "SimParams",
    "SimulatedExchangeSource",
    "Source",
    "SourceError",
    "collect_quotes",
    "compute_index",
    "to_price",
]
