"""The simulated venue: a book of its own around a reference price, fills, fees, latency and
injected faults. Pure Python (no Django): the tests run it in plain subprocesses too.

**The book** is a pure function of the reference price (the platform's index) and the
configuration: ``reference x (1 + offset_bps)``, the best bid and ask ``spread_bps / 2``
either side of it, then ``levels`` levels a side ``step_bps`` apart, level ``i`` holding
``level_quantity x (1 + i x growth)`` (whole lots; prices on the tick). Two venues with
different offsets and spreads disagree the way real ones do, and a test can compute what the
router should do. Liquidity does not deplete: each order meets the book as the index makes
it at that moment.

**IOC limit orders** (smart routing) fill at the book's level prices within their limit; the
rest expires. **Market orders** (settlement) fill at the reference price moved by a random
slippage of at most ``slippage_bps`` either way. Both pay a taker fee of ``fee_bps`` of the
asset received. Base quantities are kept to 8 decimals and quote amounts to 6, always rounding
in the venue's favour (a buyer's cost up, a seller's proceeds down, fees up).

**Faults** are drawn per call with configured probabilities, at most one per call:

* ``rate_limit`` -> ``VenueRateLimited``, ``unavailable`` (alias ``5xx``) -> ``VenueUnavailable``,
  ``reject`` -> ``VenueRejected``, ``insufficient_balance`` (alias ``insufficient``) ->
  ``VenueInsufficientBalance``, ``timeout`` -> ``VenueTimeout``: all before execution, nothing
  is created (a timeout is raised at once rather than after ``timeout_ms``);
* ``ambiguous`` -> the order IS executed and stored, then the reply is lost: ``VenueTimeout``.

Latency is split as on a real link: half before execution (the request in flight) and half
after (the reply in flight), so a caller killed during the second half has placed an order it
never heard about; a latency reaching ``timeout_ms`` means the caller gave up before the reply
came (``VenueTimeout``, the order executed). As on Binance, a request that reaches execution
later than ``recv_window_ms`` after it was sent is refused (``VenueUnavailable``, nothing
executed): that bounds how long an order can still appear after a lost reply
(``unknown_outcome_grace_s``), even if its sender stalled.

**The order store** is shared by every process using the same Redis URL and key prefix, since
workers die and restart: a hash per client order id holds the first order placed with it, a
hash of placement counts per id and a list of every placement let a test (or an ops check)
prove no order was placed twice, and a hash of the account's net flows per asset answers
``balances``. One MULTI/EXEC round trip records a placement. Without a Redis URL the store is
in memory (embedded mode: one process).

Like many real venues, this one does not deduplicate client order ids of *market* orders:
sending the same id twice executes twice (both are recorded; ``fetch_order`` answers the
first). An *IOC* order sent again under an id the venue has seen is answered with the first
order, without trading again.

The account starts empty and the venue extends it unlimited credit: ``balances`` are the net
flows of what it executed (negative for what it spent).
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_UP,
    Decimal,
    InvalidOperation,
)

from .base import (
    BUY,
    CANCELLED,
    FILLED,
    Book,
    Execution,
    Venue,
    VenueError,
    VenueInsufficientBalance,
    VenueRateLimited,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
    platform_symbol,
    symbol_assets,
    validate_ioc_order,
    validate_lookup,
    validate_market_order,
    validate_symbol,
)

logger = logging.getLogger(__name__)

BASE_QUANTUM = Decimal("0.00000001")  # BTC/ETH: 8 decimals
QUOTE_QUANTUM = Decimal("0.000001")  # USDT: 6 decimals
PRICE_QUANTUM = Decimal("0.01")
BALANCE_SCALE = 8  # the store keeps net flows in integer units of 10^-8
STORE_WRITE_MARGIN_S = 1.0
STORE_MAX_CONNECTIONS = 4096
BPS = Decimal(10_000)
DEFAULT_KEY_PREFIX = "settlement:venue:sim"
SETTING_NAME = "SETTLEMENT_VENUE_FAULTS"

# Order matters only for reproducibility with a seed: one uniform draw picks the fault.
FAULTS = ("rate_limit", "unavailable", "timeout", "reject", "insufficient_balance", "ambiguous")
LOOKUP_FAULTS = ("rate_limit", "unavailable", "timeout")
ALIASES = {"5xx": "unavailable", "insufficient": "insufficient_balance"}
DECIMALS = (
    "slippage_bps",
    "fee_bps",
    "offset_bps",
    "spread_bps",
    "step_bps",
    "level_quantity",
    "growth",
    "tick",
    "lot",
)


@dataclass(frozen=True)
class SimulatedVenueConfig:
    """Fault probabilities (each in [0, 1], summing to at most 1), the venue's timing, its fills
    and its book.

    ``fetch_faults`` applies the transient faults (rate limit, unavailable, timeout) to
    ``fetch_order`` too, with the same probabilities. ``fee`` (a fraction) may be given instead
    of ``fee_bps``.
    """

    timeout: float = 0.0
    ambiguous: float = 0.0
    rate_limit: float = 0.0
    unavailable: float = 0.0
    reject: float = 0.0
    insufficient_balance: float = 0.0
    latency_ms: float = 0.0
    slippage_bps: Decimal = Decimal(0)
    fee_bps: Decimal = Decimal(10)
    timeout_ms: float = 5_000.0
    recv_window_ms: float = 2_000.0
    retry_after_s: float = 1.0
    seed: int | None = None
    fetch_faults: bool = False
    offset_bps: Decimal = Decimal(0)
    spread_bps: Decimal = Decimal(10)
    step_bps: Decimal = Decimal(5)
    levels: int = 10
    level_quantity: Decimal = Decimal("0.5")
    growth: Decimal = Decimal("0.5")
    tick: Decimal = PRICE_QUANTUM
    lot: Decimal = Decimal("0.00001")

    def __post_init__(self):
        for name in FAULTS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability between 0 and 1, not {value!r}")
        total = sum(getattr(self, name) for name in FAULTS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"the fault probabilities add up to {total:g}, more than 1")
        if not isinstance(self.timeout_ms, (int, float)) or not self.timeout_ms > 0:
            raise ValueError(f"timeout_ms must be positive, not {self.timeout_ms!r}")
        if not isinstance(self.latency_ms, (int, float)) or not self.latency_ms >= 0:
            raise ValueError(f"latency_ms must be at least 0, not {self.latency_ms!r}")
        if not isinstance(self.recv_window_ms, (int, float)) or not self.latency_ms / 2 < self.recv_window_ms:
            raise ValueError(
                f"recv_window_ms must exceed half the latency ({self.latency_ms / 2:g}), not {self.recv_window_ms!r}"
            )
        for name in DECIMALS:
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{name} must be a finite Decimal, not {value!r}")
        for name in ("slippage_bps", "fee_bps"):
            value = getattr(self, name)
            if not 0 <= value < BPS:
                raise ValueError(f"{name} must be a Decimal between 0 and 10000, not {value!r}")
        if not -BPS < self.offset_bps < BPS:
            raise ValueError(f"offset_bps must be between -10000 and 10000, not {self.offset_bps!r}")
        for name in ("spread_bps", "step_bps", "level_quantity", "growth"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, not {getattr(self, name)!r}")
        for name in ("tick", "lot"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if not isinstance(self.levels, int) or isinstance(self.levels, bool) or self.levels < 0:
            raise ValueError(f"levels must be a whole number at least 0, not {self.levels!r}")
        if not isinstance(self.retry_after_s, (int, float)) or self.retry_after_s < 0:
            raise ValueError(f"retry_after_s must be at least 0, not {self.retry_after_s!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise ValueError(f"seed must be an integer, not {self.seed!r}")

    @property
    def fault_probability(self) -> float:
        return sum(getattr(self, name) for name in FAULTS)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> SimulatedVenueConfig:
        """From a dict of keys (aliases allowed) to numbers or their strings."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, object] = {}
        for raw_key, raw_value in values.items():
            key = ALIASES.get(str(raw_key).strip().lower(), str(raw_key).strip().lower())
            if key == "fee":  # a fraction of what is received, as SPOT_VENUES give it
                key, raw_value = "fee_bps", _coerce("fee", raw_value) * BPS
            if key not in known:
                raise ValueError(
                    f"unknown key {raw_key!r} (known: {', '.join(sorted(known | set(ALIASES) | {'fee'}))})"
                )
            if key in kwargs:
                raise ValueError(f"{key!r} is given twice")
            kwargs[key] = _coerce(key, raw_value)
        return cls(**kwargs)

    @classmethod
    def parse(cls, text: str | None) -> SimulatedVenueConfig:
        """From the compact form ``"timeout=0.2,rate_limit=0.05,latency_ms=5,fee_bps=10"``
        (commas or semicolons between items; an empty string gives the defaults). Anything
        malformed is a ``ValueError`` naming the offending item."""
        if text is None:
            return cls()
        if not isinstance(text, str):
            raise ValueError(
                f"{SETTING_NAME} must be a string like 'timeout=0.1,latency_ms=5', not {type(text).__name__}"
            )
        values: dict[str, str] = {}
        for item in text.replace(";", ",").split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ValueError(f"{SETTING_NAME}: {item!r} is not key=value (e.g. 'timeout=0.1,latency_ms=5')")
            canonical = ALIASES.get(key.strip().lower(), key.strip().lower())
            if canonical in {ALIASES.get(k, k) for k in values}:
                raise ValueError(f"{SETTING_NAME}: {key.strip()!r} is given twice")
            values[key.strip().lower()] = value.strip()
        try:
            return cls.from_mapping(values)
        except ValueError as exc:
            raise ValueError(f"{SETTING_NAME}={text!r}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, name: str = SETTING_NAME) -> SimulatedVenueConfig:
        environ = os.environ if environ is None else environ
        return cls.parse(environ.get(name, ""))

    def to_string(self) -> str:
        """The compact form of the non-default values (``parse`` reads it back)."""
        default = SimulatedVenueConfig()
        items = []
        for key, value in asdict(self).items():
            if value != getattr(default, key):
                items.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
        return ",".join(items)


def _coerce(key: str, value: object):
    if key in DECIMALS or key == "fee":
        if isinstance(value, float):
            value = repr(value)
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValueError(f"{key}={value!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{key}={value!r} is not a finite number")
        return number
    if key in ("seed", "levels"):
        if value is None and key == "seed":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"{key}={value!r} is not an integer") from None
    if key == "fetch_faults":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"fetch_faults={value!r} is not a boolean (true/false)")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"{key}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{key}={value!r} is not a finite number")
    return number


# --- stores ----------------------------------------------------------------------------------


def _units(amount: Decimal) -> int:
    return int(amount.scaleb(BALANCE_SCALE).to_integral_value(ROUND_FLOOR))


class _MemoryStore:
    """One process (embedded mode, unit tests)."""

    shared = False

    def __init__(self):
        self._lock = threading.Lock()
        self._first: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._placements: list[str] = []
        self._balances: dict[str, int] = {}

    def record(
        self, client_order_id: str, payload: str, flows: dict[str, Decimal], *, only_first: bool = False
    ) -> str | int:
        """Record a placement; its count for this id. With ``only_first``, an id already
        recorded records nothing and answers the first order's payload instead."""
        with self._lock:
            if only_first and client_order_id in self._first:
                return self._first[client_order_id]
            self._first.setdefault(client_order_id, payload)
            self._counts[client_order_id] = self._counts.get(client_order_id, 0) + 1
            self._placements.append(payload)
            for asset, amount in flows.items():
                self._balances[asset] = self._balances.get(asset, 0) + _units(amount)
            return self._counts[client_order_id]

    def first(self, client_order_id: str) -> str | None:
        with self._lock:
            return self._first.get(client_order_id)

    def count(self, client_order_id: str) -> int:
        with self._lock:
            return self._counts.get(client_order_id, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def all(self) -> list[str]:
        with self._lock:
            return list(self._placements)

    def total(self) -> int:
        with self._lock:
            return len(self._placements)

    def balances(self) -> dict[str, int]:
        with self._lock:
            return dict(self._balances)

    def reset(self) -> None:
        with self._lock:
            self._first.clear()
            self._counts.clear()
            self._placements.clear()
            self._balances.clear()


class _RedisStore:
    """Shared by every process on the same Redis and prefix.

    ``{prefix}:order:{client_order_id}`` hash, field ``order``: the first order (HSETNX);
    ``{prefix}:counts`` hash: placements per client order id (HINCRBY);
    ``{prefix}:placements`` list: every placement, duplicates included (RPUSH);
    ``{prefix}:balances`` hash: the account's net flow per asset in units of 10^-8 (HINCRBY).
    """

    shared = True

    def __init__(self, url: str | None, prefix: str, timeout_s: float, client=None):
        if client is None:
            import redis

            # redis-py's pool holds at most 100 connections unless told otherwise, and fails the
            # 101st call at once: a process with hundreds of venue calls in flight
            # (SETTLEMENT_VENUE_CONCURRENCY) needs a connection for each.
            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                health_check_interval=30,
                max_connections=STORE_MAX_CONNECTIONS,
            )
        self.client = client
        self.prefix = prefix
        self.counts_key = f"{prefix}:counts"
        self.placements_key = f"{prefix}:placements"
        self.balances_key = f"{prefix}:balances"

    def order_key(self, client_order_id: str) -> str:
        return f"{self.prefix}:order:{client_order_id}"

    def record(
        self, client_order_id: str, payload: str, flows: dict[str, Decimal], *, only_first: bool = False
    ) -> str | int:
        # A resend must not trade again: with only_first, the first writer of the id records it.
        if only_first and not self.client.hsetnx(self.order_key(client_order_id), "order", payload):
            return self.first(client_order_id)
        pipe = self.client.pipeline(transaction=True)
        if not only_first:
            pipe.hsetnx(self.order_key(client_order_id), "order", payload)
        pipe.hincrby(self.counts_key, client_order_id, 1)
        pipe.rpush(self.placements_key, payload)
        for asset, amount in flows.items():
            pipe.hincrby(self.balances_key, asset, _units(amount))
        replies = pipe.execute()
        return int(replies[0 if only_first else 1])

    def first(self, client_order_id: str) -> str | None:
        import redis

        key = self.order_key(client_order_id)
        try:
            value = self.client.hget(key, "order")
        except redis.ResponseError:  # written as a plain string by an earlier version
            value = self.client.get(key)
        return None if value is None else value.decode()

    def count(self, client_order_id: str) -> int:
        return int(self.client.hget(self.counts_key, client_order_id) or 0)

    def counts(self) -> dict[str, int]:
        return {key.decode(): int(value) for key, value in self.client.hscan_iter(self.counts_key, count=1000)}

    def all(self) -> list[str]:
        return [value.decode() for value in self.client.lrange(self.placements_key, 0, -1)]

    def total(self) -> int:
        return int(self.client.llen(self.placements_key))

    def balances(self) -> dict[str, int]:
        return {key.decode(): int(value) for key, value in self.client.hgetall(self.balances_key).items()}

    def reset(self) -> None:
        pattern = _glob_escape(self.prefix) + ":*"
        batch = []
        for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                self.client.delete(*batch)
                batch.clear()
        if batch:
            self.client.delete(*batch)


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _is_redis_error(exc: BaseException) -> bool:
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a requirement
        return False
    return isinstance(exc, redis.RedisError)


# --- the venue -------------------------------------------------------------------------------


class SimulatedVenue(Venue):
    def __init__(
        self,
        *,
        price_source: Callable[[str], Decimal],
        config: SimulatedVenueConfig | None = None,
        redis_url: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        name: str = "simulated",
        redis_client=None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """``price_source(symbol)`` gives the reference price of e.g. ``"BTC-USDT"``. With a
        ``redis_url`` (or a ready ``redis_client``) the order store is shared across
        processes under ``key_prefix``; otherwise it lives in this venue's memory."""
        self.config = config or SimulatedVenueConfig()
        self.name = name
        self.price_source = price_source
        self.taker_fee = self.config.fee_bps / BPS
        self.timeout_s = self.config.timeout_ms / 1000
        # As on Binance, a request reaching the matching engine later than its receive window
        # is refused; so once that window (plus the store write) has passed, a lookup that
        # finds nothing proves the order will never exist, even if its sender only stalled.
        self.unknown_outcome_grace_s = self.config.recv_window_ms / 1000 + STORE_WRITE_MARGIN_S
        self.round_trip_ms = float(self.config.latency_ms)
        self._sleep = sleep
        self._rng = random.Random(self.config.seed)
        self._rng_lock = threading.Lock()
        if redis_url or redis_client is not None:
            self.store = _RedisStore(redis_url, key_prefix, self.timeout_s, client=redis_client)
        else:
            self.store = _MemoryStore()

    # -- the interface --

    def order_book(self, symbol: str, depth: int = 10) -> Book:
        validate_symbol(symbol)
        config = self.config
        reference = self._reference_price(platform_symbol(symbol), None) * (1 + config.offset_bps / BPS)
        half_spread, step = config.spread_bps / BPS / 2, config.step_bps / BPS
        bids, asks = [], []
        for i in range(min(depth, config.levels)):
            away = half_spread + step * i
            quantity = (config.level_quantity * (1 + config.growth * i) / config.lot).to_integral_value(
                ROUND_FLOOR
            ) * config.lot
            asks.append((_to_tick(reference * (1 + away), config.tick, ROUND_CEILING), quantity))
            bids.append((_to_tick(reference * (1 - away), config.tick, ROUND_FLOOR), quantity))
        return Book(bids=bids, asks=asks)

    def ioc_order(self, *, client_order_id, symbol, side, amount, limit_price) -> Execution:
        validate_ioc_order(
            client_order_id=client_order_id, symbol=symbol, side=side, amount=amount, limit_price=limit_price
        )
        symbol = platform_symbol(symbol)
        started = time.monotonic()
        fault, _ = self._draw(FAULTS)
        half_latency = self.config.latency_ms / 2000
        self._pause(half_latency)  # the request in flight
        self._raise_before_execution(fault, client_order_id)
        existing = self._stored(client_order_id, symbol)
        if existing is not None:  # a resend of the same id: the venue answers the first order
            self._pause(half_latency)
            return existing
        order = self._fill_from_book(client_order_id, symbol, side, amount, limit_price)
        self._within_receive_window(started, client_order_id)
        first = self._record(order, only_first=True)
        if isinstance(first, str):  # a racing resend recorded the id first: that order stands
            order = Execution.from_json(first)
        self._pause(half_latency)  # the reply in flight
        self._raise_after_execution(fault, client_order_id)
        return order

    def market_order(self, *, client_order_id, symbol, side, amount=None, quote_amount=None) -> Execution:
        validate_market_order(
            client_order_id=client_order_id, symbol=symbol, side=side, amount=amount, quote_amount=quote_amount
        )
        symbol = platform_symbol(symbol)
        started = time.monotonic()
        fault, u = self._draw(FAULTS)
        half_latency = self.config.latency_ms / 2000
        self._pause(half_latency)  # the request in flight
        self._raise_before_execution(fault, client_order_id)
        order = self._fill_at_reference(client_order_id, symbol, side, amount, quote_amount, u)
        self._within_receive_window(started, client_order_id)
        count = self._record(order)
        if count > 1:
            logger.warning("simulated venue %s: client order id %s placed %d times", self.name, client_order_id, count)
        self._pause(half_latency)  # the reply in flight
        self._raise_after_execution(fault, client_order_id)
        return order

    def fetch_order(self, *, client_order_id, symbol) -> Execution | None:
        validate_lookup(client_order_id=client_order_id, symbol=symbol)
        if self.config.fetch_faults:
            fault, _ = self._draw(LOOKUP_FAULTS)
            self._raise_before_execution(fault, client_order_id)
        self._pause(self.config.latency_ms / 1000)
        return self._stored(client_order_id, platform_symbol(symbol))

    def balances(self) -> dict[str, Decimal]:
        try:
            units = self.store.balances()
        except Exception as exc:
            if not _is_redis_error(exc):
                raise
            raise VenueUnavailable(f"order store unavailable: {exc}", venue=self.name) from exc
        return {asset: Decimal(value).scaleb(-BALANCE_SCALE) for asset, value in sorted(units.items())}

    # -- tests and ops --

    def placements(self, client_order_id: str) -> int:
        """How many times an order was executed with this client order id."""
        return self.store.count(client_order_id)

    def duplicate_client_order_ids(self) -> list[str]:
        """Client order ids executed more than once: a caller's bug if not empty."""
        return sorted(cid for cid, count in self.store.counts().items() if count > 1)

    def orders(self) -> list[Execution]:
        """Every placement, in the order they were recorded (duplicates included)."""
        return [Execution.from_json(payload) for payload in self.store.all()]

    def total_placed(self) -> int:
        return self.store.total()

    def reset(self) -> None:
        self.store.reset()

    def describe(self) -> dict:
        return {
            "name": self.name,
            "store": "redis" if self.store.shared else "memory",
            "prefix": getattr(self.store, "prefix", None),
            "config": self.config.to_string(),
        }

    # -- internals --

    def _draw(self, candidates) -> tuple[str | None, float]:
        with self._rng_lock:
            r = self._rng.random()
            u = self._rng.uniform(-1.0, 1.0)
        edge = 0.0
        for name in FAULTS:
            edge += getattr(self.config, name)
            if r < edge:
                return (name if name in candidates else None), u
        return None, u

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)

    def _raise_before_execution(self, fault: str | None, client_order_id: str) -> None:
        context = {"venue": self.name, "client_order_id": client_order_id}
        if fault == "rate_limit":
            raise VenueRateLimited("simulated rate limit", retry_after=self.config.retry_after_s, **context)
        if fault == "unavailable":
            raise VenueUnavailable("simulated 503 Service Unavailable", **context)
        if fault == "timeout":
            raise VenueTimeout("simulated timeout: no answer (the request never reached the venue)", **context)
        if fault == "reject":
            raise VenueRejected("simulated rejection", **context)
        if fault == "insufficient_balance":
            raise VenueInsufficientBalance(
                "simulated: account has insufficient balance for requested action", **context
            )

    def _raise_after_execution(self, fault: str | None, client_order_id: str) -> None:
        context = {"venue": self.name, "client_order_id": client_order_id}
        if fault == "ambiguous":
            raise VenueTimeout("the order executed but the reply was lost", **context)
        if self.config.latency_ms >= self.config.timeout_ms:
            raise VenueTimeout(f"no reply within {self.config.timeout_ms:g} ms (the order executed)", **context)

    def _within_receive_window(self, started: float, client_order_id: str) -> None:
        if time.monotonic() - started > self.config.recv_window_ms / 1000:
            raise VenueUnavailable(
                "the request reached the venue outside its receive window: not executed",
                venue=self.name,
                client_order_id=client_order_id,
            )

    def _record(self, order: Execution, *, only_first: bool = False) -> str | int:
        try:
            return self.store.record(order.client_order_id, order.to_json(), _flows(order), only_first=only_first)
        except Exception as exc:
            if not _is_redis_error(exc):
                raise
            # MULTI/EXEC may or may not have been applied: the outcome is unknown.
            raise VenueTimeout(
                f"order store failed while recording: {exc}", venue=self.name, client_order_id=order.client_order_id
            ) from exc

    def _stored(self, client_order_id: str, symbol: str) -> Execution | None:
        try:
            payload = self.store.first(client_order_id)
        except Exception as exc:
            if not _is_redis_error(exc):
                raise
            # A read: nothing was executed on the way.
            raise VenueUnavailable(
                f"order store unavailable: {exc}", venue=self.name, client_order_id=client_order_id
            ) from exc
        if payload is None:
            return None
        order = Execution.from_json(payload)
        # Client ids are scoped by symbol on real venues (Binance looks them up per symbol).
        return order if order.symbol == symbol else None

    def _reference_price(self, symbol: str, client_order_id: str | None) -> Decimal:
        context = {"venue": self.name, "client_order_id": client_order_id}
        try:
            price = self.price_source(symbol)
        except VenueError:
            raise
        except Exception as exc:
            raise VenueUnavailable(f"no reference price for {symbol}: {type(exc).__name__}: {exc}", **context) from exc
        if price is None:
            raise VenueUnavailable(f"no reference price for {symbol}", **context)
        price = Decimal(price)
        if not price.is_finite() or price <= 0:
            raise VenueUnavailable(f"reference price for {symbol} is not positive: {price}", **context)
        return price

    def _fill_from_book(self, client_order_id, symbol, side, amount, limit_price) -> Execution:
        book = self.order_book(symbol, self.config.levels)
        levels = book.asks if side == BUY else book.bids
        left, filled, cost = amount, Decimal(0), Decimal(0)
        for price, available in levels:
            if left <= 0 or (price > limit_price if side == BUY else price < limit_price):
                break
            take = min(left, available)
            filled += take
            cost += price * take
            left -= take
        filled = filled.quantize(BASE_QUANTUM, rounding=ROUND_DOWN)
        cost = cost.quantize(QUOTE_QUANTUM, rounding=ROUND_UP if side == BUY else ROUND_DOWN)
        fee, fee_asset = self._fee(symbol, side, filled, cost)
        return Execution(
            client_order_id=client_order_id,
            venue_order_id=f"sim-{uuid.uuid4().hex[:20]}",
            symbol=symbol,
            side=side,
            # An IOC ends at once: what the book could not fill within the limit expires.
            status=FILLED if filled == amount else CANCELLED,
            amount=amount,
            filled=filled,
            cost=cost,
            average=(cost / filled).quantize(BASE_QUANTUM) if filled else None,
            fee=fee,
            fee_asset=fee_asset,
            raw={"limit_price": str(limit_price), "placed_at": time.time(), "pid": os.getpid()},
        )

    def _fill_at_reference(self, client_order_id, symbol, side, amount, quote_amount, u: float) -> Execution:
        reference = self._reference_price(symbol, client_order_id)
        slippage = self.config.slippage_bps * Decimal(f"{u:.6f}") / BPS
        price = (reference * (1 + slippage)).quantize(PRICE_QUANTUM)
        if price <= 0:  # pragma: no cover - slippage is below 100%
            raise VenueUnavailable(f"no price for {symbol}", venue=self.name, client_order_id=client_order_id)
        if quote_amount is not None:
            spend = quote_amount.quantize(QUOTE_QUANTUM, rounding=ROUND_DOWN)
            filled = (spend / price).quantize(BASE_QUANTUM, rounding=ROUND_DOWN)
        else:
            filled = amount.quantize(BASE_QUANTUM, rounding=ROUND_DOWN)
        if filled <= 0:
            raise VenueRejected(
                f"order too small: {amount or quote_amount} at {price}",
                venue=self.name,
                client_order_id=client_order_id,
            )
        # The venue never gives away a fraction: a buyer's cost rounds up, a seller's down.
        cost = (filled * price).quantize(QUOTE_QUANTUM, rounding=ROUND_UP if side == BUY else ROUND_DOWN)
        if quote_amount is not None and cost > quote_amount:  # pragma: no cover - floor(q/p)*p <= q
            cost = quote_amount.quantize(QUOTE_QUANTUM, rounding=ROUND_DOWN)
        fee, fee_asset = self._fee(symbol, side, filled, cost)
        return Execution(
            client_order_id=client_order_id,
            venue_order_id=f"sim-{uuid.uuid4().hex[:20]}",
            symbol=symbol,
            side=side,
            status=FILLED,
            amount=amount,
            filled=filled,
            cost=cost,
            average=price,
            fee=fee,
            fee_asset=fee_asset,
            raw={
                "reference_price": str(reference),
                "slippage_bps": str((slippage * BPS).quantize(Decimal("0.0001"))),
                "quote_amount": None if quote_amount is None else str(quote_amount),
                "placed_at": time.time(),
                "pid": os.getpid(),
            },
        )

    def _fee(self, symbol: str, side: str, filled: Decimal, cost: Decimal) -> tuple[Decimal, str]:
        """The taker fee, rounded up, in the asset received."""
        base, quote = symbol_assets(symbol)
        rate = self.config.fee_bps / BPS
        if side == BUY:
            return (filled * rate).quantize(BASE_QUANTUM, rounding=ROUND_UP), base
        return (cost * rate).quantize(QUOTE_QUANTUM, rounding=ROUND_UP), quote


def _flows(order: Execution) -> dict[str, Decimal]:
    """What the order moved on the account, per asset (the fee comes out of what it received)."""
    base, quote = symbol_assets(order.symbol)
    sign = 1 if order.side == BUY else -1
    flows = {base: sign * order.filled, quote: -sign * order.cost}
    if order.fee:
        flows[order.fee_asset] = flows.get(order.fee_asset, Decimal(0)) - order.fee
    return {asset: amount for asset, amount in flows.items() if amount}


def _to_tick(value: Decimal, tick: Decimal, rounding) -> Decimal:
    return (value / tick).to_integral_value(rounding) * tick
