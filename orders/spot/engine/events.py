"""What the engine emits: one flat tuple per fact, ``(kind, seq, field, ...)``.

``kind`` is one of the constants below and ``seq`` the symbol's sequence number (+1 per
event, never reused: the runner persists the last one and passes it back on rebuild). The
other fields follow in the order ``FIELDS[kind]`` lists (after "seq"). Every field is an
int, a str, a bool or None, so ``encode()`` is deterministic: replaying the same command log
gives the same bytes.

Why tuples and not objects: building a tuple costs a quarter of a slotted object's
``__init__``, and a command emits two to several events, which made them the largest cost
of the hot path (bench/engine.py). Tuples of atoms are also untracked by the cyclic GC after
their first collection. Unpack them positionally (the layouts are part of the contract)::

    for event in book.drain():
        if event[0] == TRADE:
            _, seq, price, qty, maker_id, taker_id, maker_owner, taker_owner, aggressor, \
                maker_remaining, taker_remaining = event

or use ``view(event)`` (a namedtuple with field names) where speed does not matter.

Prices are in ticks and quantities in lots (see ``units.py``).
"""

import json
from collections import namedtuple

__all__ = [
    "ACCEPTED",
    "AMENDED",
    "BOOK",
    "CANCELLED",
    "FIELDS",
    "REFRESHED",
    "REJECTED",
    "TRADE",
    "TRIGGERED",
    "VIEWS",
    "decode",
    "encode",
    "to_dict",
    "view",
]

ACCEPTED = "accepted"
REJECTED = "rejected"
TRADE = "trade"
CANCELLED = "cancelled"
TRIGGERED = "triggered"
AMENDED = "amended"
REFRESHED = "refreshed"
BOOK = "book"

FIELDS = {
    # The order passed validation and entered the engine. price: None for market, stop-market
    # and trailing-stop orders; qty: None for a quote-amount market buy.
    ACCEPTED: ("seq", "order_id", "owner", "side", "order_type", "price", "qty"),
    # A command had no effect; command is "place", "cancel" or "amend" (a rejected amend or
    # cancel leaves the order as it was).
    REJECTED: ("seq", "order_id", "reason", "command"),
    # One fill. *_remaining: the orders' open quantities after it (an iceberg's include its
    # reserve); an order whose remaining reaches 0 is filled, nothing more is emitted for it.
    # taker_remaining is None for a quote-amount market buy.
    TRADE: (
        "seq",
        "price",
        "qty",
        "maker_order_id",
        "taker_order_id",
        "maker_owner",
        "taker_owner",
        "aggressor_side",
        "maker_remaining",
        "taker_remaining",
    ),
    # The order's remainder qty (with any iceberg reserve) left the engine; final.
    CANCELLED: ("seq", "order_id", "owner", "reason", "qty"),
    # A stop's condition was met by a trade at last_price; it now executes as a market
    # (stop-market, trailing stop) or limit (stop-limit) order, with the time priority of
    # this event if it rests.
    TRIGGERED: ("seq", "order_id", "owner", "stop_price", "last_price"),
    # The order now has price and total quantity qty (filled + remaining); reserve is the
    # hidden part of an iceberg's remaining. priority_kept False: re-queued at this event
    # (and it may trade at once if the new price crosses).
    AMENDED: ("seq", "order_id", "owner", "price", "qty", "remaining", "reserve", "priority_kept"),
    # An iceberg's display was used up and refilled from its reserve: it shows visible, hides
    # reserve, and lost its time priority (re-queued at this event).
    REFRESHED: ("seq", "order_id", "owner", "visible", "reserve"),
    # The aggregate visible quantity at price on side is now qty (0: the level is gone).
    BOOK: ("seq", "side", "price", "qty"),
}

VIEWS = {kind: namedtuple(kind.title().replace("_", "") + "Event", fields) for kind, fields in FIELDS.items()}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def view(event):
    """The event as a namedtuple (``view(e).price``); for tests, logs and slow paths."""
    return VIEWS[event[0]]._make(event[1:])


def to_dict(event):
    data = {"type": event[0]}
    data.update(zip(FIELDS[event[0]], event[1:]))
    return data


def encode(event):
    """Compact JSON of ``to_dict(event)``, as bytes; identical for identical events."""
    return _dumps(to_dict(event)).encode()


def decode(data):
    """The event tuple back from ``encode()`` output or a ``to_dict()`` dict."""
    if not isinstance(data, dict):
        data = json.loads(data)
    kind = data["type"]
    return (kind, *(data[name] for name in FIELDS[kind]))
