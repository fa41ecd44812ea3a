"""The outside-venue interface: pure Python, no Django (the simulated venue runs in plain
subprocesses in the tests).

Two parts of the platform trade outside: smart routing and the aggregated book read a venue's
order book and send *IOC limit* orders; settlement step 3 sends *market* orders, by base
amount or (a buy) by quote amount. Every order carries a client order id its caller derives
from its own records, and that id is the only safe way to resolve an unknown outcome: after a
``VenueTimeout`` the order may or may not exist, so the caller looks it up with
``fetch_order`` and never sends it blindly again. Most venues do not deduplicate the client ids
of market orders that already filled, so a blind resend can execute twice.

Symbols are the platform's (``BTC-USDT``; ccxt's ``BTC/USDT`` is accepted too, and answers
always carry the platform's form); amounts and prices are Decimals exactly as the venue
reported them (the ledger quantizes to each asset's scale).

Errors say whether retrying is safe (``transient``) and carry a stable ``code`` for the
callers' state tables:

=============================  =========  ============================================
error                          transient  meaning
=============================  =========  ============================================
``VenueTimeout``               yes        no answer: the order MAY exist, look it up
``VenueRateLimited``           yes        refused before execution; wait ``retry_after``
``VenueUnavailable``           yes        refused/unreachable before execution (5xx on a
                                          read, maintenance, connection never opened)
``VenueRejected``              no         the venue refused the order; nothing executed
``VenueInsufficientBalance``   no         the account at the venue lacks the asset
=============================  =========  ============================================
"""

from __future__ import annotations

import abc
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

BUY = "buy"
SELL = "sell"
SIDES = (BUY, SELL)

# ``open`` and ``partially_filled`` are still working; the rest are final. ``cancelled`` may
# carry a partial ``filled``: an IOC whose rest expired, a market order the venue expired.
OPEN = "open"
PARTIALLY_FILLED = "partially_filled"
FILLED = "filled"
CANCELLED = "cancelled"
REJECTED = "rejected"
STATUSES = (FILLED, OPEN, PARTIALLY_FILLED, REJECTED, CANCELLED)
FINAL_STATUSES = (FILLED, REJECTED, CANCELLED)

# Binance's rule for client order ids (^[.A-Z:/a-z0-9_-]{1,36}$) minus the punctuation other
# venues refuse: ids that pass this work on the common exchanges.
CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,12}[-/][A-Z0-9]{2,12}$")


def platform_symbol(symbol: str) -> str:
    """``BTC/USDT`` (ccxt) or ``BTC-USDT`` -> ``BTC-USDT``."""
    return symbol.replace("/", "-")


def ccxt_symbol(symbol: str) -> str:
    return symbol.replace("-", "/")


def symbol_assets(symbol: str) -> tuple[str, str]:
    """``BTC-USDT`` -> ``("BTC", "USDT")``."""
    base, _, quote = platform_symbol(symbol).partition("-")
    return base, quote


@dataclass(frozen=True)
class Book:
    """Levels best first: ``[(price, quantity), ...]``."""

    bids: list
    asks: list


@dataclass(frozen=True)
class Execution:
    """An order as the venue reports it.

    ``amount`` is the base quantity asked for (``None`` for a buy that spent a quote amount),
    ``filled`` the base quantity executed, ``cost`` the quote amount exchanged and ``average``
    the average price (``None`` when nothing filled). ``fee`` is charged in ``fee_asset``;
    taker fees are usually taken from the asset received (base on a buy, quote on a sell).
    ``fee`` is ``None`` (and ``fee_asset`` empty) when the reply carried no fee information,
    e.g. Binance's order query: the fee is then *unknown*, not zero.
    """

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: str
    status: str
    amount: Decimal | None
    filled: Decimal
    cost: Decimal
    average: Decimal | None
    fee: Decimal | None
    fee_asset: str
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, not {self.side!r}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        for name in ("filled", "cost"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"{name} must be a Decimal")
        for name in ("amount", "average", "fee"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Decimal):
                raise TypeError(f"{name} must be a Decimal or None")
        object.__setattr__(self, "symbol", platform_symbol(self.symbol))

    @property
    def base_asset(self) -> str:
        return symbol_assets(self.symbol)[0]

    @property
    def quote_asset(self) -> str:
        return symbol_assets(self.symbol)[1]

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (Decimals as strings)."""
        return {
            "client_order_id": self.client_order_id,
            "venue_order_id": self.venue_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "status": self.status,
            "amount": _str_or_none(self.amount),
            "filled": str(self.filled),
            "cost": str(self.cost),
            "average": _str_or_none(self.average),
            "fee": _str_or_none(self.fee),
            "fee_asset": self.fee_asset,
            "raw": self.raw,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Execution:
        # Orders recorded before the two venue stacks became one: a routing venue stored its
        # base quantity as "quantity" and a final partial IOC as "partially_filled".
        amount = data["amount"] if "amount" in data else data.get("quantity")
        status = data["status"]
        if "quantity" in data and status == PARTIALLY_FILLED:
            status = CANCELLED
        return cls(
            client_order_id=data["client_order_id"],
            venue_order_id=data["venue_order_id"],
            symbol=data["symbol"],
            side=data["side"],
            status=status,
            amount=_decimal_or_none(amount),
            filled=Decimal(data["filled"]),
            cost=Decimal(data["cost"]),
            average=_decimal_or_none(data.get("average")),
            # A fee without its asset is an unknown fee (older records wrote it as "0").
            fee=_decimal_or_none(data.get("fee")) if data.get("fee_asset") else None,
            fee_asset=data.get("fee_asset", ""),
            raw=data.get("raw") or {},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Execution:
        return cls.from_dict(json.loads(text))


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal_or_none(value) -> Decimal | None:
    return None if value is None else Decimal(value)


# --- errors ----------------------------------------------------------------------------------


class VenueError(Exception):
    """A venue call failed. ``code`` is stable snake_case for the state tables; ``transient``
    says whether the same call may simply be retried later (after a lookup, for a timeout)."""

    code = "venue_error"
    transient = False

    def __init__(self, message: str = "", *, venue: str | None = None, client_order_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.venue = venue
        self.client_order_id = client_order_id

    def __reduce__(self):  # keyword-only attributes survive pickling (Celery results, subprocesses)
        return (_rebuild_error, (type(self), self.message, dict(self.__dict__)))

    def __str__(self) -> str:
        return self.message or self.code


def _rebuild_error(cls, message, state):
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class VenueTimeout(VenueError):
    """No answer in time. The outcome is UNKNOWN: the order may or may not exist. Resolve it
    with ``fetch_order(client_order_id=...)``; never resend blindly."""

    code = "venue_timeout"
    transient = True


class VenueUnavailable(VenueError):
    """The venue could not take the call (5xx, maintenance, connection refused before the
    request was sent); nothing was executed."""

    code = "venue_unavailable"
    transient = True


class VenueRateLimited(VenueUnavailable):
    """The venue refused the call for rate limiting; nothing was executed."""

    code = "venue_rate_limited"
    transient = True

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class VenueRejected(VenueError):
    """The venue refused the order (bad symbol or size, permissions, market closed...)."""

    code = "venue_rejected"
    transient = False


class VenueInsufficientBalance(VenueRejected):
    """The account at the venue lacks the asset the order spends."""

    code = "venue_insufficient_balance"
    transient = False


ERRORS_BY_CODE = {
    cls.code: cls for cls in (VenueTimeout, VenueRateLimited, VenueUnavailable, VenueRejected, VenueInsufficientBalance)
}


# --- the interface ---------------------------------------------------------------------------


class Venue(abc.ABC):
    """A trading venue.

    ``taker_fee`` is the account's taker rate (a fraction of what is received). ``timeout_s``
    bounds every call. ``unknown_outcome_grace_s`` is how long after a placement attempt a
    ``fetch_order`` answering ``None`` proves the order will never execute (the request can no
    longer be in flight: venues refuse a request older than their receive window): before
    that, a ``None`` after a ``VenueTimeout`` only means "not seen yet". ``max_in_flight``: how
    many calls the adapter serves at once in one process (``None``: as many as it is given);
    settlement step 3 claims no more than it can send. ``round_trip_ms``: what a call is
    known to take, where the adapter knows it (``None``: unknown until measured).
    """

    name: str = "venue"
    taker_fee: Decimal = Decimal(0)
    timeout_s: float = 10.0
    unknown_outcome_grace_s: float = 0.0
    max_in_flight: int | None = None
    round_trip_ms: float | None = None

    @abc.abstractmethod
    def order_book(self, symbol: str, depth: int = 10) -> Book:
        """The venue's book, ``depth`` levels a side. Raises a ``VenueError``."""

    @abc.abstractmethod
    def ioc_order(
        self, *, client_order_id: str, symbol: str, side: str, amount: Decimal, limit_price: Decimal
    ) -> Execution:
        """An immediate-or-cancel limit order for ``amount`` (base) at ``limit_price`` or
        better; the answer is final (``filled``, or ``cancelled`` with what filled, or
        ``rejected``). Raises a ``VenueError``; after ``VenueTimeout`` the outcome is unknown."""

    @abc.abstractmethod
    def market_order(
        self,
        *,
        client_order_id: str,
        symbol: str,
        side: str,
        amount: Decimal | None = None,
        quote_amount: Decimal | None = None,
    ) -> Execution:
        """A market order. Exactly one of ``amount`` (base quantity, buy or sell) and
        ``quote_amount`` (quote to spend, buy only) is given. Raises a ``VenueError``."""

    @abc.abstractmethod
    def fetch_order(self, *, client_order_id: str, symbol: str) -> Execution | None:
        """The order placed with ``client_order_id`` (the first one, if it was placed more
        than once), or ``None`` if the venue has never seen that id. Raises a ``VenueError``
        when the venue cannot answer."""

    @abc.abstractmethod
    def balances(self) -> dict[str, Decimal]:
        """What the account at the venue has free to trade, per asset. Raises a
        ``VenueError``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# --- the arguments' contract -----------------------------------------------------------------


def validate_market_order(
    *, client_order_id: str, symbol: str, side: str, amount: Decimal | None, quote_amount: Decimal | None
) -> None:
    """Checked the same way by every venue. A violation is a bug in the caller, so it is a
    ``ValueError``/``TypeError``, never a ``VenueError``."""
    validate_lookup(client_order_id=client_order_id, symbol=symbol)
    _validate_side(side)
    if (amount is None) == (quote_amount is None):
        raise ValueError("give exactly one of amount (base) and quote_amount (quote)")
    if quote_amount is not None and side != BUY:
        raise ValueError("a quote_amount is only for a buy: a sell gives a base amount")
    _validate_positive("the amount", amount if amount is not None else quote_amount)


def validate_ioc_order(*, client_order_id: str, symbol: str, side: str, amount: Decimal, limit_price: Decimal) -> None:
    validate_lookup(client_order_id=client_order_id, symbol=symbol)
    _validate_side(side)
    _validate_positive("the amount", amount)
    _validate_positive("the limit price", limit_price)


def validate_lookup(*, client_order_id: str, symbol: str) -> None:
    if not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_RE.match(client_order_id):
        raise ValueError(f"client_order_id must match {CLIENT_ORDER_ID_RE.pattern}, not {client_order_id!r}")
    validate_symbol(symbol)


def validate_symbol(symbol: str) -> None:
    if not isinstance(symbol, str) or not SYMBOL_RE.match(symbol):
        raise ValueError(f"symbol must look like 'BTC-USDT', not {symbol!r}")


def _validate_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")


def _validate_positive(what: str, value) -> None:
    if not isinstance(value, Decimal) or isinstance(value, bool):
        raise TypeError("amounts and prices are Decimals")
    try:
        positive = value.is_finite() and value > 0
    except InvalidOperation:
        positive = False
    if not positive:
        raise ValueError(f"{what} must be a positive finite Decimal, not {value}")
