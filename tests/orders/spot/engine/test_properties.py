"""Properties of the engine over generated command sequences (hypothesis).

Each sequence mixes every order type, time in force, post-only, icebergs, stops, trailing
stops, cancels and amends, on a narrow price range with four owners (so orders cross, stops
trigger and self-trade prevention fires). A shadow model rebuilt from the event stream
alone, independent of the engine's internals, checks after every event and command:

* sequence numbers are consecutive; the book is never crossed at rest;
* price-time priority: every trade (and every self-trade cancel) takes the best-priced
  resting order that was queued first, where "queued" is the seq of the event that last
  gave it its place (accepted, triggered, amended without keeping priority, refreshed);
* trades respect the taker's limit and the market protection band, never pair one owner;
* self-trade prevention follows the taker's ``stp`` mode: expire_maker cancels each own
  resting order the taker reaches and the taker carries on; expire_taker cancels the taker
  when the best resting order is its own (which stays); expire_both cancels that one own
  resting order and then the taker, with no trade between; a FOK order is never expired;
* quantity is conserved: for every order, filled + open + cancelled == its quantity;
* book deltas replayed on an empty book give the engine's snapshot, and each level's
  aggregate is the sum of the visible parts of the open orders there (lazy cancels are
  exact); an iceberg never shows more than its display size;
* FOK orders fill completely or not at all; stops trigger exactly when a trade reaches
  them; trailing stops track the extreme price since they were placed;
* replaying the same command log gives byte-identical events, and a book rebuilt from
  ``open_orders()`` midway continues with byte-identical events.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.spot.engine import (
    ACCEPTED,
    AMENDED,
    BOOK,
    BUY,
    CANCELLED,
    EXPIRE_BOTH,
    EXPIRE_MAKER,
    EXPIRE_TAKER,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    PPM,
    REFRESHED,
    REJECTED,
    SELL,
    STOP_LIMIT,
    STOP_MARKET,
    STOP_TYPES,
    TRADE,
    TRAILING_STOP,
    TRIGGERED,
    Cancel,
    OrderBook,
    encode,
)

PRICES = st.integers(97, 103)
QTYS = st.integers(1, 12)
OWNERS = st.integers(1, 4)
SIDES = st.sampled_from((BUY, SELL))


def _kw(**fixed):
    return st.fixed_dictionaries(fixed)


LIMITS = _kw(
    owner=OWNERS,
    side=SIDES,
    order_type=st.just(LIMIT),
    qty=QTYS,
    price=PRICES,
    tif=st.sampled_from((GTC, GTC, IOC, FOK)),
)
POST_ONLY = _kw(owner=OWNERS, side=SIDES, order_type=st.just(LIMIT), qty=QTYS, price=PRICES, post_only=st.just(True))
ICEBERGS = st.builds(
    lambda owner, side, price, qty, display: dict(
        owner=owner, side=side, order_type=LIMIT, qty=qty, price=price, display_qty=min(display, qty)
    ),
    OWNERS,
    SIDES,
    PRICES,
    st.integers(5, 40),
    st.integers(1, 6),
)
MARKETS = _kw(owner=OWNERS, side=SIDES, order_type=st.just(MARKET), qty=QTYS, tif=st.sampled_from((IOC, IOC, FOK)))
QUOTE_BUYS = _kw(owner=OWNERS, side=st.just(BUY), order_type=st.just(MARKET), quote_qty=st.integers(50, 2500))
STOP_MARKETS = _kw(owner=OWNERS, side=SIDES, order_type=st.just(STOP_MARKET), qty=QTYS, stop_price=PRICES)
STOP_LIMITS = _kw(
    owner=OWNERS,
    side=SIDES,
    order_type=st.just(STOP_LIMIT),
    qty=QTYS,
    price=PRICES,
    stop_price=PRICES,
    tif=st.sampled_from((GTC, GTC, IOC, FOK)),
)
TRAILING = st.one_of(
    _kw(owner=OWNERS, side=SIDES, order_type=st.just(TRAILING_STOP), qty=QTYS, trail_ticks=st.integers(1, 4)),
    _kw(
        owner=OWNERS,
        side=SIDES,
        order_type=st.just(TRAILING_STOP),
        qty=QTYS,
        trail_ppm=st.sampled_from((5_000, 20_000, 40_000)),
    ),
)
INVALID = _kw(
    owner=OWNERS,
    side=st.sampled_from((BUY, SELL, "hold")),
    order_type=st.sampled_from((LIMIT, "odd")),
    qty=st.integers(-1, 3),
    price=st.sampled_from((None, 0, 100)),
)

# Self-trade prevention: absent (the default) or any mode, on every kind of order.
STPS = st.sampled_from((None, None, EXPIRE_MAKER, EXPIRE_TAKER, EXPIRE_BOTH))


def _with_stp(places):
    return st.tuples(places, STPS).map(lambda pair: pair[0] if pair[1] is None else {**pair[0], "stp": pair[1]})


PLACES = _with_stp(
    st.one_of(
        LIMITS,
        LIMITS,
        LIMITS,
        LIMITS,
        POST_ONLY,
        ICEBERGS,
        MARKETS,
        QUOTE_BUYS,
        STOP_MARKETS,
        STOP_LIMITS,
        TRAILING,
        INVALID,
    )
)
REF = st.integers(0, 20)  # which earlier order a cancel/amend refers to: 0 the latest, 1 the one before...
COMMANDS = st.one_of(
    st.tuples(st.just("place"), PLACES),
    st.tuples(st.just("place"), PLACES),
    st.tuples(st.just("place"), PLACES),
    st.tuples(st.just("cancel"), REF),
    st.tuples(st.just("amend"), REF, st.one_of(st.none(), st.integers(1, 30)), st.one_of(st.none(), PRICES)),
)
# Every log starts from a book with liquidity on both sides and a last trade price (so that
# market orders find something, trailing stops have a reference and stops can trigger).
PRELUDE = [
    ("place", dict(owner=5, side=SELL, order_type=LIMIT, qty=20, price=101)),
    ("place", dict(owner=6, side=SELL, order_type=LIMIT, qty=20, price=103, display_qty=4)),
    ("place", dict(owner=5, side=BUY, order_type=LIMIT, qty=20, price=99)),
    ("place", dict(owner=6, side=BUY, order_type=LIMIT, qty=20, price=97)),
    ("place", dict(owner=7, side=BUY, order_type=LIMIT, qty=2, price=101)),
]
LOGS = st.lists(COMMANDS, min_size=10, max_size=80).map(lambda commands: PRELUDE + commands)
BANDS = st.sampled_from(((None, None), (2, None), (None, 30_000), (4, 20_000)))

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


class Driver:
    """Applies a command log to a book, assigning order ids 1, 2, ... to places."""

    def __init__(self):
        self.ids = []

    def apply(self, book, command):
        if command[0] == "place":
            self.ids.append(len(self.ids) + 1)
            book.place(self.ids[-1], **command[1])
            return
        target = self.ids[-1 - command[1] % len(self.ids)] if self.ids else 1
        if command[0] == "cancel":
            book.cancel(target)
        else:
            book.amend(target, qty=command[2], price=command[3])


def _distance(price, ticks, ppm):
    if ticks:
        return ticks
    return max(1, price * ppm // PPM)


class Shadow:
    """Orders, priorities and the book depth as the event stream describes them."""

    def __init__(self, band_ticks, band_ppm):
        self.band = (band_ticks, band_ppm)
        self.orders = {}  # id -> dict
        self.depth = {BUY: {}, SELL: {}}
        self.seq = 0
        self.last = None
        self.placed = {}  # id -> place kwargs of the command being applied
        self.taker = None  # the order taking now (the last to start taking)
        self.stp_makers = 0  # own resting orders self-trade prevention cancelled for it
        self.last_match = None  # TRADE or "stp": what it did last

    # -- the band a market order gets from the best opposite price when it starts
    def _market_limit(self, side):
        opposite = self.depth[SELL if side == BUY else BUY]
        if not opposite:
            return None
        best = min(opposite) if side == BUY else max(opposite)
        ticks, ppm = self.band
        allowed = [a for a in (ticks, None if ppm is None else best * ppm // PPM) if a is not None]
        if not allowed:
            return None
        return best + min(allowed) if side == BUY else best - min(allowed)

    def _best_resting(self, side):
        candidates = [
            (o["price"] if side == SELL else -o["price"], o["priority"], oid)
            for oid, o in self.orders.items()
            if o["state"] == "resting" and o["side"] == side
        ]
        return min(candidates)[2] if candidates else None

    def _start_taking(self, order, seq):
        order["priority"] = seq
        if order["order_type"] == LIMIT or order["order_type"] == STOP_LIMIT:
            order["state"] = "resting"  # rests when done taking; makers are on the other side
            order["limit"] = order["price"]
        else:
            order["state"] = "taker"
            order["limit"] = self._market_limit(order["side"])
        order["took_from"] = seq
        self._taking(order)

    def _taking(self, order):
        self.taker = order["id"]
        self.stp_makers = 0
        self.last_match = None

    def event(self, ev):
        kind, seq = ev[0], ev[1]
        assert seq == self.seq + 1, f"sequence gap: {seq} after {self.seq}"
        self.seq = seq
        if kind == ACCEPTED:
            _, _, oid, owner, side, order_type, price, qty = ev
            kw = self.placed[oid]
            order = dict(
                id=oid,
                side=side,
                owner=owner,
                order_type=order_type,
                price=price,
                qty=qty,
                tif=kw.get("tif", GTC),
                display=kw.get("display_qty"),
                quote=kw.get("quote_qty"),
                stop=kw.get("stop_price"),
                trail=(kw.get("trail_ticks") or 0, kw.get("trail_ppm") or 0),
                stp=kw.get("stp", EXPIRE_MAKER),
                filled=0,
                cancelled=0,
                spent=0,
                due=False,
                fok_cancelled=False,
                priority=seq,
            )
            assert order_type == kw["order_type"] and side == kw["side"]
            self.orders[oid] = order
            if order_type in STOP_TYPES:
                order["state"] = "pending"
                if order_type == TRAILING_STOP:
                    assert self.last is not None
                    order["ref"] = self.last
            else:
                self._start_taking(order, seq)
        elif kind == TRIGGERED:
            _, _, oid, owner, stop_price, last_price = ev
            order = self.orders[oid]
            assert order["state"] == "pending" and order["due"], f"order {oid} triggered without a trade reaching it"
            if order["side"] == BUY:
                assert last_price >= stop_price
            else:
                assert last_price <= stop_price
            if order["order_type"] != TRAILING_STOP:
                assert stop_price == order["stop"]
            self._start_taking(order, seq)
        elif kind == AMENDED:
            _, _, oid, owner, price, qty, remaining, reserve, kept = ev
            order = self.orders[oid]
            assert order["state"] in ("resting", "pending")
            assert kept == (price == order["price"] and qty < order["qty"]), "amend priority rule"
            order["qty"] = qty
            assert remaining == qty - order["filled"] - order["cancelled"]
            if not kept:
                order["price"] = price
                order["priority"] = seq
                if order["state"] == "resting":  # re-queued: takes first if the new price crosses
                    order["limit"] = price
                    order["took_from"] = seq
                    self._taking(order)
        elif kind == REFRESHED:
            _, _, oid, owner, visible, reserve = ev
            order = self.orders[oid]
            assert order["display"] and 0 < visible <= order["display"]
            assert visible + reserve == order["qty"] - order["filled"] - order["cancelled"]
            order["priority"] = seq
        elif kind == TRADE:
            _, _, price, qty, maker_id, taker_id, maker_owner, taker_owner, aggressor, maker_left, taker_left = ev
            maker, taker = self.orders[maker_id], self.orders[taker_id]
            assert qty > 0
            assert maker_owner != taker_owner, "self-trade"
            assert taker_id == self.taker, f"trade for {taker_id} while {self.taker} is taking"
            self.last_match = TRADE
            assert taker["side"] == aggressor and maker["side"] != aggressor
            assert self._best_resting(maker["side"]) == maker_id, f"priority: {maker_id} traded out of turn"
            assert maker["price"] == price
            limit = taker["limit"]
            if limit is not None:
                assert (price <= limit) if aggressor == BUY else (price >= limit), "through the limit/band"
            for order, left in ((maker, maker_left), (taker, taker_left)):
                order["filled"] += qty
                if left is not None:
                    assert left == order["qty"] - order["filled"] - order["cancelled"]
                    if left == 0:
                        order["state"] = "done"
            taker["spent"] += price * qty
            if taker["quote"] is not None:
                assert taker["spent"] <= taker["quote"]
            self.last = price
            for order in self.orders.values():
                if order["state"] != "pending" or order["due"]:
                    continue
                if order["order_type"] == TRAILING_STOP:
                    ref = order["ref"]
                    distance = _distance(ref, *order["trail"])
                    if (price <= ref - distance) if order["side"] == SELL else (price >= ref + distance):
                        order["due"] = True
                    else:
                        order["ref"] = max(ref, price) if order["side"] == SELL else min(ref, price)
                elif (price >= order["stop"]) if order["side"] == BUY else (price <= order["stop"]):
                    order["due"] = True
        elif kind == CANCELLED:
            _, _, oid, owner, reason, qty = ev
            order = self.orders[oid]
            if reason == Cancel.SELF_TRADE and oid == self.taker:
                # the taker expired: it met its own resting order, the best on the other side
                assert order["stp"] in (EXPIRE_TAKER, EXPIRE_BOTH), f"{order['stp']} taker expired"
                assert order["tif"] != FOK, "a FOK order met its own order: it should have been rejected"
                if order["stp"] == EXPIRE_TAKER:
                    assert self.stp_makers == 0, "expire_taker cancelled a resting order"
                    best = self._best_resting(SELL if order["side"] == BUY else BUY)
                    assert best is not None and self.orders[best]["owner"] == order["owner"], "expired for no own order"
                    limit, price = order["limit"], self.orders[best]["price"]
                    if limit is not None:
                        assert (price <= limit) if order["side"] == BUY else (price >= limit), "own order out of reach"
                else:
                    assert self.stp_makers == 1 and self.last_match == "stp", "expire_both: its own order goes first"
            elif reason == Cancel.SELF_TRADE:
                assert self._best_resting(order["side"]) == oid, "self-trade cancel out of turn"
                taker = self.orders[self.taker]
                assert taker["owner"] == order["owner"] and taker["side"] != order["side"], "not a self-trade"
                assert taker["stp"] != EXPIRE_TAKER, "expire_taker cancelled a resting order"
                if taker["stp"] == EXPIRE_BOTH:
                    assert self.stp_makers == 0, "expire_both cancelled a second resting order"
                self.stp_makers += 1
                self.last_match = "stp"
            if order["quote"] is not None:
                assert qty == 0
                opposite = self.depth[SELL]
                if reason == Cancel.NO_LIQUIDITY:
                    assert not opposite
            else:
                assert qty == order["qty"] - order["filled"] - order["cancelled"]
                if reason == Cancel.NO_LIQUIDITY:
                    assert not self.depth[SELL if order["side"] == BUY else BUY]
                if reason == Cancel.PROTECTION_BAND:
                    opposite = self.depth[SELL if order["side"] == BUY else BUY]
                    best = min(opposite) if order["side"] == BUY else max(opposite)
                    assert (best > order["limit"]) if order["side"] == BUY else (best < order["limit"])
            if reason == Cancel.FOK_UNFILLABLE:
                order["fok_cancelled"] = True
            order["cancelled"] += qty
            order["state"] = "done"
        elif kind == BOOK:
            _, _, side, price, qty = ev
            if qty:
                self.depth[side][price] = qty
            else:
                self.depth[side].pop(price, None)
        else:
            assert kind == REJECTED

    def check_book(self, book):
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask, "crossed book at rest"
        snap = book.snapshot()
        assert dict(snap.bids) == self.depth[BUY] and dict(snap.asks) == self.depth[SELL]
        assert [p for p, _ in snap.bids] == sorted(self.depth[BUY], reverse=True)
        assert [p for p, _ in snap.asks] == sorted(self.depth[SELL])
        assert snap.seq == self.seq and snap.last_price == self.last
        open_orders = {spec.order_id: spec for spec in book.open_orders()}
        sums = {BUY: {}, SELL: {}}
        for oid, order in self.orders.items():
            spec = open_orders.get(oid)
            remaining = order["qty"] - order["filled"] - order["cancelled"] if order["qty"] is not None else 0
            if order["state"] in ("resting", "pending"):
                assert spec is not None, f"order {oid} should be open"
                assert spec.remaining == remaining > 0, "quantity not conserved"
                assert spec.qty == order["qty"]
            else:
                assert spec is None, f"order {oid} should not be open"
                if order["quote"] is None:
                    assert order["filled"] + order["cancelled"] == order["qty"], "quantity not conserved"
            if order["state"] == "resting":
                assert spec.price == order["price"]
                visible = spec.remaining - spec.reserve
                assert visible > 0
                if order["display"]:
                    assert visible <= order["display"], "iceberg shows more than its display"
                else:
                    assert spec.reserve == 0
                sums[order["side"]][order["price"]] = sums[order["side"]].get(order["price"], 0) + visible
            if order["state"] == "pending":
                assert not order["due"], f"stop {oid} was reached but did not trigger"
                if order["order_type"] == TRAILING_STOP:
                    assert spec.trail_reference == order["ref"]
            if order["tif"] == FOK and order["state"] == "done" and "took_from" in order:
                assert order["filled"] in (0, order["qty"])
                assert order["filled"] == order["qty"] or order["fok_cancelled"], "FOK partially filled"
        assert sums == self.depth, "level aggregates differ from the open orders' visible quantities"


def _run(commands, band):
    book = OrderBook("PROP", market_band_ticks=band[0], market_band_ppm=band[1])
    shadow = Shadow(*band)
    driver = Driver()
    for command in commands:
        if command[0] == "place":
            shadow.placed[len(driver.ids) + 1] = dict(command[1])
        driver.apply(book, command)
        for event in book.drain():
            shadow.event(event)
        shadow.check_book(book)
    return book, shadow


@SETTINGS
@given(LOGS, BANDS)
def test_invariants_hold_after_every_event_and_command(commands, band):
    book, shadow = _run(commands, band)
    assert shadow.seq == book.seq


# The hot path (plain GTC limit orders, IOC, market orders, cancels, amends) and icebergs on
# four prices: denser books and more trades per command than the full mix, cheap enough for
# more examples.
CORE_PLACES = _with_stp(
    st.one_of(
        _kw(owner=OWNERS, side=SIDES, order_type=st.just(LIMIT), qty=QTYS, price=st.integers(99, 102)),
        _kw(owner=OWNERS, side=SIDES, order_type=st.just(LIMIT), qty=QTYS, price=st.integers(99, 102)),
        st.builds(
            lambda owner, side, price, qty, display: dict(
                owner=owner, side=side, order_type=LIMIT, qty=qty, price=price, display_qty=min(display, qty)
            ),
            OWNERS,
            SIDES,
            st.integers(99, 102),
            st.integers(5, 30),
            st.integers(1, 4),
        ),
        _kw(
            owner=OWNERS, side=SIDES, order_type=st.just(LIMIT), qty=QTYS, price=st.integers(99, 102), tif=st.just(IOC)
        ),
        _kw(owner=OWNERS, side=SIDES, order_type=st.just(MARKET), qty=QTYS),
    )
)
CORE_LOGS = st.lists(
    st.one_of(
        st.tuples(st.just("place"), CORE_PLACES),
        st.tuples(st.just("place"), CORE_PLACES),
        st.tuples(st.just("place"), CORE_PLACES),
        st.tuples(st.just("cancel"), REF),
        st.tuples(st.just("amend"), REF, st.one_of(st.none(), QTYS), st.one_of(st.none(), st.integers(99, 102))),
    ),
    min_size=10,
    max_size=60,
)


@settings(SETTINGS, max_examples=200)
@given(CORE_LOGS, BANDS)
def test_invariants_hold_on_dense_books(commands, band):
    book, shadow = _run(commands, band)
    assert shadow.seq == book.seq


def _encoded(commands, band, split=None):
    book = OrderBook("PROP", market_band_ticks=band[0], market_band_ppm=band[1])
    driver = Driver()
    out = []
    for index, command in enumerate(commands):
        if index == split:
            book = OrderBook.rebuild(
                book.open_orders(),
                symbol="PROP",
                seq=book.seq,
                last_price=book.last_price,
                market_band_ticks=band[0],
                market_band_ppm=band[1],
            )
            assert book.drain() == []
        driver.apply(book, command)
        out.extend(encode(event) for event in book.drain())
    return out, [spec.to_dict() for spec in book.open_orders()]


@SETTINGS
@given(LOGS, BANDS)
def test_replaying_a_command_log_gives_byte_identical_events(commands, band):
    first = _encoded(commands, band)
    second = _encoded(commands, band)
    assert first == second
    assert len(first[0]) >= len(commands)  # every command emits at least one event


@SETTINGS
@given(LOGS, BANDS, st.data())
def test_a_book_rebuilt_from_its_open_orders_continues_identically(commands, band, data):
    split = data.draw(st.integers(0, len(commands)))
    assert _encoded(commands, band, split) == _encoded(commands, band)
