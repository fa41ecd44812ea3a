"""The order book of one symbol and its matching: price-time priority, integer ticks and lots.

Layout (chosen for CPython speed; ``bench/engine.py`` measures it):

* per side, ``keys``: a sorted list of level keys whose *last* element is the best level
  (bids: key = price; asks: key = -price), so the best level is ``keys[-1]``, consuming it is
  ``keys.pop()`` and a new level is one ``bisect.insort``; ``levels``: dict price -> Level;
* a Level is a FIFO ``deque`` of orders plus the aggregate visible quantity;
* an order is a plain list indexed by the ``_ID`` ... ``_ARRIVAL`` constants below: building a
  list is about four times cheaper than a slotted object's ``__init__``, and a book creates
  one per command;
* cancels are lazy: the order is marked dead and skipped (popped) when matching reaches it,
  but the level's aggregate and the price list are updated at once, so best prices,
  snapshots and book deltas are always exact. A level whose dead entries outnumber the live
  ones is compacted, so add/cancel churn behind a resting head cannot grow it forever;
* nothing refers back up (orders do not know their level, events are flat tuples), so the
  structure has no reference cycles: reference counting frees all garbage, and the cyclic
  GC can be kept off the hot path (``gcguard.py``).

Every command appends its events (``events.py``) to one list that ``drain()`` hands over.
"""

from bisect import bisect_left, insort
from collections import deque
from heapq import heapify, heappop, heappush

from .constants import (
    AMEND,
    BUY,
    CANCEL,
    EXPIRE_BOTH,
    EXPIRE_MAKER,
    EXPIRE_TAKER,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    PLACE,
    PPM,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    STOP_TYPES,
    TRAILING_STOP,
    Cancel,
    Reject,
)
from .events import ACCEPTED, AMENDED, BOOK, CANCELLED, REFRESHED, REJECTED, TRADE, TRIGGERED

__all__ = ["DEFAULT_MARKET_BAND_PPM", "BookSnapshot", "OrderBook", "RebuildError", "RestingOrder"]

DEFAULT_MARKET_BAND_PPM = 50_000  # market orders trade at most 5% through the best price at arrival

_HUGE = 1 << 80  # beyond any price in ticks: "no stop on this side", "no band"

# The fields of an order list. visible + reserve is what is still open; reserve is the hidden
# part of an iceberg (0 otherwise); a pending stop keeps its whole quantity in visible.
_ID = 0
_OWNER = 1
_SIDE = 2
_PRICE = 3  # limit price in ticks; stop-market / trailing: protection limit or None; None for market
_QTY = 4  # total: filled + open (an amend changes it)
_VISIBLE = 5
_RESERVE = 6
_STATE = 7
_SPEC = 8  # what never changes: a tuple indexed by _TYPE ... _TRAIL below
_STOP = 9  # stop price; a trailing stop's is kept by its _Trail group, set here when it triggers
_ARRIVAL = 10  # stops: arrival number, their trigger order on a tie

# The fields of an order's spec, one tuple shared by all plain limit orders (a shorter list
# to build per order)
_TYPE = 0
_TIF = 1
_POST_ONLY = 2
_DISPLAY = 3  # iceberg display size, 0 for a plain order
_TRAIL = 4  # trailing stops: (trail_ticks, trail_ppm), one of them 0; else None
_STP = 5  # self-trade prevention mode, applied when the order takes
_PLAIN_LIMIT = (LIMIT, GTC, False, 0, None, EXPIRE_MAKER)

# order states
_DEAD = 0  # cancelled, filled or re-queued: any deque/heap entry still holding it is stale
_RESTING = 1  # in a level queue (or about to be: a new order being matched)
_PENDING = 2  # a stop waiting for its trigger
_ACTIVE = 3  # a triggered stop being executed

_COMPACT_MIN_DEAD = 16
_COMPACT_MIN_STALE_STOPS = 64
_COMPACT_MIN_DEAD_TRAILING = 32


class Level:
    __slots__ = ("dead", "orders", "total")

    def __init__(self):
        self.orders = deque()
        self.total = 0  # visible quantity of the live orders; 0 exactly when none is live
        self.dead = 0  # stale entries still in ``orders``


class _Side:
    __slots__ = ("keys", "levels", "name", "sign")

    def __init__(self, name, sign):
        self.name = name
        self.sign = sign  # key = sign * price, so the best level has the largest key
        self.keys = []
        self.levels = {}


class _Trail:
    """The pending trailing stops of one side and one trail size, oldest first.

    A sell trailing stop triggers at ``ref - distance(ref)``, ``ref`` being the highest trade
    price since it was placed (a buy: at ``ref + distance(ref)``, ``ref`` the lowest). An older
    stop has seen every price a newer one has, so refs never rise from oldest to newest
    (sells; never fall for buys): consecutive stops with the same ref form a group
    ``[ref, count]``. A trade beyond the newest refs merges those groups into one at its
    price, and only the oldest group (the tightest stops of this size) can trigger: amortised
    O(1) per trade and trail size, however many stops there are. Per-stop trigger prices are
    not stored (they would all change on every new high); ``members()`` derives them."""

    __slots__ = ("dead", "groups", "key", "orders", "sell")

    def __init__(self, sell, key):
        self.sell = sell
        self.key = key  # (trail_ticks, trail_ppm)
        self.orders = deque()
        self.groups = deque()
        self.dead = 0  # cancelled orders still in ``orders``

    def add(self, order, reference):
        groups = self.groups
        if groups:
            newest = groups[-1][0]
            if reference == newest:
                groups[-1][1] += 1
                self.orders.append(order)
                return
            if (reference > newest) if self.sell else (reference < newest):
                raise RebuildError(
                    f"order {order[_ID]}: trailing reference {reference} is beyond a newer one's "
                    f"({newest}): references must follow the trade prices since each placement"
                )
        groups.append([reference, 1])
        self.orders.append(order)

    def trade(self, price, fired):
        """Trigger (append to ``fired``) the stops ``price`` reaches, then let the rest
        follow it. Returns whether the class is now empty."""
        groups = self.groups
        orders = self.orders
        sell = self.sell
        while groups:
            reference, count = groups[0]
            distance = _trail_distance(reference, self.key)
            if sell:
                stop = reference - distance
                if price > stop:
                    break
            else:
                stop = reference + distance
                if price < stop:
                    break
            groups.popleft()
            for _ in range(count):
                order = orders.popleft()
                if order[_STATE] == _PENDING:
                    order[_STATE] = _ACTIVE
                    order[_STOP] = stop
                    fired.append(order)
                else:
                    self.dead -= 1
        if groups and ((groups[-1][0] < price) if sell else (groups[-1][0] > price)):
            merged = 0
            while groups and ((groups[-1][0] < price) if sell else (groups[-1][0] > price)):
                merged += groups.pop()[1]
            if groups and groups[-1][0] == price:
                groups[-1][1] += merged
            else:
                groups.append([price, merged])
        return not orders

    def members(self):
        """(order, reference) of the live stops, oldest first."""
        out = []
        orders = iter(self.orders)
        for reference, count in self.groups:
            for _ in range(count):
                order = next(orders)
                if order[_STATE] == _PENDING:
                    out.append((order, reference))
        return out

    def compact(self):
        groups = deque()
        orders = deque()
        members = iter(self.orders)
        for reference, count in self.groups:
            live = 0
            for _ in range(count):
                order = next(members)
                if order[_STATE] == _PENDING:
                    orders.append(order)
                    live += 1
            if live:
                groups.append([reference, live])
        self.groups = groups
        self.orders = orders
        self.dead = 0


class RestingOrder:
    """An open order as the runner stores it: the input of ``OrderBook.rebuild`` and what
    ``OrderBook.open_orders()`` / ``order()`` report.

    ``qty`` is the total (filled + remaining), ``remaining`` the open quantity including
    an iceberg's hidden ``reserve`` (visible = remaining - reserve). A stop not yet triggered
    has ``triggered`` False and ``stop_price`` its trigger; a triggered stop-limit resting in
    the book has ``triggered`` True.

    A trailing stop is restored from ``trail_reference`` (``stop_price`` is then ignored:
    it follows from the reference and the trail): for a sell, the highest trade price since
    it was accepted, for a buy the lowest, counting the last trade price at acceptance. The
    runner derives it from its trades: the max (min) price over the symbol's trades with a
    seq above the order's ACCEPTED seq, together with the price of the last trade before it.
    (Trailing stops move on every new high or low; one event per stop per move would cost
    more than the rest of the book together in a trending market.)

    ``stp`` is the order's self-trade prevention mode (``place``): it applies whenever the
    order takes, so a rebuilt book keeps it."""

    __slots__ = (
        "display_qty",
        "order_id",
        "order_type",
        "owner",
        "post_only",
        "price",
        "qty",
        "remaining",
        "reserve",
        "side",
        "stop_price",
        "stp",
        "tif",
        "trail_ppm",
        "trail_reference",
        "trail_ticks",
        "triggered",
    )

    def __init__(
        self,
        order_id,
        owner,
        side,
        order_type,
        price,
        qty,
        remaining=None,
        *,
        reserve=0,
        display_qty=None,
        tif=GTC,
        post_only=False,
        stop_price=None,
        trail_ticks=None,
        trail_ppm=None,
        trail_reference=None,
        triggered=False,
        stp=EXPIRE_MAKER,
    ):
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.order_type = order_type
        self.price = price
        self.qty = qty
        self.remaining = qty if remaining is None else remaining
        self.reserve = reserve
        self.display_qty = display_qty
        self.tif = tif
        self.post_only = post_only
        self.stop_price = stop_price
        self.trail_ticks = trail_ticks
        self.trail_ppm = trail_ppm
        self.trail_reference = trail_reference
        self.triggered = triggered
        self.stp = stp

    @property
    def visible(self):
        return self.remaining - self.reserve

    def to_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other):
        return type(other) is RestingOrder and other.to_dict() == self.to_dict()

    def __repr__(self):
        return f"RestingOrder({self.to_dict()!r})"


class BookSnapshot:
    """Levels best first as (price, aggregate visible qty). ``seq`` is that of the last event
    the snapshot reflects: apply only book deltas with a larger one."""

    __slots__ = ("asks", "bids", "last_price", "seq")

    def __init__(self, seq, last_price, bids, asks):
        self.seq = seq
        self.last_price = last_price
        self.bids = bids
        self.asks = asks

    def to_dict(self):
        return {
            "seq": self.seq,
            "last_price": self.last_price,
            "bids": [list(level) for level in self.bids],
            "asks": [list(level) for level in self.asks],
        }

    def __eq__(self, other):
        return type(other) is BookSnapshot and other.to_dict() == self.to_dict()

    def __repr__(self):
        return f"BookSnapshot({self.to_dict()!r})"


class RebuildError(ValueError):
    pass


def _trail_distance(price, trail):
    ticks, ppm = trail
    if ticks:
        return ticks
    distance = price * ppm // PPM
    return distance if distance > 0 else 1


class OrderBook:
    """The matching engine of one symbol. Commands: ``place``, ``cancel``, ``amend``; each
    appends its events, with consecutive ``seq``, to the list ``drain()`` hands over.

    Not thread-safe by design: one writer per symbol (the runner holds the symbol's lease).
    """

    def __init__(
        self, symbol="", *, market_band_ticks=None, market_band_ppm=DEFAULT_MARKET_BAND_PPM, seq=0, last_price=None
    ):
        if market_band_ticks is not None and (type(market_band_ticks) is not int or market_band_ticks < 0):
            raise ValueError("market_band_ticks must be a non-negative int or None")
        if market_band_ppm is not None and (type(market_band_ppm) is not int or market_band_ppm < 0):
            raise ValueError("market_band_ppm must be a non-negative int or None")
        self.symbol = symbol
        self.market_band_ticks = market_band_ticks
        self.market_band_ppm = market_band_ppm
        self.seq = seq  # of the last event emitted
        self.last_price = last_price  # of the last trade: stops trigger on it
        self._bids = _Side(BUY, 1)
        self._asks = _Side(SELL, -1)
        self._orders = {}  # order_id -> order, resting or pending stop
        self._events = []
        self._emit = self._events.append
        # stop-market / stop-limit: heaps of (trigger key, arrival number, order), nearest
        # trigger first, then the oldest
        self._buy_stops = []  # key = stop price: triggers when last >= stop
        self._sell_stops = []  # key = -stop price: triggers when last <= stop
        self._stale_stops = 0  # cancelled entries still in the heaps
        self._stop_arrivals = 0
        self._trail_sells = {}  # (trail_ticks, trail_ppm) -> _Trail
        self._trail_buys = {}
        # A trade at a price p in (_stop_lo, _stop_hi) cannot trigger or move any stop: one
        # comparison per traded level when it does not (see _bounds)
        self._stop_hi = _HUGE
        self._stop_lo = -_HUGE
        self._triggered = deque()  # (stop, trade price that triggered it), to execute in this order

    # ---------------------------------------------------------------- commands

    def place(
        self,
        order_id,
        owner,
        side,
        order_type,
        qty=None,
        price=None,
        tif=GTC,
        post_only=False,
        display_qty=None,
        stop_price=None,
        trail_ticks=None,
        trail_ppm=None,
        quote_qty=None,
        stp=EXPIRE_MAKER,
    ):
        """Place an order. ``qty`` in lots; ``price`` (limit, stop-limit) and ``stop_price``
        in ticks; ``display_qty`` makes a GTC limit order an iceberg; ``quote_qty`` (market
        buys only, instead of ``qty``) is a quote amount in tick x lot units (see
        ``Units.quote_to_int``); a trailing stop takes ``trail_ticks`` or ``trail_ppm``
        (parts per million of the price) and trails the last trade price.

        ``stp``: what self-trade prevention does when the order, taking, meets a resting
        order of the same owner: ``EXPIRE_MAKER`` (the default) cancels the resting order
        and the taker carries on; ``EXPIRE_TAKER`` cancels the taker's remainder (its fills
        so far stand) and leaves the resting order; ``EXPIRE_BOTH`` cancels both. Each is a
        CANCELLED event with reason ``Cancel.SELF_TRADE``. A FOK order is decided with
        self-trade prevention applied first: its own orders do not count as liquidity, and
        under ``EXPIRE_TAKER`` / ``EXPIRE_BOTH`` only what trades before its first own order
        does; if that cannot fill it, it is rejected (``fok_unfillable``) and nothing is
        cancelled.

        Pass the options after ``tif`` by keyword. (They are not keyword-only because
        CPython fills missing keyword-only arguments with a dict lookup each: ~120 ns per
        call on the hot path.)"""
        if (
            order_type == LIMIT
            and tif == GTC
            and not post_only
            and display_qty is None
            and stop_price is None
            and trail_ticks is None
            and trail_ppm is None
            and quote_qty is None
            and stp == EXPIRE_MAKER
        ):
            return self.place_limit(order_id, owner, side, qty, price)
        return self._place(
            order_id,
            owner,
            side,
            order_type,
            qty,
            price,
            tif,
            post_only,
            display_qty,
            stop_price,
            trail_ticks,
            trail_ppm,
            quote_qty,
            stp,
        )

    def place_limit(self, order_id, owner, side, qty, price):
        """A plain GTC limit order with the default self-trade prevention (``EXPIRE_MAKER``):
        the same as ``place(order_id, owner, side, LIMIT, qty, price)``, without the option
        checks. Most of the traffic, so it is validated, matched and queued in this one
        frame; the runner calls it directly for such orders (an order with another ``stp``
        goes through ``place``)."""
        if type(price) is not int or type(qty) is not int or price <= 0 or qty <= 0 or order_id in self._orders:
            return self._place(
                order_id, owner, side, LIMIT, qty, price, GTC, False, None, None, None, None, None, EXPIRE_MAKER
            )
        if side == BUY:
            own = self._bids
            opp = self._asks
            limit_key = -price
        elif side == SELL:
            own = self._asks
            opp = self._bids
            limit_key = price
        else:
            return self._reject(order_id, Reject.INVALID_SIDE, PLACE)
        emit = self._emit
        seq = self.seq + 1
        emit((ACCEPTED, seq, order_id, owner, side, LIMIT, price, qty))
        order = [order_id, owner, side, price, qty, qty, 0, _RESTING, _PLAIN_LIMIT, None, 0]
        keys = opp.keys
        crosses = keys and keys[-1] >= limit_key
        if crosses:
            self.seq = seq
            qty = self._match(order, opp, limit_key, qty, None)
            if not qty:
                if self._triggered:
                    self._run_triggered()
                return
            order[_VISIBLE] = qty
            seq = self.seq
        levels = own.levels
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level()
            insort(own.keys, -limit_key)
        level.orders.append(order)
        total = level.total + qty
        level.total = total
        self._orders[order_id] = order
        seq += 1
        emit((BOOK, seq, side, price, total))
        self.seq = seq
        if crosses and self._triggered:  # only a trade triggers stops
            self._run_triggered()

    def cancel(self, order_id, reason=Cancel.USER):
        """Cancel an open order (resting or a pending stop): CANCELLED with its whole
        remainder, then, for a resting one, its level's book delta."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return self._reject(order_id, Reject.UNKNOWN_ORDER, CANCEL)
        if order[_STATE] == _PENDING:
            self._drop_stop(order)
            self._cancel_remainder(order, reason, order[_VISIBLE])
            return
        # _unlink, inlined: cancels are a fifth of the traffic
        own = self._bids if order[_SIDE] == BUY else self._asks
        order[_STATE] = _DEAD
        price = order[_PRICE]
        visible = order[_VISIBLE]
        level = own.levels[price]
        total = level.total - visible
        level.total = total
        if not total:
            del own.levels[price]
            keys = own.keys
            del keys[bisect_left(keys, own.sign * price)]
        else:
            dead = level.dead + 1
            level.dead = dead
            if dead > _COMPACT_MIN_DEAD and 2 * dead > len(level.orders):
                level.orders = deque([o for o in level.orders if o[_STATE] == _RESTING])
                level.dead = 0
        seq = self.seq
        emit = self._emit
        emit((CANCELLED, seq + 1, order_id, order[_OWNER], reason, visible + order[_RESERVE]))
        emit((BOOK, seq + 2, order[_SIDE], price, total))
        self.seq = seq + 2

    def amend(self, order_id, qty=None, price=None):
        """Change an open order's total quantity (filled + open, as in FIX) and/or its
        price. Reducing the quantity at the same price keeps the time priority; any other
        change re-queues the order, and a new price that crosses trades at once as a new
        order would (a post-only order is refused instead). Pending stops amend the same way
        (their priority is their trigger order among equal stop prices); their stop price
        does not change, and a trailing stop's quantity can only be reduced."""
        order = self._orders.get(order_id)
        if order is None:
            return self._reject(order_id, Reject.UNKNOWN_ORDER, AMEND)
        if qty is not None and (type(qty) is not int or qty <= 0):
            return self._reject(order_id, Reject.INVALID_QUANTITY, AMEND)
        if price is not None:
            if type(price) is not int or price <= 0:
                return self._reject(order_id, Reject.INVALID_PRICE, AMEND)
            if order[_PRICE] is None or order[_SPEC][_TYPE] == STOP_MARKET or order[_SPEC][_TYPE] == TRAILING_STOP:
                return self._reject(order_id, Reject.AMEND_NOT_ALLOWED, AMEND)
        old_qty = order[_QTY]
        old_price = order[_PRICE]
        new_qty = old_qty if qty is None else qty
        new_price = old_price if price is None else price
        if new_qty == old_qty and new_price == old_price:
            return self._reject(order_id, Reject.AMEND_NO_CHANGE, AMEND)
        filled = old_qty - order[_VISIBLE] - order[_RESERVE]
        if new_qty <= filled:
            return self._reject(order_id, Reject.AMEND_BELOW_FILLED, AMEND)
        remaining = new_qty - filled
        keep = new_price == old_price and new_qty < old_qty
        owner = order[_OWNER]

        if order[_STATE] == _PENDING:
            if not keep and order[_SPEC][_TYPE] == TRAILING_STOP:
                # re-queueing would restart its trail from the last price: a looser stop
                # than the trader has; cancel and place a new one instead
                return self._reject(order_id, Reject.AMEND_NOT_ALLOWED, AMEND)
            if not keep:
                del self._orders[order_id]
                self._drop_stop(order)
                order = order[:]
            order[_QTY] = new_qty
            order[_PRICE] = new_price
            order[_VISIBLE] = remaining
            self.seq += 1
            self._emit((AMENDED, self.seq, order_id, owner, new_price, new_qty, remaining, 0, keep))
            if not keep:
                self._add_stop(order, None)
            return

        own, opp = (self._bids, self._asks) if order[_SIDE] == BUY else (self._asks, self._bids)
        if keep:
            visible = order[_VISIBLE]
            hidden = visible - remaining if visible > remaining else 0
            visible -= hidden
            reserve = remaining - visible
            order[_QTY] = new_qty
            order[_VISIBLE] = visible
            order[_RESERVE] = reserve
            self.seq += 1
            self._emit((AMENDED, self.seq, order_id, owner, new_price, new_qty, remaining, reserve, True))
            if hidden:
                level = own.levels[new_price]
                level.total -= hidden
                self.seq += 1
                self._emit((BOOK, self.seq, own.name, new_price, level.total))
            return

        limit_key = opp.sign * new_price
        crosses = opp.keys and opp.keys[-1] >= limit_key
        if crosses and order[_SPEC][_POST_ONLY]:
            return self._reject(order_id, Reject.POST_ONLY_WOULD_TAKE, AMEND)
        total = self._unlink(order, own)
        order = order[:]
        order[_QTY] = new_qty
        order[_PRICE] = new_price
        order[_VISIBLE] = remaining
        order[_RESERVE] = 0
        order[_STATE] = _RESTING
        display = order[_SPEC][_DISPLAY]
        reserve = remaining - display if display and remaining > display else 0
        seq = self.seq + 1
        self._emit((AMENDED, seq, order_id, owner, new_price, new_qty, remaining, reserve, False))
        seq += 1
        self._emit((BOOK, seq, own.name, old_price, total))
        self.seq = seq
        if crosses:
            remaining = self._match(order, opp, limit_key, remaining, None)
            if remaining:
                order[_VISIBLE] = remaining
                self._rest(order, own)
        else:
            self._rest(order, own)
        if self._triggered:
            self._run_triggered()

    def drain(self):
        """The events emitted since the last call, oldest first."""
        events = self._events[:]
        self._events.clear()
        return events

    # ---------------------------------------------------------------- queries

    def snapshot(self, depth=None):
        """Aggregate visible quantity per level, best first, ``depth`` levels per side
        (all when None)."""
        return BookSnapshot(
            self.seq, self.last_price, self._side_levels(self._bids, depth), self._side_levels(self._asks, depth)
        )

    def best_bid(self):
        keys = self._bids.keys
        return keys[-1] if keys else None

    def best_ask(self):
        keys = self._asks.keys
        return -keys[-1] if keys else None

    def __contains__(self, order_id):
        return order_id in self._orders

    def __len__(self):
        return len(self._orders)

    def order(self, order_id):
        """The open order (resting or a pending stop) as a RestingOrder, or None."""
        order = self._orders.get(order_id)
        if order is None:
            return None
        if order[_SPEC][_TYPE] == TRAILING_STOP and order[_STATE] == _PENDING:
            classes = self._trail_sells if order[_SIDE] == SELL else self._trail_buys
            for member, reference in classes[order[_SPEC][_TRAIL]].members():
                if member is order:
                    return _export(order, reference)
        return _export(order)

    def open_orders(self):
        """Every open order, in an order ``rebuild`` restores exactly: each level's orders
        in time priority, pending stops in trigger priority."""
        out = []
        for side in (self._bids, self._asks):
            for key in reversed(side.keys):
                out.extend(_export(order) for order in side.levels[key * side.sign].orders if order[_STATE] == _RESTING)
        stops = [
            (order[_ARRIVAL], _export(order))
            for _, _, order in self._buy_stops + self._sell_stops
            if order[_STATE] == _PENDING
        ]
        for trail in (*self._trail_sells.values(), *self._trail_buys.values()):
            stops.extend((order[_ARRIVAL], _export(order, reference)) for order, reference in trail.members())
        stops.sort(key=lambda item: item[0])
        out.extend(spec for _, spec in stops)
        return out

    @classmethod
    def rebuild(cls, orders, *, symbol="", seq=0, last_price=None, **config):
        """A book holding ``orders`` (RestingOrder), given in time priority (each level's
        orders, and the pending stops, keep the order they come in; the runner sorts by the
        seq of the event that last queued each order). Emits nothing. ``seq``: the last
        sequence number emitted before; ``last_price``: the last trade price (stops trigger
        on it). Raises RebuildError on inconsistent input (duplicate id, crossed book...)."""
        book = cls(symbol, seq=seq, last_price=last_price, **config)
        for spec in orders:
            book._restore(spec)
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            raise RebuildError(f"crossed book: best bid {bid} >= best ask {ask}")
        return book

    # ---------------------------------------------------------------- placing

    def _place(
        self,
        order_id,
        owner,
        side,
        order_type,
        qty,
        price,
        tif,
        post_only,
        display_qty,
        stop_price,
        trail_ticks,
        trail_ppm,
        quote_qty,
        stp,
    ):
        if order_id in self._orders:
            return self._reject(order_id, Reject.DUPLICATE_ORDER_ID, PLACE)
        if side == BUY:
            own, opp = self._bids, self._asks
        elif side == SELL:
            own, opp = self._asks, self._bids
        else:
            return self._reject(order_id, Reject.INVALID_SIDE, PLACE)
        if tif != GTC and tif != IOC and tif != FOK:
            return self._reject(order_id, Reject.INVALID_TIME_IN_FORCE, PLACE)
        if stp != EXPIRE_MAKER and stp != EXPIRE_TAKER and stp != EXPIRE_BOTH:
            return self._reject(order_id, Reject.INVALID_STP, PLACE)
        if order_type in (LIMIT, STOP_LIMIT):
            if type(price) is not int or price <= 0:
                return self._reject(order_id, Reject.INVALID_PRICE, PLACE)
        elif order_type == MARKET:
            if price is not None:
                return self._reject(order_id, Reject.INVALID_PRICE, PLACE)
        elif order_type in (STOP_MARKET, TRAILING_STOP):
            # optional: the worst price it may trade at once triggered (its protection limit;
            # the runner sets it so a buy never spends more than its hold)
            if price is not None and (type(price) is not int or price <= 0):
                return self._reject(order_id, Reject.INVALID_PRICE, PLACE)
        else:
            return self._reject(order_id, Reject.INVALID_ORDER_TYPE, PLACE)
        if quote_qty is not None:
            if (
                order_type != MARKET
                or side != BUY
                or tif == FOK
                or qty is not None
                or type(quote_qty) is not int
                or quote_qty <= 0
            ):
                return self._reject(order_id, Reject.INVALID_QUOTE_QUANTITY, PLACE)
        elif type(qty) is not int or qty <= 0:
            return self._reject(order_id, Reject.INVALID_QUANTITY, PLACE)
        if post_only and (order_type != LIMIT or tif != GTC):
            return self._reject(order_id, Reject.INVALID_POST_ONLY, PLACE)
        if display_qty is not None and (
            order_type != LIMIT or tif != GTC or type(display_qty) is not int or not 0 < display_qty <= qty
        ):
            return self._reject(order_id, Reject.INVALID_DISPLAY_QUANTITY, PLACE)
        if order_type in (LIMIT, MARKET):
            if stop_price is not None:
                return self._reject(order_id, Reject.INVALID_STOP_PRICE, PLACE)
            if trail_ticks is not None or trail_ppm is not None:
                return self._reject(order_id, Reject.INVALID_TRAIL, PLACE)

        if order_type == LIMIT:
            limit_key = opp.sign * price
            keys = opp.keys
            crosses = keys and keys[-1] >= limit_key
            if crosses:
                if post_only:
                    return self._reject(order_id, Reject.POST_ONLY_WOULD_TAKE, PLACE)
                if tif == FOK and not self._fillable(opp, limit_key, qty, owner, stp):
                    return self._reject(order_id, Reject.FOK_UNFILLABLE, PLACE)
            elif tif == FOK:
                return self._reject(order_id, Reject.FOK_UNFILLABLE, PLACE)
            self._accept(order_id, owner, side, LIMIT, price, qty)
            order = [
                order_id,
                owner,
                side,
                price,
                qty,
                qty,
                0,
                _RESTING,
                (LIMIT, tif, bool(post_only), display_qty or 0, None, stp),
                None,
                0,
            ]
            if crosses:
                qty = self._match(order, opp, limit_key, qty, None)
                order[_VISIBLE] = qty
            if qty:
                if tif == GTC:
                    self._rest(order, own)
                else:
                    self._cancel_remainder(order, Cancel.IOC_REMAINDER, qty)
            if self._triggered:
                self._run_triggered()
            return

        if order_type == MARKET:
            limit_key = self._market_limit_key(opp)
            if tif == FOK and (limit_key is None or not self._fillable(opp, limit_key, qty, owner, stp)):
                return self._reject(order_id, Reject.FOK_UNFILLABLE, PLACE)
            self._accept(order_id, owner, side, MARKET, None, qty)
            order = [
                order_id,
                owner,
                side,
                None,
                qty,
                qty or 0,
                0,
                _ACTIVE,
                (MARKET, tif, False, 0, None, stp),
                None,
                0,
            ]
            self._execute_market(order, opp, limit_key, quote_qty)
            if self._triggered:
                self._run_triggered()
            return

        # stop orders: validated here, executed when the last trade price reaches them
        last = self.last_price
        trail = None
        if order_type == TRAILING_STOP:
            if stop_price is not None:
                return self._reject(order_id, Reject.INVALID_STOP_PRICE, PLACE)
            ticks = 0 if trail_ticks is None else trail_ticks
            ppm = 0 if trail_ppm is None else trail_ppm
            if (
                type(ticks) is not int
                or type(ppm) is not int
                or (ticks > 0) == (ppm > 0)
                or ticks < 0
                or not 0 <= ppm < PPM
            ):
                return self._reject(order_id, Reject.INVALID_TRAIL, PLACE)
            if last is None:
                return self._reject(order_id, Reject.NO_REFERENCE_PRICE, PLACE)
            trail = (ticks, ppm)
        else:
            if trail_ticks is not None or trail_ppm is not None:
                return self._reject(order_id, Reject.INVALID_TRAIL, PLACE)
            if type(stop_price) is not int or stop_price <= 0:
                return self._reject(order_id, Reject.INVALID_STOP_PRICE, PLACE)
            if last is not None and (last >= stop_price if side == BUY else last <= stop_price):
                return self._reject(order_id, Reject.STOP_WOULD_TRIGGER, PLACE)
        self._accept(order_id, owner, side, order_type, price, qty)
        self._add_stop(
            [
                order_id,
                owner,
                side,
                price,
                qty,
                qty,
                0,
                _PENDING,
                (order_type, tif, False, 0, trail, stp),
                stop_price,
                0,
            ],
            last,
        )

    def _accept(self, order_id, owner, side, order_type, price, qty):
        seq = self.seq + 1
        self._emit((ACCEPTED, seq, order_id, owner, side, order_type, price, qty))
        self.seq = seq

    def _reject(self, order_id, reason, command):
        seq = self.seq + 1
        self._emit((REJECTED, seq, order_id, reason, command))
        self.seq = seq

    # ---------------------------------------------------------------- matching

    def _match(self, taker, opp, limit_key, remaining, quote):
        """Trade ``taker`` against ``opp`` from the best level while its key >= limit_key.
        Returns the quantity left, or for a quote-amount order (``quote`` not None) the quote
        left. One book delta per level touched; stops are checked at each traded price."""
        keys = opp.keys
        levels = opp.levels
        sign = opp.sign
        side_name = opp.name
        orders = self._orders
        emit = self._emit
        taker_id = taker[_ID]
        taker_owner = taker[_OWNER]
        aggressor = taker[_SIDE]
        stop_hi = self._stop_hi
        stop_lo = self._stop_lo
        last = None
        seq = self.seq
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            price = key * sign
            if quote is not None:
                remaining = quote // price
                if not remaining:
                    break
            level = levels[price]
            queue = level.orders
            total = level.total  # kept in a local while trading at this level
            start = remaining
            while queue:
                maker = queue[0]
                if maker[_STATE] != _RESTING:
                    queue.popleft()
                    level.dead -= 1
                    continue
                if maker[_OWNER] == taker_owner:
                    # self-trade prevention, as the taker's mode says
                    stp = taker[_SPEC][_STP]
                    if stp != EXPIRE_TAKER:
                        # the resting order goes
                        queue.popleft()
                        maker[_STATE] = _DEAD
                        del orders[maker[_ID]]
                        visible = maker[_VISIBLE]
                        total -= visible
                        seq += 1
                        emit((CANCELLED, seq, maker[_ID], taker_owner, Cancel.SELF_TRADE, visible + maker[_RESERVE]))
                        if stp == EXPIRE_MAKER:
                            continue  # and the taker carries on
                    return self._expire_taker(taker, opp, level, price, total, start, remaining, quote, last, seq)
                visible = maker[_VISIBLE]
                if visible > remaining:
                    visible -= remaining
                    maker[_VISIBLE] = visible
                    total -= remaining
                    seq += 1
                    emit(
                        (
                            TRADE,
                            seq,
                            price,
                            remaining,
                            maker[_ID],
                            taker_id,
                            maker[_OWNER],
                            taker_owner,
                            aggressor,
                            visible + maker[_RESERVE],
                            0 if quote is None else None,
                        )
                    )
                    remaining = 0
                    break
                remaining -= visible
                total -= visible
                queue.popleft()
                reserve = maker[_RESERVE]
                if reserve:
                    # iceberg: refill the display from the reserve, at the back of the queue
                    shown = maker[_SPEC][_DISPLAY]
                    if shown > reserve:
                        shown = reserve
                    reserve -= shown
                    maker[_VISIBLE] = shown
                    maker[_RESERVE] = reserve
                    queue.append(maker)
                    total += shown
                    seq += 1
                    emit(
                        (
                            TRADE,
                            seq,
                            price,
                            visible,
                            maker[_ID],
                            taker_id,
                            maker[_OWNER],
                            taker_owner,
                            aggressor,
                            shown + reserve,
                            remaining if quote is None else None,
                        )
                    )
                    seq += 1
                    emit((REFRESHED, seq, maker[_ID], maker[_OWNER], shown, reserve))
                else:
                    maker[_VISIBLE] = 0
                    maker[_STATE] = _DEAD
                    del orders[maker[_ID]]
                    seq += 1
                    emit(
                        (
                            TRADE,
                            seq,
                            price,
                            visible,
                            maker[_ID],
                            taker_id,
                            maker[_OWNER],
                            taker_owner,
                            aggressor,
                            0,
                            remaining if quote is None else None,
                        )
                    )
                if not remaining:
                    break
            level.total = total
            if not total:
                del levels[price]
                keys.pop()
            seq += 1
            emit((BOOK, seq, side_name, price, total))
            if remaining != start:
                if quote is not None:
                    quote -= (start - remaining) * price
                last = price
                if price >= stop_hi or price <= stop_lo:
                    self.seq = seq
                    self._check_stops(price)
                    seq = self.seq
                    stop_hi = self._stop_hi
                    stop_lo = self._stop_lo
            if not remaining:
                break
        self.seq = seq
        if last is not None:
            self.last_price = last
        return remaining if quote is None else quote

    def _expire_taker(self, taker, opp, level, price, total, start, remaining, quote, last, seq):
        """The end of ``_match`` when self-trade prevention expires the taker at ``price``
        (``EXPIRE_TAKER``, ``EXPIRE_BOTH``): settle the level as the matching loop does (the
        book delta if anything happened at it, the last price and the stops if it traded
        there), then cancel the taker's remainder. Returns 0: nothing is left to rest or
        cancel. Off the hot path on purpose: ``_match`` only calls it when it fires."""
        touched = remaining != start or total != level.total
        level.total = total
        if not total:
            del opp.levels[price]
            opp.keys.pop()
        if touched:
            seq += 1
            self._emit((BOOK, seq, opp.name, price, total))
        self.seq = seq
        if remaining != start:
            last = price
            if price >= self._stop_hi or price <= self._stop_lo:
                self._check_stops(price)
        if last is not None:
            self.last_price = last
        self._cancel_remainder(taker, Cancel.SELF_TRADE, remaining if quote is None else 0)
        return 0

    def _fillable(self, opp, limit_key, qty, owner, stp):
        """Whether ``qty`` can trade within ``limit_key`` now, with self-trade prevention
        applied first. Hidden reserves count (an iceberg refills during the same sweep) but
        the owner's own orders never do: under ``EXPIRE_MAKER`` they are cancelled on the
        way and the sweep goes on; under ``EXPIRE_TAKER`` / ``EXPIRE_BOTH`` the sweep ends at
        the first one, so only what trades before it counts (at its level, the visible
        parts queued ahead of it: a refilled iceberg goes behind it)."""
        keys = opp.keys
        levels = opp.levels
        sign = opp.sign
        stops = stp != EXPIRE_MAKER
        for index in range(len(keys) - 1, -1, -1):
            key = keys[index]
            if key < limit_key:
                return False
            orders = levels[key * sign].orders
            if stops and any(maker[_STATE] == _RESTING and maker[_OWNER] == owner for maker in orders):
                for maker in orders:
                    if maker[_STATE] == _RESTING:
                        if maker[_OWNER] == owner:
                            return False
                        qty -= maker[_VISIBLE]
                        if qty <= 0:
                            return True
            for maker in orders:
                if maker[_STATE] == _RESTING and maker[_OWNER] != owner:
                    qty -= maker[_VISIBLE] + maker[_RESERVE]
                    if qty <= 0:
                        return True
        return False

    def _market_limit_key(self, opp):
        """The protection band as a limit key: at most ``market_band_ticks`` and at most
        ``market_band_ppm`` of the best opposite price through it. None: the side is empty."""
        keys = opp.keys
        if not keys:
            return None
        best = keys[-1] * opp.sign
        allowed = self.market_band_ticks
        if self.market_band_ppm is not None:
            by_ppm = best * self.market_band_ppm // PPM
            if allowed is None or by_ppm < allowed:
                allowed = by_ppm
        if allowed is None:
            return -_HUGE
        return opp.sign * (best + allowed if opp is self._asks else best - allowed)

    def _execute_market(self, order, opp, limit_key, quote):
        if limit_key is None:
            self._cancel_remainder(order, Cancel.NO_LIQUIDITY, 0 if quote is not None else order[_VISIBLE])
            return
        left = self._match(order, opp, limit_key, order[_VISIBLE], quote)
        if (not left and quote is None) or order[_STATE] == _DEAD:  # filled, or expired by self-trade prevention
            return
        keys = opp.keys
        if quote is not None and (not left or (keys and keys[-1] >= limit_key)):
            reason = Cancel.QUOTE_SPENT
        elif keys:
            reason = Cancel.PROTECTION_BAND
        else:
            reason = Cancel.NO_LIQUIDITY
        self._cancel_remainder(order, reason, 0 if quote is not None else left)

    def _rest(self, order, own):
        """Queue ``order`` (its open quantity in visible) at the back of its price level."""
        price = order[_PRICE]
        levels = own.levels
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level()
            insort(own.keys, own.sign * price)
        display = order[_SPEC][_DISPLAY]
        if display and order[_VISIBLE] > display:
            order[_RESERVE] = order[_VISIBLE] - display
            order[_VISIBLE] = display
        order[_STATE] = _RESTING
        level.orders.append(order)
        level.total += order[_VISIBLE]
        self._orders[order[_ID]] = order
        seq = self.seq + 1
        self._emit((BOOK, seq, own.name, price, level.total))
        self.seq = seq

    def _unlink(self, order, own):
        """Take a resting order off its level (lazily) and return the level's new total."""
        order[_STATE] = _DEAD
        del self._orders[order[_ID]]
        price = order[_PRICE]
        level = own.levels[price]
        total = level.total - order[_VISIBLE]
        level.total = total
        if not total:
            del own.levels[price]
            keys = own.keys
            del keys[bisect_left(keys, own.sign * price)]
        else:
            level.dead += 1
            if level.dead > _COMPACT_MIN_DEAD and 2 * level.dead > len(level.orders):
                level.orders = deque([o for o in level.orders if o[_STATE] == _RESTING])
                level.dead = 0
        return total

    def _cancel_remainder(self, order, reason, qty):
        order[_STATE] = _DEAD
        seq = self.seq + 1
        self._emit((CANCELLED, seq, order[_ID], order[_OWNER], reason, qty))
        self.seq = seq

    # ---------------------------------------------------------------- stops

    def _add_stop(self, order, reference):
        """A pending stop in; ``reference``: a trailing stop's reference price (the last
        trade price for a new one)."""
        order[_STATE] = _PENDING
        self._stop_arrivals += 1
        order[_ARRIVAL] = self._stop_arrivals
        self._orders[order[_ID]] = order
        spec = order[_SPEC]
        if spec[_TYPE] == TRAILING_STOP:
            sell = order[_SIDE] == SELL
            classes = self._trail_sells if sell else self._trail_buys
            trail = classes.get(spec[_TRAIL])
            if trail is None:
                trail = classes[spec[_TRAIL]] = _Trail(sell, spec[_TRAIL])
            trail.add(order, reference)
            self._bounds()
        elif order[_SIDE] == BUY:
            heappush(self._buy_stops, (order[_STOP], order[_ARRIVAL], order))
            if order[_STOP] < self._stop_hi:
                self._stop_hi = order[_STOP]
        else:
            heappush(self._sell_stops, (-order[_STOP], order[_ARRIVAL], order))
            if order[_STOP] > self._stop_lo:
                self._stop_lo = order[_STOP]

    def _drop_stop(self, order):
        """Take a pending stop (already out of ``_orders``) out of the stop structures:
        lazily, its heap or trail entry is compacted away once most entries are stale."""
        order[_STATE] = _DEAD
        key = order[_SPEC][_TRAIL]
        if key is not None:
            classes = self._trail_sells if order[_SIDE] == SELL else self._trail_buys
            trail = classes[key]
            trail.dead += 1
            if trail.dead == len(trail.orders):
                del classes[key]
            elif trail.dead > _COMPACT_MIN_DEAD_TRAILING and 2 * trail.dead > len(trail.orders):
                trail.compact()
            return
        self._stale_stops += 1
        if self._stale_stops > _COMPACT_MIN_STALE_STOPS and 2 * self._stale_stops > len(self._buy_stops) + len(
            self._sell_stops
        ):
            self._buy_stops = [entry for entry in self._buy_stops if entry[2][_STATE] == _PENDING]
            self._sell_stops = [entry for entry in self._sell_stops if entry[2][_STATE] == _PENDING]
            heapify(self._buy_stops)
            heapify(self._sell_stops)
            self._stale_stops = 0
            self._bounds()

    def _bounds(self):
        """Recompute (_stop_lo, _stop_hi): the nearest prices at which a trade would
        trigger a stop or move a trailing stop's reference."""
        hi = self._buy_stops[0][0] if self._buy_stops else _HUGE
        lo = -self._sell_stops[0][0] if self._sell_stops else -_HUGE
        for key, trail in self._trail_sells.items():
            groups = trail.groups
            if groups:
                stop = groups[0][0] - _trail_distance(groups[0][0], key)
                if stop > lo:
                    lo = stop
                if groups[-1][0] + 1 < hi:
                    hi = groups[-1][0] + 1
        for key, trail in self._trail_buys.items():
            groups = trail.groups
            if groups:
                stop = groups[0][0] + _trail_distance(groups[0][0], key)
                if stop < hi:
                    hi = stop
                if groups[-1][0] - 1 > lo:
                    lo = groups[-1][0] - 1
        self._stop_hi = hi
        self._stop_lo = lo

    def _check_stops(self, price):
        """A trade printed at ``price``: queue the stops it triggers (buy stops nearest
        first, then sell stops nearest first, then trailing stops by arrival) and let the
        trailing stops follow it."""
        triggered = self._triggered
        orders = self._orders
        heap = self._buy_stops
        while heap and heap[0][0] <= price:
            order = heappop(heap)[2]
            if order[_STATE] == _PENDING:
                order[_STATE] = _ACTIVE
                del orders[order[_ID]]
                triggered.append((order, price))
            else:
                self._stale_stops -= 1
        heap = self._sell_stops
        while heap and -heap[0][0] >= price:
            order = heappop(heap)[2]
            if order[_STATE] == _PENDING:
                order[_STATE] = _ACTIVE
                del orders[order[_ID]]
                triggered.append((order, price))
            else:
                self._stale_stops -= 1
        if self._trail_sells or self._trail_buys:
            fired = []
            for classes in (self._trail_sells, self._trail_buys):
                emptied = [key for key, trail in classes.items() if trail.trade(price, fired)]
                for key in emptied:
                    del classes[key]
            if fired:
                fired.sort(key=_arrival)
                for order in fired:
                    del orders[order[_ID]]
                    triggered.append((order, price))
        self._bounds()

    def _run_triggered(self):
        """Execute the triggered stops in trigger order; the stops they trigger queue behind."""
        triggered = self._triggered
        while triggered:
            order, price = triggered.popleft()
            seq = self.seq + 1
            self._emit((TRIGGERED, seq, order[_ID], order[_OWNER], order[_STOP], price))
            self.seq = seq
            own, opp = (self._bids, self._asks) if order[_SIDE] == BUY else (self._asks, self._bids)
            qty = order[_VISIBLE]
            spec = order[_SPEC]
            if spec[_TYPE] == STOP_LIMIT:
                limit_key = opp.sign * order[_PRICE]
                keys = opp.keys
                crosses = keys and keys[-1] >= limit_key
                if spec[_TIF] == FOK and not (
                    crosses and self._fillable(opp, limit_key, qty, order[_OWNER], spec[_STP])
                ):
                    self._cancel_remainder(order, Cancel.FOK_UNFILLABLE, qty)
                    continue
                if crosses:
                    qty = self._match(order, opp, limit_key, qty, None)
                    if not qty:
                        continue
                    order[_VISIBLE] = qty
                if spec[_TIF] == GTC:
                    self._rest(order, own)
                else:
                    self._cancel_remainder(order, Cancel.IOC_REMAINDER, qty)
            else:
                limit_key = self._market_limit_key(opp)
                protect = order[_PRICE]
                if protect is not None and limit_key is not None and opp.sign * protect > limit_key:
                    limit_key = opp.sign * protect
                if spec[_TIF] == FOK and (
                    limit_key is None or not self._fillable(opp, limit_key, qty, order[_OWNER], spec[_STP])
                ):
                    self._cancel_remainder(order, Cancel.FOK_UNFILLABLE, qty)
                    continue
                self._execute_market(order, opp, limit_key, None)

    # ---------------------------------------------------------------- state in and out

    def _side_levels(self, side, depth):
        keys = side.keys
        levels = side.levels
        sign = side.sign
        count = len(keys) if depth is None else min(depth, len(keys))
        return [(keys[-1 - i] * sign, levels[keys[-1 - i] * sign].total) for i in range(count)]

    def _restore(self, spec):
        def bad(why):
            return RebuildError(f"order {spec.order_id!r}: {why}")

        if type(spec.order_id) is not int:
            raise bad("order_id must be an int")
        if spec.order_id in self._orders:
            raise bad("duplicate order id")
        if spec.side not in (BUY, SELL):
            raise bad(f"side {spec.side!r}")
        if spec.tif not in (GTC, IOC, FOK):
            raise bad(f"time in force {spec.tif!r}")
        if spec.stp not in (EXPIRE_MAKER, EXPIRE_TAKER, EXPIRE_BOTH):
            raise bad(f"self-trade prevention {spec.stp!r}")
        if type(spec.qty) is not int or type(spec.remaining) is not int or not 0 < spec.remaining <= spec.qty:
            raise bad("need 0 < remaining <= qty (ints)")
        display = spec.display_qty or 0
        reserve = spec.reserve or 0
        visible = spec.remaining - reserve
        if spec.order_type == LIMIT or (spec.order_type == STOP_LIMIT and spec.triggered):
            if type(spec.price) is not int or spec.price <= 0:
                raise bad("a resting order needs a positive int price")
            if spec.tif != GTC:
                raise bad("only GTC orders rest")
            if display:
                if type(display) is not int or type(reserve) is not int or reserve < 0 or not 0 < visible <= display:
                    raise bad("an iceberg needs 0 < remaining - reserve <= display_qty")
            elif reserve:
                raise bad("reserve without display_qty")
            # queued as given: _rest would split an iceberg's open quantity again
            own = self._bids if spec.side == BUY else self._asks
            level = own.levels.get(spec.price)
            if level is None:
                level = own.levels[spec.price] = Level()
                insort(own.keys, own.sign * spec.price)
            order = [
                spec.order_id,
                spec.owner,
                spec.side,
                spec.price,
                spec.qty,
                visible,
                reserve,
                _RESTING,
                (spec.order_type, GTC, bool(spec.post_only), display, None, spec.stp),
                spec.stop_price,
                0,
            ]
            level.orders.append(order)
            level.total += visible
            self._orders[spec.order_id] = order
            return
        if spec.order_type not in STOP_TYPES:
            raise bad(f"a {spec.order_type!r} order cannot be open")
        if spec.triggered:
            raise bad(f"a triggered {spec.order_type} order cannot be open")
        if reserve or display or spec.post_only:
            raise bad("stop orders have no iceberg or post-only")
        if spec.order_type != TRAILING_STOP and type(spec.stop_price) is not int:
            raise bad("a pending stop needs an int stop_price")
        if spec.order_type == STOP_LIMIT:
            if type(spec.price) is not int or spec.price <= 0:
                raise bad("a stop-limit order needs a positive int price")
        elif spec.price is not None and (type(spec.price) is not int or spec.price <= 0):
            raise bad(f"a {spec.order_type} order's protection price must be a positive int")
        trail = None
        if spec.order_type == TRAILING_STOP:
            ticks = spec.trail_ticks or 0
            ppm = spec.trail_ppm or 0
            if type(ticks) is not int or type(ppm) is not int or (ticks > 0) == (ppm > 0) or not 0 <= ppm < PPM:
                raise bad("a trailing stop needs one of trail_ticks, trail_ppm")
            if type(spec.trail_reference) is not int or spec.trail_reference <= 0:
                raise bad("a trailing stop needs a positive int trail_reference")
            trail = (ticks, ppm)
        elif spec.stop_price <= 0:
            raise bad("stop_price must be positive")
        stop_price = None if trail is not None else spec.stop_price
        self._add_stop(
            [
                spec.order_id,
                spec.owner,
                spec.side,
                spec.price,
                spec.qty,
                spec.remaining,
                0,
                _PENDING,
                (spec.order_type, spec.tif, False, 0, trail, spec.stp),
                stop_price,
                0,
            ],
            spec.trail_reference,
        )


def _arrival(order):
    return order[_ARRIVAL]


def _export(order, reference=None):
    spec = order[_SPEC]
    trail = spec[_TRAIL]
    stop_price = order[_STOP]
    trail_ticks = trail_ppm = None
    if trail is not None:
        trail_ticks = trail[0] or None
        trail_ppm = trail[1] or None
        if reference is not None:
            distance = _trail_distance(reference, trail)
            stop_price = reference - distance if order[_SIDE] == SELL else reference + distance
    return RestingOrder(
        order[_ID],
        order[_OWNER],
        order[_SIDE],
        spec[_TYPE],
        order[_PRICE],
        order[_QTY],
        order[_VISIBLE] + order[_RESERVE],
        reserve=order[_RESERVE],
        display_qty=spec[_DISPLAY] or None,
        tif=spec[_TIF],
        post_only=spec[_POST_ONLY],
        stop_price=stop_price,
        trail_ticks=trail_ticks,
        trail_ppm=trail_ppm,
        trail_reference=reference,
        triggered=spec[_TYPE] in STOP_TYPES and order[_STATE] != _PENDING,
        stp=spec[_STP],
    )
