"""The spot matching engine core: one in-memory, price-time-priority order book per symbol.

Pure, deterministic Python with no Django import. Prices are int ticks and quantities int
lots (``Units`` converts from and to the instrument's Decimals); order and owner ids are ints
chosen by the caller (the runner uses the database ids). Commands go in, events come out,
each event with the symbol's next sequence number; the same commands on the same book give
the same events, byte for byte (``encode``).

    book = OrderBook("BTC-USDT", market_band_ppm=50_000, seq=last_seq, last_price=last_trade)
    book.place_limit(101, 7, BUY, 1500, 6500012)            # plain GTC limit: the hot path
    book.place(102, 8, SELL, STOP_LIMIT, 300, 6400000, stop_price=6450000)
    book.cancel(101)
    book.amend(102, qty=200)
    for event in book.drain(): ...                          # tuples, see events.py

On start the runner rebuilds the book from its open orders (``OrderBook.rebuild``) and keeps
the cyclic garbage collector off its loop with ``HotPathGC`` (see ``gcguard.py``).
"""

from .book import DEFAULT_MARKET_BAND_PPM, BookSnapshot, OrderBook, RebuildError, RestingOrder
from .constants import (
    BUY,
    EXPIRE_BOTH,
    EXPIRE_MAKER,
    EXPIRE_TAKER,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    ORDER_TYPES,
    PPM,
    SELL,
    SIDES,
    STOP_LIMIT,
    STOP_MARKET,
    STOP_TYPES,
    STP_MODES,
    TIMES_IN_FORCE,
    TRAILING_STOP,
    Cancel,
    Reject,
)
from .events import (
    ACCEPTED,
    AMENDED,
    BOOK,
    CANCELLED,
    FIELDS,
    REFRESHED,
    REJECTED,
    TRADE,
    TRIGGERED,
    decode,
    encode,
    to_dict,
    view,
)
from .gcguard import HotPathGC
from .units import UnitError, Units

__all__ = [
    "ACCEPTED",
    "AMENDED",
    "BOOK",
    "BUY",
    "CANCELLED",
    "DEFAULT_MARKET_BAND_PPM",
    "EXPIRE_BOTH",
    "EXPIRE_MAKER",
    "EXPIRE_TAKER",
    "FIELDS",
    "FOK",
    "GTC",
    "IOC",
    "LIMIT",
    "MARKET",
    "ORDER_TYPES",
    "PPM",
    "REFRESHED",
    "REJECTED",
    "SELL",
    "SIDES",
    "STOP_LIMIT",
    "STOP_MARKET",
    "STOP_TYPES",
    "STP_MODES",
    "TIMES_IN_FORCE",
    "TRADE",
    "TRAILING_STOP",
    "TRIGGERED",
    "BookSnapshot",
    "Cancel",
    "HotPathGC",
    "OrderBook",
    "RebuildError",
    "Reject",
    "RestingOrder",
    "UnitError",
    "Units",
    "decode",
    "encode",
    "to_dict",
    "view",
]
