"""A simulated spot venue: its own book around the index, IOC fills against it, faults.

The book is a pure function of the index and the venue's settings: a reference price
``index x (1 + offset_bps)``, the best bid and ask ``spread_bps / 2`` either side of it, then
``levels`` levels a side ``step_bps`` apart, level ``i`` holding ``level_quantity x (1 + i x
growth)``. So two venues with different offsets and spreads disagree the way real ones do,
and a test can compute what the router should do. Liquidity does not deplete: each order
meets the book as the index makes it at that moment.

An IOC order fills at the level prices within its limit (the rest expires), pays ``fee`` of
what it receives, and is stored under its client order id before the reply: a second send
of the same id returns the stored order without trading again, and ``fetch_order`` answers
it. The store is Redis (shared by every process using ``redis_url``) or, without one, this
process's memory.

Faults, drawn per placement from a seeded generator: ``timeout`` (the request is lost before
execution: nothing exists), ``ambiguous`` (executed and stored, then the reply is lost) and
``reject``; both timeouts raise ``VenueTimeout``. ``latency_ms`` is spent half before and
half after execution; a latency reaching ``timeout_ms`` is a timeout after execution. Like Binance, a request reaching execution later than
``recv_window_ms`` after it was sent is refused, which bounds how late a lost order can appear.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal

from .base import (
    BUY,
    CANCELLED,
    FILLED,
    PARTIALLY_FILLED,
    SELL,
    Book,
    Execution,
    SpotVenue,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)

BPS = Decimal(10_000)
BASE_QUANTUM = Decimal("0.00000001")
QUOTE_QUANTUM = Decimal("0.000001")

DEFAULTS = {
    "offset_bps": "0", "spread_bps": "10", "step_bps": "5", "levels": 10, "level_quantity": "0.5", "growth": "0.5",
    "fee": "0.001", "tick": "0.01", "lot": "0.00001", "latency_ms": 0, "timeout_ms": 2000, "recv_window_ms": 1000,
    "timeout": 0.0, "ambiguous": 0.0, "reject": 0.0, "seed": None,
}

_memory: dict[str, dict[str, str]] = {}
_memory_counts: dict[str, dict[str, int]] = {}
_memory_lock = threading.Lock()


def _index_price(symbol: str) -> Decimal:
    from marketdata.selectors import index_is_fresh, index_latest

    latest = index_latest(underlying=symbol.split("-")[0])
    if not index_is_fresh(latest):
        raise VenueUnavailable(f"no fresh index for {symbol}: the simulated venue has no book")
    return latest.price


class SimulatedSpotVenue(SpotVenue):
    def __init__(self, name: str, config: Mapping | None = None, *, price_source: Callable[[str], Decimal] | None = None,
                 redis_url: str | None = None, sleep: Callable[[float], None] = time.sleep):
        unknown = set(config or {}) - set(DEFAULTS) - {"class"}
        if unknown:
            raise ValueError(f"venue {name}: unknown settings {sorted(unknown)}")
        settings = {**DEFAULTS, **{k: v for k, v in (config or {}).items() if k != "class"}}
        self.name = name
        self.offset = Decimal(str(settings["offset_bps"])) / BPS
        self.half_spread = Decimal(str(settings["spread_bps"])) / BPS / 2
        self.step = Decimal(str(settings["step_bps"])) / BPS
        self.levels = int(settings["levels"])
        self.level_quantity = Decimal(str(settings["level_quantity"]))
        self.growth = Decimal(str(settings["growth"]))
        self.fees = Decimal(str(settings["fee"]))
        self.tick = Decimal(str(settings["tick"]))
        self.lot = Decimal(str(settings["lot"]))
        self.latency = float(settings["latency_ms"]) / 1000
        self.timeout_seconds = float(settings["timeout_ms"]) / 1000
        self.recv_window = float(settings["recv_window_ms"]) / 1000
        self.grace_seconds = self.recv_window + 1.0
        self.faults = {k: float(settings[k]) for k in ("timeout", "ambiguous", "reject")}
        if sum(self.faults.values()) > 1:
            raise ValueError(f"venue {name}: fault probabilities add up to more than 1")
        self._rng = random.Random(settings["seed"])
        self._price = price_source or _index_price
        self._sleep = sleep
        self._prefix = f"spotvenue:{name}"
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=self.timeout_seconds,
                                               socket_connect_timeout=self.timeout_seconds)

    # --- the book ----------------------------------------------------------------------------

    def order_book(self, symbol: str, depth: int = 10) -> Book:
        reference = self._price(symbol) * (1 + self.offset)
        bids, asks = [], []
        for i in range(min(depth, self.levels)):
            away = self.half_spread + self.step * i
            quantity = (self.level_quantity * (1 + self.growth * i) / self.lot).to_integral_value(ROUND_FLOOR) * self.lot
            asks.append((_to_tick(reference * (1 + away), self.tick, ROUND_CEILING), quantity))
            bids.append((_to_tick(reference * (1 - away), self.tick, ROUND_FLOOR), quantity))
        return Book(bids=bids, asks=asks)

    # --- orders ------------------------------------------------------------------------------

    def place_ioc(self, symbol, side, quantity, limit_price, client_order_id) -> Execution:
        if side not in (BUY, SELL) or quantity <= 0 or limit_price <= 0:
            raise VenueRejected(f"bad order: {side} {quantity} at {limit_price}")
        sent = time.monotonic()
        fault = self._draw()
        self._sleep(self.latency / 2)  # the request in flight
        if fault == "timeout":
            raise VenueTimeout("no answer: the request was lost on the way")
        if fault == "reject":
            raise VenueRejected("the venue refused the order")
        if time.monotonic() - sent > self.recv_window:
            raise VenueUnavailable("the request reached the venue outside its receive window: not executed")
        existing = self.fetch_order(client_order_id)
        if existing is not None:  # a resend of the same id: the venue answers the first order
            self._sleep(self.latency / 2)
            return existing
        execution = self._fill(symbol, side, quantity, limit_price, client_order_id)
        execution = self._store(execution)
        self._sleep(self.latency / 2)  # the reply in flight
        if fault == "ambiguous":
            raise VenueTimeout("the order executed but the reply was lost")
        if self.latency >= self.timeout_seconds:  # the caller gave up before the reply came
            raise VenueTimeout(f"no reply within {self.timeout_seconds:g} s (the order executed)")
        return execution

    def fetch_order(self, client_order_id, symbol=None) -> Execution | None:
        if self._redis is not None:
            value = self._redis.get(f"{self._prefix}:order:{client_order_id}")
            value = value.decode() if value is not None else None
        else:
            with _memory_lock:
                value = _memory.get(self.name, {}).get(client_order_id)
        return None if value is None else Execution.from_dict(json.loads(value))

    def executions(self, client_order_id: str) -> int:
        """How many times ``client_order_id`` traded here: a test's proof of no double fill."""
        if self._redis is not None:
            return int(self._redis.hget(f"{self._prefix}:executions", client_order_id) or 0)
        with _memory_lock:
            return _memory_counts.get(self.name, {}).get(client_order_id, 0)

    # --- internals ---------------------------------------------------------------------------

    def _draw(self) -> str | None:
        u = self._rng.random()
        for fault, probability in self.faults.items():
            if u < probability:
                return fault
            u -= probability
        return None

    def _fill(self, symbol, side, quantity, limit_price, client_order_id) -> Execution:
        book = self.order_book(symbol, self.levels)
        levels = book.asks if side == BUY else book.bids
        left, filled, cost = quantity, Decimal(0), Decimal(0)
        for price, available in levels:
            if left <= 0 or (price > limit_price if side == BUY else price < limit_price):
                break
            take = min(left, available)
            filled += take
            cost += price * take
            left -= take
        # rounding in the venue's favour: a buyer's cost and every fee up, a seller's proceeds down
        cost = cost.quantize(QUOTE_QUANTUM, ROUND_UP if side == BUY else ROUND_DOWN)
        if side == BUY:
            fee = (filled * self.fees).quantize(BASE_QUANTUM, ROUND_UP)
            fee_asset = symbol.split("-")[0]
        else:
            fee = (cost * self.fees).quantize(QUOTE_QUANTUM, ROUND_UP)
            fee_asset = symbol.split("-")[1]
        status = FILLED if filled == quantity else PARTIALLY_FILLED if filled else CANCELLED
        return Execution(
            client_order_id=client_order_id, venue_order_id=uuid.uuid4().hex[:16], symbol=symbol, side=side,
            status=status, quantity=quantity, filled=filled, cost=cost, fee=fee, fee_asset=fee_asset,
        )

    def _store(self, execution: Execution) -> Execution:
        """Keep the first order per client order id (a racing duplicate gets that one)."""
        payload = json.dumps(execution.to_dict())
        coid = execution.client_order_id
        if self._redis is not None:
            if self._redis.set(f"{self._prefix}:order:{coid}", payload, nx=True):
                self._redis.hincrby(f"{self._prefix}:executions", coid, 1)
                return execution
        else:
            with _memory_lock:
                orders = _memory.setdefault(self.name, {})
                if coid not in orders:
                    orders[coid] = payload
                    counts = _memory_counts.setdefault(self.name, {})
                    counts[coid] = counts.get(coid, 0) + 1
                    return execution
        return self.fetch_order(coid)


def _to_tick(value: Decimal, tick: Decimal, rounding) -> Decimal:
    return (value / tick).to_integral_value(rounding) * tick
