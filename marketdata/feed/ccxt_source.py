"""A real exchange's public ticker (or top of book) through ccxt's synchronous API.

Only public endpoints: no keys. Every call has ccxt's ``timeout`` (milliseconds). Any
failure — timeout, network, rate limit, unknown symbol, an answer without a usable price —
makes ``fetch`` return ``None`` and is kept in ``last_error`` (a ``SourceError``), so the
index sees the source as missing and operators can see why. ``ccxt`` is imported on first
use only: it takes most of a second to import.

``Quote.ts`` is the ``now`` the fetch was made for, not the exchange's own timestamp: some
exchanges send none (Kraken's ticker) and exchange clocks drift, while the index needs ages
on one clock. A caller that keeps a quote after failures gets it marked stale by its age.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Any

from .sources import PRICE_QUANTUM, Quote, SourceError

logger = logging.getLogger(__name__)

DEFAULT_SYMBOLS = {"BTC": "BTC/USDT", "ETH": "ETH/USDT"}
DEFAULT_TIMEOUT_MS = 3_000
MAX_ERROR_CHARS = 300


class CcxtTickerSource:
    def __init__(
        self,
        exchange_id: str,
        symbol_map: Mapping[str, str] | None = None,
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        use_order_book: bool = False,
        order_book_depth: int = 5,
        name: str | None = None,
        exchange: Any = None,
        exchange_options: Mapping[str, Any] | None = None,
    ):
        """``exchange_id`` is a ccxt id ("binance", "okx", "kraken", …); ``symbol_map``
        maps underlyings to that exchange's USDT spot symbols. With ``use_order_book`` the
        price is the mid of the best bid and ask from ``fetch_order_book`` instead of the
        ticker. ``exchange`` injects a ready ccxt exchange object (tests replace its
        ``fetch`` with recorded responses); ``exchange_options`` go to the ccxt constructor."""
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        self.exchange_id = exchange_id
        self.name = name or f"ccxt-{exchange_id}"
        self.symbol_map = dict(symbol_map if symbol_map is not None else DEFAULT_SYMBOLS)
        self.timeout_ms = int(timeout_ms)
        self.use_order_book = use_order_book
        self.order_book_depth = order_book_depth
        if exchange is None:
            import ccxt

            klass = getattr(ccxt, exchange_id, None)
            if klass is None or exchange_id not in ccxt.exchanges:
                raise ValueError(f"ccxt has no exchange {exchange_id!r}")
            exchange = klass({"enableRateLimit": True, **dict(exchange_options or {})})
        exchange.timeout = self.timeout_ms
        self.exchange = exchange
        self.last_error: SourceError | None = None
        self.last_success_at: float | None = None
        self.consecutive_errors = 0

    def fetch(self, underlying: str, now: float) -> Quote | None:
        symbol = self.symbol_map.get(underlying)
        if symbol is None:
            return self._fail(now, "config", f"no symbol configured for {underlying}")
        try:
            with localcontext():  # ccxt sets the thread's decimal rounding and traps: keep them its own
                book_or_ticker = (
                    self.exchange.fetch_order_book(symbol, self.order_book_depth)
                    if self.use_order_book
                    else self.exchange.fetch_ticker(symbol)
                )
            if self.use_order_book:
                book = book_or_ticker
                bid = _best(book.get("bids"))
                ask = _best(book.get("asks"))
                last = None
            else:
                ticker = book_or_ticker
                bid, ask = _number(ticker.get("bid")), _number(ticker.get("ask"))
                last = _number(ticker.get("last")) or _number(ticker.get("close"))
            price = _mid(bid, ask) or last
            if price is None:
                return self._fail(now, "bad_data", f"{symbol}: the answer has no usable price")
            quote = Quote(self.name, underlying, price, bid, ask, now)
        except Exception as exc:
            return self._fail(now, _kind(exc), f"{symbol}: {type(exc).__name__}: {exc}")
        self.last_success_at = now
        self.consecutive_errors = 0
        return quote

    def _fail(self, now: float, kind: str, message: str) -> None:
        self.last_error = SourceError(kind, message[:MAX_ERROR_CHARS], now)
        self.consecutive_errors += 1
        logger.warning("price source %s: %s", self.name, self.last_error.message)
        return None

    def __repr__(self) -> str:
        return f"CcxtTickerSource({self.exchange_id!r}, name={self.name!r})"


def _number(value) -> Decimal | None:
    """A positive number from ccxt (float, int or str) as an exact Decimal, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() and number > 0 else None


def _best(levels) -> Decimal | None:
    if not levels:
        return None
    return _number(levels[0][0])


def _mid(bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    if bid is None or ask is None or bid > ask:
        return None  # a crossed book is not a price; fall back to the last trade
    return ((bid + ask) / 2).quantize(PRICE_QUANTUM)


def _kind(exc: Exception) -> str:
    try:
        import ccxt
    except ImportError:  # pragma: no cover - ccxt is a requirement
        return "bad_data"
    if isinstance(exc, ccxt.RequestTimeout):
        return "timeout"
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return "rate_limit"
    if isinstance(exc, ccxt.NetworkError):
        return "network"
    if isinstance(exc, ccxt.BadSymbol):
        return "bad_symbol"
    if isinstance(exc, ccxt.BaseError):
        return "exchange"
    return "bad_data"
