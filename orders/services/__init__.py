"""Orders writes. The options counter lives in ``options``; spot order entry arrives beside it."""

from .options import (  # noqa: F401
    SettlementPriceUnavailable,
    option_quotes_purge,
    options_expire,
    options_order_place,
    options_quote,
    settlement_price,
)
