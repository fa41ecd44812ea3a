"""A real exchange through ccxt's synchronous API (ccxt is imported on first use).

Orders carry our client order id (Binance: ``newClientOrderId``; other exchanges: ccxt's
unified ``clientOrderId``) and are looked up by it (Binance: ``origClientOrderId``). An IOC
limit order sends ``timeInForce: IOC``; a market buy that spends a quote amount goes through
``create_market_buy_order_with_cost`` (Binance: ``quoteOrderQty``). Every call has ccxt's
``timeout``, and runs in a decimal context of its own: ccxt changes the calling thread's
decimal rounding and traps.

How ccxt's errors map — the rule is that a placement is only called "not executed" when we
know the request never reached the matching engine:

* ``RateLimitExceeded``/``DDoSProtection`` -> ``VenueRateLimited`` (an answer: refused);
  ``retry_after`` from the ``Retry-After`` header when the exchange sent one.
* ``OnMaintenance`` and ``InvalidNonce`` (timestamp outside the receive window) ->
  ``VenueUnavailable``: explicit refusals.
* Any other ``OperationFailed`` (``RequestTimeout``, ``NetworkError``, ``ExchangeNotAvailable``
  i.e. 5xx, ``BadResponse``): on a **placement** -> ``VenueTimeout`` (outcome unknown), because
  the request may have been sent and executed — Binance documents that on a 5XX "the
  execution status is UNKNOWN and could have been a success", and a connection reset or a
  read timeout after the request went out says nothing either. The exception is a failure to
  *open the connection* (refused, DNS, connect timeout: seen in the exception's cause chain),
  which proves nothing was sent -> ``VenueUnavailable``. Calling an unknown outcome
  "unavailable" would invite a blind resend and a double execution; calling a refused
  connection "unknown" only costs one lookup, so the doubt always goes to ``VenueTimeout``.
  On a **read** (a lookup, the book, balances) a ``RequestTimeout`` is ``VenueTimeout`` and
  the other network errors are ``VenueUnavailable``.
* ``InsufficientFunds`` -> ``VenueInsufficientBalance``; every other ``ExchangeError``
  (``InvalidOrder``, ``BadRequest``/``BadSymbol``, ``AuthenticationError``/
  ``PermissionDenied``, ``MarketClosed``, ``NotSupported``...) -> ``VenueRejected``.
* ``OrderNotFound`` on a lookup -> ``None``.
* A placement whose reply we fail to read (anything that is not a ccxt error, e.g. an
  unexpected payload), or an IOC answered as still working -> ``VenueTimeout``: the venue may
  well have executed it, and a lookup tells.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from .base import (
    BUY,
    CANCELLED,
    FILLED,
    OPEN,
    PARTIALLY_FILLED,
    REJECTED,
    SELL,
    Book,
    Execution,
    Venue,
    VenueError,
    VenueInsufficientBalance,
    VenueRateLimited,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
    ccxt_symbol,
    platform_symbol,
    validate_ioc_order,
    validate_lookup,
    validate_market_order,
    validate_symbol,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_TAKER_FEE = Decimal("0.001")
# The request parameter that carries our id, where ccxt's unified ``clientOrderId`` is not
# what the exchange's own API calls it.
CLIENT_ID_PARAMS = {"binance": "newClientOrderId", "binanceus": "newClientOrderId"}
DEFAULT_GRACE_S = 60.0
MAX_MESSAGE = 300


class CcxtVenue(Venue):
    def __init__(
        self,
        exchange_id: str,
        api_key: str = "",
        secret: str = "",
        *,
        password: str | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        sandbox: bool = False,
        exchange: Any = None,
        exchange_options: Mapping[str, Any] | None = None,
        client_id_param: str | None = None,
        name: str | None = None,
        taker_fee: Decimal | str = DEFAULT_TAKER_FEE,
    ):
        """``exchange_id`` is a ccxt id ("binance", "okx", ...). ``exchange`` injects a ready
        ccxt exchange (the tests replace its ``fetch`` with recorded responses);
        ``exchange_options`` go to the ccxt constructor (e.g. ``{"options": {...}}``);
        ``taker_fee`` is the account's taker rate, which routing compares venues by."""
        if not timeout_ms or timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        self.exchange_id = exchange_id
        self.name = name or f"ccxt:{exchange_id}"
        self.taker_fee = Decimal(str(taker_fee))
        if exchange is None:
            import ccxt

            klass = getattr(ccxt, exchange_id, None)
            if klass is None or exchange_id not in ccxt.exchanges:
                raise ValueError(f"ccxt has no exchange {exchange_id!r}")
            config: dict[str, Any] = {"enableRateLimit": True, **dict(exchange_options or {})}
            if api_key:
                config["apiKey"] = api_key
            if secret:
                config["secret"] = secret
            if password:
                config["password"] = password
            exchange = klass(config)
            if sandbox:
                exchange.set_sandbox_mode(True)
        exchange.timeout = int(timeout_ms)
        self.exchange = exchange
        # A ccxt exchange object (its session, rate limiter, last-response fields) is not made
        # for concurrent use: threads of one process take turns.
        self._lock = threading.RLock()
        self.max_in_flight = 1  # so settlement step 3 claims one order at a time per executor thread
        self.timeout_s = timeout_ms / 1000
        self.client_id_param = client_id_param or CLIENT_ID_PARAMS.get(exchange_id, "clientOrderId")
        # Binance refuses a request that reaches it later than timestamp + recvWindow, so once
        # that window (and our timeout) has passed, a lookup that finds nothing is final.
        recv_window_ms = (getattr(exchange, "options", None) or {}).get("recvWindow")
        if isinstance(recv_window_ms, (int, float)) and recv_window_ms > 0:
            self.unknown_outcome_grace_s = recv_window_ms / 1000 + self.timeout_s
        else:
            self.unknown_outcome_grace_s = DEFAULT_GRACE_S + self.timeout_s

    # -- the interface --

    def order_book(self, symbol: str, depth: int = 10) -> Book:
        validate_symbol(symbol)
        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            self._load_markets(None)
            try:
                book = self.exchange.fetch_order_book(ccxt_symbol(symbol), depth)
            except Exception as exc:
                raise self._error(exc, write=False, client_order_id=None) from exc
        try:
            return Book(
                bids=[(_number(p), _number(q)) for p, q, *_ in book["bids"][:depth]],
                asks=[(_number(p), _number(q)) for p, q, *_ in book["asks"][:depth]],
            )
        except Exception as exc:
            raise VenueUnavailable(f"unreadable order book ({type(exc).__name__}: {exc})", venue=self.name) from exc

    def ioc_order(self, *, client_order_id, symbol, side, amount, limit_price) -> Execution:
        validate_ioc_order(
            client_order_id=client_order_id, symbol=symbol, side=side, amount=amount, limit_price=limit_price
        )
        params = {self.client_id_param: client_order_id, "timeInForce": "IOC"}
        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            self._load_markets(client_order_id)  # a read: nothing is placed if it fails
            try:
                response = self.exchange.create_order(
                    ccxt_symbol(symbol), "limit", side, float(amount), float(limit_price), params
                )
            except Exception as exc:
                raise self._error(exc, write=True, client_order_id=client_order_id) from exc
        order = self._placed(response, client_order_id=client_order_id, symbol=symbol, side=side)
        if not order.is_final:
            raise VenueTimeout(
                f"the venue answered the IOC order as {order.status}, not final; look the order up",
                venue=self.name,
                client_order_id=client_order_id,
            )
        return order

    def market_order(self, *, client_order_id, symbol, side, amount=None, quote_amount=None) -> Execution:
        validate_market_order(
            client_order_id=client_order_id, symbol=symbol, side=side, amount=amount, quote_amount=quote_amount
        )
        params = {self.client_id_param: client_order_id}
        market = ccxt_symbol(symbol)
        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            self._load_markets(client_order_id)  # a read: nothing is placed if it fails
            try:
                if quote_amount is not None:
                    response = self.exchange.create_market_buy_order_with_cost(market, float(quote_amount), params)
                else:
                    response = self.exchange.create_order(market, "market", side, float(amount), None, params)
            except Exception as exc:
                raise self._error(exc, write=True, client_order_id=client_order_id) from exc
        return self._placed(response, client_order_id=client_order_id, symbol=symbol, side=side)

    def fetch_order(self, *, client_order_id, symbol) -> Execution | None:
        validate_lookup(client_order_id=client_order_id, symbol=symbol)
        import ccxt

        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            self._load_markets(client_order_id)
            try:
                response = self.exchange.fetch_order_with_client_order_id(client_order_id, ccxt_symbol(symbol))
            except ccxt.OrderNotFound:
                return None
            except Exception as exc:
                raise self._error(exc, write=False, client_order_id=client_order_id) from exc
        if not response:
            return None
        try:
            return execution_from_ccxt(response, client_order_id=client_order_id, symbol=symbol, side=None)
        except Exception as exc:
            raise VenueUnavailable(
                f"unreadable reply to a lookup ({type(exc).__name__}: {exc})",
                venue=self.name,
                client_order_id=client_order_id,
            ) from exc

    def balances(self) -> dict[str, Decimal]:
        with self._lock, localcontext():  # ccxt changes the thread's decimal context
            self._load_markets(None)
            try:
                response = self.exchange.fetch_balance()
            except Exception as exc:
                raise self._error(exc, write=False, client_order_id=None) from exc
        free = (response or {}).get("free") or {}
        return {
            asset: amount for asset, amount in sorted((a, _decimal(v)) for a, v in free.items()) if amount is not None
        }

    # -- internals --

    def _placed(self, response, *, client_order_id: str, symbol: str, side: str) -> Execution:
        try:
            return execution_from_ccxt(response, client_order_id=client_order_id, symbol=symbol, side=side)
        except Exception as exc:
            # The exchange answered without an error: it may well have executed the order.
            raise VenueTimeout(
                f"unreadable reply to a placement ({type(exc).__name__}: {exc}); look the order up",
                venue=self.name,
                client_order_id=client_order_id,
            ) from exc

    def _load_markets(self, client_order_id: str | None) -> None:
        if self.exchange.markets:
            return
        try:
            self.exchange.load_markets()
        except Exception as exc:
            raise self._error(exc, write=False, client_order_id=client_order_id) from exc

    def _error(self, exc: BaseException, *, write: bool, client_order_id: str | None) -> VenueError:
        return map_ccxt_error(
            exc, write=write, venue=self.name, client_order_id=client_order_id, retry_after=_retry_after(self.exchange)
        )


# --- mapping ---------------------------------------------------------------------------------


def map_ccxt_error(
    exc: BaseException,
    *,
    write: bool,
    venue: str | None = None,
    client_order_id: str | None = None,
    retry_after: float | None = None,
) -> VenueError:
    """The ``VenueError`` for a ccxt exception (see the module docstring for the rules)."""
    import ccxt

    if isinstance(exc, VenueError):
        return exc
    message = f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]
    context = {"venue": venue, "client_order_id": client_order_id}
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return VenueRateLimited(message, retry_after=retry_after, **context)
    if isinstance(exc, (ccxt.OnMaintenance, ccxt.InvalidNonce)):
        return VenueUnavailable(message, **context)
    if isinstance(exc, ccxt.OperationFailed):
        if never_sent(exc):
            return VenueUnavailable(message, **context)
        if write or isinstance(exc, ccxt.RequestTimeout):
            return VenueTimeout(message, **context)
        return VenueUnavailable(message, **context)
    if isinstance(exc, ccxt.InsufficientFunds):
        return VenueInsufficientBalance(message, **context)
    if isinstance(exc, ccxt.ExchangeError):
        return VenueRejected(message, **context)
    # Not a ccxt error at all (a bug, an unexpected library error): on a placement nobody
    # knows whether the request went out.
    if write:
        return VenueTimeout(message, **context)
    return VenueUnavailable(message, **context)


def never_sent(exc: BaseException) -> bool:
    """True when the cause chain shows the connection was never opened (refused, DNS
    failure, connect timeout): the request cannot have reached the exchange."""
    try:
        import requests
        from urllib3 import exceptions as u3
    except ImportError:  # pragma: no cover - both come with ccxt
        return False
    connect_failures = (u3.NewConnectionError, u3.ConnectTimeoutError, u3.NameResolutionError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (requests.exceptions.ConnectTimeout, *connect_failures)):
            return True
        if isinstance(current, u3.MaxRetryError) and isinstance(current.reason, connect_failures):
            return True
        if isinstance(current, requests.exceptions.ConnectionError):
            for arg in current.args:
                reason = getattr(arg, "reason", arg)
                if isinstance(reason, connect_failures):
                    return True
        current = current.__cause__ or current.__context__
    return False


def _retry_after(exchange: Any) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    try:
        items = headers.items()
    except AttributeError:
        return None
    for key, value in items:
        if str(key).lower() == "retry-after":
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None
            return seconds if seconds >= 0 else None
    return None


def execution_from_ccxt(order: Mapping[str, Any], *, client_order_id: str, symbol: str, side: str | None) -> Execution:
    """An ``Execution`` from ccxt's unified order structure."""
    venue_order_id = order.get("id")
    if venue_order_id in (None, ""):
        raise ValueError("the reply has no order id")
    reported_id = order.get("clientOrderId")
    if reported_id and reported_id != client_order_id:
        # The lookup-by-id recovery depends on this: make a mismatch loud.
        logger.error(
            "venue reported client order id %r for our %r (order %s)", reported_id, client_order_id, venue_order_id
        )
    order_side = order.get("side") or side
    if order_side not in (BUY, SELL):
        raise ValueError(f"the reply has no usable side: {order_side!r}")
    order_symbol = platform_symbol(order.get("symbol") or symbol)
    filled = _decimal(order.get("filled")) or Decimal(0)
    cost = _decimal(order.get("cost"))
    average = _decimal(order.get("average"))
    if average is not None and average == 0:
        average = None
    if cost is None:
        cost = average * filled if average is not None else Decimal(0)
    amount = _decimal(order.get("amount"))
    if amount is not None and amount == 0:
        amount = None  # a buy by quote amount: no base quantity was asked for
    fee, fee_asset = _fee(order, order_side, order_symbol)
    return Execution(
        client_order_id=reported_id or client_order_id,
        venue_order_id=str(venue_order_id),
        symbol=order_symbol,
        side=order_side,
        status=_status(order.get("status"), filled, amount),
        amount=amount,
        filled=filled,
        cost=cost,
        average=average,
        fee=fee,
        fee_asset=fee_asset,
        raw={
            "status": order.get("status"),
            "type": order.get("type"),
            "timestamp": order.get("timestamp"),
            "fees": _json_safe(order.get("fees") or []),
            "info": _json_safe(order.get("info") or {}),
        },
    )


def _status(status: str | None, filled: Decimal, amount: Decimal | None) -> str:
    if status == "closed":
        return FILLED
    if status in ("canceled", "cancelled", "expired"):
        return CANCELLED  # final; ``filled`` tells whether part of it executed
    if status == "rejected":
        return REJECTED
    if status != "open" and amount is not None and filled >= amount > 0:
        return FILLED
    return PARTIALLY_FILLED if filled > 0 else OPEN


def _fee(order: Mapping[str, Any], side: str, symbol: str) -> tuple[Decimal | None, str]:
    """The fee, summed per currency; when the venue charged several currencies, the one in
    the asset received (base on a buy, quote on a sell) — the rest stays in ``raw``. No fee
    in the reply: unknown (``None``), not zero."""
    entries = list(order.get("fees") or [])
    if not entries and order.get("fee"):
        entries = [order["fee"]]
    totals: dict[str, Decimal] = {}
    for entry in entries:
        if not entry:
            continue
        currency = entry.get("currency")
        cost = _decimal(entry.get("cost"))
        if currency is None or cost is None:
            continue
        totals[currency] = totals.get(currency, Decimal(0)) + cost
    if not totals:
        return None, ""
    base, _, quote = symbol.partition("-")
    received = base if side == BUY else quote
    currency = received if received in totals else next(iter(totals))
    return totals[currency], currency


def _decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _number(value) -> Decimal:
    number = _decimal(value)
    if number is None:
        raise ValueError(f"not a number: {value!r}")
    return number


def _json_safe(value):
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
