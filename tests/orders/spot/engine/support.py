"""Helpers for the engine tests: readable events and small book set-ups."""

from orders.spot.engine import BOOK, BUY, LIMIT, SELL, TRADE, OrderBook, view


def new_book(**config):
    config.setdefault("market_band_ppm", None)
    return OrderBook("TEST", **config)


def events(book):
    """The events since the last call, as namedtuples (``e.price``, ``e.kind``)."""
    return [Ev(event) for event in book.drain()]


class Ev:
    """An event tuple with attribute access and its kind, compared by value."""

    __slots__ = ("fields", "kind", "raw")

    def __init__(self, raw):
        self.raw = raw
        self.kind = raw[0]
        self.fields = view(raw)

    def __getattr__(self, name):
        return getattr(self.fields, name)

    def __repr__(self):
        return f"{self.kind}{tuple(self.fields)}"


def of_kind(evs, kind):
    return [e for e in evs if e.kind == kind]


def trades(evs):
    """(maker, taker, price, qty) of each trade, in order."""
    return [(e.maker_order_id, e.taker_order_id, e.price, e.qty) for e in evs if e.kind == TRADE]


def deltas(evs):
    return [(e.side, e.price, e.qty) for e in evs if e.kind == BOOK]


def rest(book, order_id, side, price, qty, owner=None, **kw):
    """Place a resting GTC limit order and drop its events."""
    book.place(order_id, owner if owner is not None else order_id, side, LIMIT, qty, price, **kw)
    book.drain()


def ladder(book, asks=(), bids=(), start_id=1000):
    """Rest (price, qty) asks and bids, owners = ids; returns the ids in order."""
    ids = []
    order_id = start_id
    for side, levels in ((SELL, asks), (BUY, bids)):
        for price, qty in levels:
            rest(book, order_id, side, price, qty)
            ids.append(order_id)
            order_id += 1
    return ids
