"""The simulated venue: market orders filled at a reference price, with injected faults.

Fills happen at ``price_source(symbol)`` (the platform's index) moved by a random slippage of
at most ``slippage_bps`` either way, with a taker fee of ``fee_bps`` taken from the asset
received. Base quantities are kept to 8 decimals and quote amounts to 6, always rounding in
the venue's favour (a buyer's cost up, a seller's proceeds down, fees up).

Faults are drawn per call with configured probabilities, at most one per call:

* ``rate_limit`` -> ``VenueRateLimited``, ``unavailable`` (alias ``5xx``) -> ``VenueUnavailable``,
  ``reject`` -> ``VenueRejected``, ``insufficient_balance`` (alias ``insufficient``) ->
  ``VenueInsufficientBalance``, ``timeout`` -> ``VenueTimeout``: all before execution, nothing
  is created;
* ``ambiguous`` -> the order IS executed and stored, then the reply is lost: ``VenueTimeout``.

Latency is split as on a real link: half before execution (the request in flight) and half
after (the reply in flight), so a caller killed during the second half has placed an order it
never heard about. A timeout is raised at once rather than after ``timeout_ms``. As on
Binance, a request that reaches execution later than ``recv_window_ms`` after it was sent is
refused (``VenueUnavailable``, nothing executed): that bounds how long an order can still
appear after a lost reply (``unknown_outcome_grace_s``), even if its sender stalled.

The order store is shared by every process using the same Redis URL and key prefix, since
settlement workers die and restart: a hash per client order id holds the first order placed
with it, a hash of placement counts per id and a list of every placement let a test (or an
ops check) prove no order was placed twice. One MULTI/EXEC round trip records a placement.
Without a Redis URL the store is in memory (embedded mode: one process).

Like many real venues, this one does not deduplicate client order ids of market orders:
sending the same id twice executes twice (both are recorded; ``fetch_order`` answers the
first).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation

from .base import (
    BUY,
    FILLED,
    Venue,
    VenueError,
    VenueInsufficientBalance,
    VenueOrder,
    VenueRateLimited,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
    validate_lookup,
    validate_market_order,
)

logger = logging.getLogger(__name__)

BASE_QUANTUM = Decimal("0.00000001")  # BTC/ETH: 8 decimals
QUOTE_QUANTUM = Decimal("0.000001")  # USDT: 6 decimals
PRICE_QUANTUM = Decimal("0.01")
STORE_WRITE_MARGIN_S = 1.0
BPS = Decimal(10_000)
DEFAULT_KEY_PREFIX = "settlement:venue:sim"
SETTING_NAME = "SETTLEMENT_VENUE_FAULTS"

# Order matters only for reproducibility with a seed: one uniform draw picks the fault.
FAULTS = ("rate_limit", "unavailable", "timeout", "reject", "insufficient_balance", "ambiguous")
LOOKUP_FAULTS = ("rate_limit", "unavailable", "timeout")
ALIASES = {"5xx": "unavailable", "insufficient": "insufficient_balance"}


@dataclass(frozen=True)
class SimulatedVenueConfig:
    """Fault probabilities (each in [0, 1], summing to at most 1) and the venue's behaviour.

    ``fetch_faults`` applies the transient faults (rate limit, unavailable, timeout) to
    ``fetch_order`` too, with the same probabilities.
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
        if not isinstance(self.latency_ms, (int, float)) or not 0 <= self.latency_ms < self.timeout_ms:
            raise ValueError(f"latency_ms must be at least 0 and below timeout_ms ({self.timeout_ms:g}), not {self.latency_ms!r}")
        if not isinstance(self.recv_window_ms, (int, float)) or not self.latency_ms / 2 < self.recv_window_ms:
            raise ValueError(f"recv_window_ms must exceed half the latency ({self.latency_ms / 2:g}), not {self.recv_window_ms!r}")
        for name in ("slippage_bps", "fee_bps"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value < BPS:
                raise ValueError(f"{name} must be a Decimal between 0 and 10000, not {value!r}")
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
            if key not in known:
                raise ValueError(f"unknown key {raw_key!r} (known: {', '.join(sorted(known | set(ALIASES)))})")
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
            raise ValueError(f"{SETTING_NAME} must be a string like 'timeout=0.1,latency_ms=5', not {type(text).__name__}")
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
    if key in ("slippage_bps", "fee_bps"):
        if isinstance(value, float):
            value = repr(value)
        try:
            return Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValueError(f"{key}={value!r} is not a number") from None
    if key == "seed":
        if value is None or isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"seed={value!r} is not an integer") from None
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
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{key}={value!r} is not a finite number")
    return number


# --- stores ----------------------------------------------------------------------------------


class _MemoryStore:
    """One process (embedded mode, unit tests)."""

    shared = False

    def __init__(self):
        self._lock = threading.Lock()
        self._first: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._placements: list[str] = []

    def record(self, client_order_id: str, payload: str) -> int:
        with self._lock:
            self._first.setdefault(client_order_id, payload)
            self._counts[client_order_id] = self._counts.get(client_order_id, 0) + 1
            self._placements.append(payload)
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

    def reset(self) -> None:
        with self._lock:
            self._first.clear()
            self._counts.clear()
            self._placements.clear()


class _RedisStore:
    """Shared by every process on the same Redis and prefix.

    ``{prefix}:order:{client_order_id}`` hash, field ``order``: the first order (HSETNX);
    ``{prefix}:counts`` hash: placements per client order id (HINCRBY);
    ``{prefix}:placements`` list: every placement, duplicates included (RPUSH).
    """

    shared = True

    def __init__(self, url: str | None, prefix: str, timeout_s: float, client=None):
        if client is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30)
        self.client = client
        self.prefix = prefix
        self.counts_key = f"{prefix}:counts"
        self.placements_key = f"{prefix}:placements"

    def order_key(self, client_order_id: str) -> str:
        return f"{self.prefix}:order:{client_order_id}"

    def record(self, client_order_id: str, payload: str) -> int:
        pipe = self.client.pipeline(transaction=True)
        pipe.hsetnx(self.order_key(client_order_id), "order", payload)
        pipe.hincrby(self.counts_key, client_order_id, 1)
        pipe.rpush(self.placements_key, payload)
        _, count, _ = pipe.execute()
        return int(count)

    def first(self, client_order_id: str) -> str | None:
        value = self.client.hget(self.order_key(client_order_id), "order")
        return None if value is None else value.decode()

    def count(self, client_order_id: str) -> int:
        return int(self.client.hget(self.counts_key, client_order_id) or 0)

    def counts(self) -> dict[str, int]:
        return {key.decode(): int(value) for key, value in self.client.hscan_iter(self.counts_key, count=1000)}

    def all(self) -> list[str]:
        return [value.decode() for value in self.client.lrange(self.placements_key, 0, -1)]

    def total(self) -> int:
        return int(self.client.llen(self.placements_key))

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
        """``price_source(symbol)`` gives the reference price of e.g. ``"BTC/USDT"``. With a
        ``redis_url`` (or a ready ``redis_client``) the order store is shared across
        processes under ``key_prefix``; otherwise it lives in this process's memory."""
        self.config = config or SimulatedVenueConfig()
        self.name = name
        self.price_source = price_source
        self.timeout_s = self.config.timeout_ms / 1000
        # As on Binance, a request reaching the matching engine later than its receive window
        # is refused; so once that window (plus the store write) has passed, a lookup that
        # finds nothing proves the order will never exist, even if its sender only stalled.
        self.unknown_outcome_grace_s = self.config.recv_window_ms / 1000 + STORE_WRITE_MARGIN_S
        self._sleep = sleep
        self._rng = random.Random(self.config.seed)
        self._rng_lock = threading.Lock()
        if redis_url or redis_client is not None:
            self.store = _RedisStore(redis_url, key_prefix, self.timeout_s, client=redis_client)
        else:
            self.store = _MemoryStore()

    # -- the interface --

    def market_order(self, *, client_order_id, symbol, side, amount=None, quote_amount=None) -> VenueOrder:
        validate_market_order(client_order_id=client_order_id, symbol=symbol, side=side, amount=amount, quote_amount=quote_amount)
        started = time.monotonic()
        fault, u = self._draw(FAULTS)
        half_latency = self.config.latency_ms / 2000
        self._pause(half_latency)  # the request in flight
        self._raise_before_execution(fault, client_order_id)
        order = self._execute(client_order_id, symbol, side, amount, quote_amount, u)
        if time.monotonic() - started > self.config.recv_window_ms / 1000:
            raise VenueUnavailable(
                "the request reached the venue outside its receive window: not executed",
                venue=self.name,
                client_order_id=client_order_id,
            )
        try:
            count = self.store.record(client_order_id, order.to_json())
        except Exception as exc:
            if not _is_redis_error(exc):
                raise
            # MULTI/EXEC may or may not have been applied: the outcome is unknown.
            raise VenueTimeout(f"order store failed while recording: {exc}", venue=self.name, client_order_id=client_order_id) from exc
        if count > 1:
            logger.warning("simulated venue: client order id %s placed %d times", client_order_id, count)
        self._pause(half_latency)  # the reply in flight
        if fault == "ambiguous":
            raise VenueTimeout("the order executed but the reply was lost", venue=self.name, client_order_id=client_order_id)
        return order

    def fetch_order(self, *, client_order_id, symbol) -> VenueOrder | None:
        validate_lookup(client_order_id=client_order_id, symbol=symbol)
        if self.config.fetch_faults:
            fault, _ = self._draw(LOOKUP_FAULTS)
            self._raise_before_execution(fault, client_order_id)
        self._pause(self.config.latency_ms / 1000)
        try:
            payload = self.store.first(client_order_id)
        except Exception as exc:
            if not _is_redis_error(exc):
                raise
            raise VenueUnavailable(f"order store unavailable: {exc}", venue=self.name, client_order_id=client_order_id) from exc
        if payload is None:
            return None
        order = VenueOrder.from_json(payload)
        # Client ids are scoped by symbol on real venues (Binance looks them up per symbol).
        return order if order.symbol == symbol else None

    # -- tests and ops --

    def placements(self, client_order_id: str) -> int:
        """How many times an order was executed with this client order id."""
        return self.store.count(client_order_id)

    def duplicate_client_order_ids(self) -> list[str]:
        """Client order ids executed more than once: a settlement bug if not empty."""
        return sorted(cid for cid, count in self.store.counts().items() if count > 1)

    def orders(self) -> list[VenueOrder]:
        """Every placement, in the order they were recorded (duplicates included)."""
        return [VenueOrder.from_json(payload) for payload in self.store.all()]

    def total_placed(self) -> int:
        return self.store.total()

    def reset(self) -> None:
        self.store.reset()

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
            raise VenueInsufficientBalance("simulated: account has insufficient balance for requested action", **context)

    def _reference_price(self, symbol: str, client_order_id: str) -> Decimal:
        try:
            price = self.price_source(symbol)
        except VenueError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken price feed is the venue being unavailable
            raise VenueUnavailable(f"no reference price for {symbol}: {type(exc).__name__}: {exc}", venue=self.name, client_order_id=client_order_id) from exc
        if price is None:
            raise VenueUnavailable(f"no reference price for {symbol}", venue=self.name, client_order_id=client_order_id)
        price = Decimal(price)
        if not price.is_finite() or price <= 0:
            raise VenueUnavailable(f"reference price for {symbol} is not positive: {price}", venue=self.name, client_order_id=client_order_id)
        return price

    def _execute(self, client_order_id, symbol, side, amount, quote_amount, u: float) -> VenueOrder:
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
            raise VenueRejected(f"order too small: {amount or quote_amount} at {price}", venue=self.name, client_order_id=client_order_id)
        # The venue never gives away a fraction: a buyer's cost rounds up, a seller's down.
        cost = (filled * price).quantize(QUOTE_QUANTUM, rounding=ROUND_UP if side == BUY else ROUND_DOWN)
        if quote_amount is not None and cost > quote_amount:  # pragma: no cover - floor(q/p)*p <= q
            cost = quote_amount.quantize(QUOTE_QUANTUM, rounding=ROUND_DOWN)
        rate = self.config.fee_bps / BPS
        base, quote = symbol.split("/")
        if side == BUY:
            fee, fee_asset = (filled * rate).quantize(BASE_QUANTUM, rounding=ROUND_UP), base
        else:
            fee, fee_asset = (cost * rate).quantize(QUOTE_QUANTUM, rounding=ROUND_UP), quote
        return VenueOrder(
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

    def describe(self) -> dict:
        return {
            "name": self.name,
            "store": "redis" if self.store.shared else "memory",
            "prefix": getattr(self.store, "prefix", None),
            "config": self.config.to_string(),
        }

