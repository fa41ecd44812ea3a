"""A real exchange through ccxt (imported on first use), on the spot venue interface.

IOC limit orders carry our client order id (Binance: ``newClientOrderId``, elsewhere ccxt's
unified ``clientOrderId``) and are looked up by it. Every call has ccxt's ``timeout``.

Errors: a placement is only called "not executed" when the exchange explicitly refused it
(rate limit, maintenance, a request outside the receive window, any ``ExchangeError`` such
as insufficient balance or a bad order) -> ``VenueUnavailable``/``VenueRejected``. Any other
failure of a placement (read timeout, connection reset, 5xx, an unreadable reply) is
``VenueTimeout``: Binance documents that the status of an order answered with a 5xx is
UNKNOWN, so the router looks it up instead of resending. On a lookup, ``OrderNotFound`` is
``None``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Any

from .base import (
    BUY,
    CANCELLED,
    FILLED,
    PARTIALLY_FILLED,
    REJECTED,
    SELL,
    Book,
    Execution,
    SpotVenue,
    VenueError,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)

CLIENT_ID_PARAMS = {"binance": "newClientOrderId", "binanceus": "newClientOrderId"}
QUANTUM = Decimal("0.00000001")


def ccxt_symbol(symbol: str) -> str:
    return symbol.replace("-", "/")


def _dec(value) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


class CcxtSpotVenue(SpotVenue):
    def __init__(self, name: str, config: Mapping | None = None, *, exchange: Any = None):
        """``config``: ``exchange`` (a ccxt id), ``api_key``, ``secret``, ``fee`` (the taker rate
        of the account), ``timeout_ms``, ``sandbox``, ``options`` (to the ccxt constructor).
        ``exchange`` injects a ready ccxt object (the tests replace its HTTP layer)."""
        config = dict(config or {})
        self.name = name
        self.exchange_id = config.get("exchange", "binance")
        self.fees = Decimal(str(config.get("fee", "0.001")))
        timeout_ms = int(config.get("timeout_ms", 5000))
        if exchange is None:
            import ccxt

            klass = getattr(ccxt, self.exchange_id, None)
            if klass is None:
                raise ValueError(f"ccxt has no exchange {self.exchange_id!r}")
            exchange = klass({"enableRateLimit": True, "apiKey": config.get("api_key", ""),
                              "secret": config.get("secret", ""), **dict(config.get("options") or {})})
            if config.get("sandbox"):
                exchange.set_sandbox_mode(True)
        exchange.timeout = timeout_ms
        self.exchange = exchange
        self.timeout_seconds = timeout_ms / 1000
        recv_window = (getattr(exchange, "options", None) or {}).get("recvWindow") or 10_000
        self.grace_seconds = recv_window / 1000 + self.timeout_seconds
        self.client_id_param = CLIENT_ID_PARAMS.get(self.exchange_id, "clientOrderId")
        # a ccxt exchange object is not made for concurrent use: threads take turns
        self._lock = threading.RLock()

    def order_book(self, symbol: str, depth: int = 10) -> Book:
        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            try:
                self._markets()
                book = self.exchange.fetch_order_book(ccxt_symbol(symbol), depth)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a VenueError
                raise _error(exc, write=False) from exc
        return Book(bids=[(_dec(p), _dec(q)) for p, q, *_ in book["bids"][:depth]],
                    asks=[(_dec(p), _dec(q)) for p, q, *_ in book["asks"][:depth]])

    def place_ioc(self, symbol, side, quantity, limit_price, client_order_id) -> Execution:
        if side not in (BUY, SELL):
            raise VenueRejected(f"bad side {side!r}")
        params = {self.client_id_param: client_order_id, "timeInForce": "IOC"}
        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            try:
                self._markets()  # a read: nothing is placed if it fails
            except Exception as exc:  # noqa: BLE001
                raise _error(exc, write=False) from exc
            try:
                response = self.exchange.create_order(ccxt_symbol(symbol), "limit", side, float(quantity),
                                                      float(limit_price), params)
            except Exception as exc:  # noqa: BLE001
                raise _error(exc, write=True) from exc
        try:
            return execution_from_ccxt(response, symbol=symbol, client_order_id=client_order_id, quantity=quantity)
        except Exception as exc:  # noqa: BLE001 - it answered without an error: it may have executed
            raise VenueTimeout(f"unreadable reply to a placement ({exc}); look the order up") from exc

    def fetch_order(self, client_order_id, symbol=None) -> Execution | None:
        import ccxt

        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            try:
                self._markets()
                response = self.exchange.fetch_order_with_client_order_id(client_order_id, ccxt_symbol(symbol))
            except ccxt.OrderNotFound:
                return None
            except Exception as exc:  # noqa: BLE001
                raise _error(exc, write=False) from exc
        if not response:
            return None
        try:
            return execution_from_ccxt(response, symbol=symbol, client_order_id=client_order_id)
        except Exception as exc:  # noqa: BLE001
            raise VenueUnavailable(f"unreadable reply to a lookup ({exc})") from exc

    def _markets(self) -> None:
        if not self.exchange.markets:
            self.exchange.load_markets()


def execution_from_ccxt(order: dict, *, symbol: str, client_order_id: str, quantity: Decimal | None = None) -> Execution:
    """A ccxt unified order -> ``Execution``. An IOC order is final when the exchange answers;
    one still ``open`` is not an answer we can settle on."""
    filled = _dec(order.get("filled")).quantize(QUANTUM)
    cost = order.get("cost")
    if cost is None and order.get("average") is not None:
        cost = _dec(order["average"]) * filled
    cost = _dec(cost).quantize(QUANTUM)
    status = order.get("status")
    amount = _dec(order["amount"]).quantize(QUANTUM) if order.get("amount") is not None else quantity
    if status == "closed":
        result = FILLED if amount is None or filled >= amount else PARTIALLY_FILLED
    elif status in ("canceled", "cancelled", "expired"):
        result = PARTIALLY_FILLED if filled else CANCELLED
    elif status == "rejected":
        result = REJECTED
    else:
        raise ValueError(f"order status {status!r} is not final")
    fees = [f for f in (order.get("fees") or ([order["fee"]] if order.get("fee") else [])) if f and f.get("cost") is not None]
    fee, fee_asset = None, ""
    if fees:
        fee = sum((_dec(f["cost"]) for f in fees), Decimal(0))
        fee_asset = fees[0].get("currency") or ""
    return Execution(
        client_order_id=order.get("clientOrderId") or client_order_id, venue_order_id=str(order.get("id") or ""),
        symbol=symbol, side=order.get("side") or "", status=result, quantity=amount if amount is not None else filled,
        filled=filled, cost=cost, fee=fee, fee_asset=fee_asset, raw=order.get("info") or {},
    )


def _error(exc: BaseException, *, write: bool) -> VenueError:
    import ccxt

    message = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.OnMaintenance, ccxt.InvalidNonce)):
        return VenueUnavailable(message)
    if isinstance(exc, ccxt.NetworkError):
        if write or isinstance(exc, ccxt.RequestTimeout):
            return VenueTimeout(message)
        return VenueUnavailable(message)
    if isinstance(exc, ccxt.ExchangeError):
        return VenueRejected(message) if write else VenueUnavailable(message)
    return VenueTimeout(message) if write else VenueUnavailable(message)
