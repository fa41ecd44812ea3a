"""The spot venue interface the smart order router and the aggregated book use: pure Python.

A venue shows an order book and executes *IOC limit* orders, each tagged with a client
order id the router derives from its own records. That id is how an unknown outcome is
resolved: after a ``VenueTimeout`` the order may or may not exist, so the caller looks it up
with ``fetch_order`` and never sends it blindly again.

Symbols are ours (``BTC-USDT``); quantities and prices are Decimals. Fees are taken from the
asset received, as on our own book.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from decimal import Decimal

BUY = "buy"
SELL = "sell"

# An IOC order is final once the venue answers: filled, partly filled then expired
# (``partially_filled``), nothing filled (``cancelled``), or refused (``rejected``).
FILLED = "filled"
PARTIALLY_FILLED = "partially_filled"
CANCELLED = "cancelled"
REJECTED = "rejected"
RESULT_STATUSES = (FILLED, PARTIALLY_FILLED, CANCELLED, REJECTED)


@dataclass(frozen=True)
class Book:
    """Levels best first: ``[(price, quantity), ...]``."""

    bids: list
    asks: list


@dataclass(frozen=True)
class Execution:
    """An IOC order as the venue reports it. ``cost`` is the quote amount exchanged; ``fee``
    is in ``fee_asset`` (``None`` when the venue's reply carried no fee: unknown, not zero)."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: str
    status: str
    quantity: Decimal
    filled: Decimal
    cost: Decimal
    fee: Decimal | None
    fee_asset: str
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if self.status not in RESULT_STATUSES:
            raise ValueError(f"status must be one of {RESULT_STATUSES}, not {self.status!r}")
        for name in ("quantity", "filled", "cost"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"{name} must be a Decimal")

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None

    def to_dict(self) -> dict:
        return {
            "client_order_id": self.client_order_id, "venue_order_id": self.venue_order_id, "symbol": self.symbol,
            "side": self.side, "status": self.status, "quantity": str(self.quantity), "filled": str(self.filled),
            "cost": str(self.cost), "fee": None if self.fee is None else str(self.fee), "fee_asset": self.fee_asset,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Execution:
        return cls(
            client_order_id=data["client_order_id"], venue_order_id=data["venue_order_id"], symbol=data["symbol"],
            side=data["side"], status=data["status"], quantity=Decimal(data["quantity"]), filled=Decimal(data["filled"]),
            cost=Decimal(data["cost"]), fee=None if data.get("fee") is None else Decimal(data["fee"]),
            fee_asset=data.get("fee_asset", ""),
        )


class VenueError(Exception):
    """A venue call failed; ``code`` is stable snake_case for ``VenueOrder.error``."""

    code = "venue_error"

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message or self.code


class VenueTimeout(VenueError):
    """No answer in time: the order MAY exist. Look it up by client order id."""

    code = "venue_timeout"


class VenueUnavailable(VenueError):
    """Refused or unreachable before execution: nothing was executed."""

    code = "venue_unavailable"


class VenueRejected(VenueError):
    """The venue refused the order; nothing executed."""

    code = "venue_rejected"


class SpotVenue(abc.ABC):
    """``fees`` is the taker rate (a fraction of what is received). ``grace_seconds`` is how
    long after a send a lookup that finds nothing proves the order will never exist (the
    venue refuses a request older than its receive window)."""

    name: str = "venue"
    fees: Decimal = Decimal(0)
    timeout_seconds: float = 5.0
    grace_seconds: float = 10.0

    @abc.abstractmethod
    def order_book(self, symbol: str, depth: int) -> Book:
        """The venue's book, ``depth`` levels a side. Raises ``VenueError``."""

    @abc.abstractmethod
    def place_ioc(self, symbol: str, side: str, quantity: Decimal, limit_price: Decimal, client_order_id: str) -> Execution:
        """Execute an IOC limit order. Raises ``VenueError``; after ``VenueTimeout`` the
        outcome is unknown."""

    @abc.abstractmethod
    def fetch_order(self, client_order_id: str, symbol: str | None = None) -> Execution | None:
        """The order placed with ``client_order_id``, or ``None`` if the venue never saw it."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
