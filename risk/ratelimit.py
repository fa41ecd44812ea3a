"""Order rate per trader: the GCRA of ``risk.core`` kept where every web process sees it.

Stack mode keeps each trader's theoretical arrival time in Redis and updates it with one
Lua call (atomic across processes, one round trip); the embedded mode, one process, keeps
it in memory. If Redis cannot be reached the order is let through and counted
(``risk_rate_unchecked_total``): an outage of the rate limiter's store must not stop
trading, and the engine, ledger and trading states still hold.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings
from prometheus_client import Counter

from . import core

logger = logging.getLogger(__name__)
UNCHECKED = Counter("risk_rate_unchecked_total", "Orders let through because the rate store was unreachable")

# KEYS[1] the trader's key; ARGV: now, interval, burst (seconds, seconds, orders).
# Times are Redis server time, so web processes with skewed clocks agree.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return {0, tostring(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0'}
"""


class _Memory:
    def __init__(self):
        self._tat: dict[int, float] = {}
        self._lock = threading.Lock()

    def take(self, user_id: int, rate: float, burst: float) -> tuple[bool, float]:
        with self._lock:
            now = time.monotonic()
            allowed, tat, retry = core.gcra(self._tat.get(user_id, 0.0), now, rate=rate, burst=burst)
            self._tat[user_id] = tat
            return allowed, retry


class _Redis:
    def __init__(self, url: str):
        self._client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
        self._script = self._client.register_script(_GCRA)

    def take(self, user_id: int, rate: float, burst: float) -> tuple[bool, float]:
        allowed, retry = self._script(keys=[f"risk:rate:{user_id}"], args=[1.0 / rate, burst])
        return bool(int(allowed)), float(retry)


_store = None
_store_lock = threading.Lock()


def _the_store():
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = _Redis(settings.REDIS_URL) if settings.REDIS_URL else _Memory()
    return _store


def take(user_id: int, *, rate, burst) -> tuple[bool, float]:
    """Count one order of ``user_id``: ``(allowed, retry_after_seconds)``."""
    try:
        return _the_store().take(user_id, float(rate), float(burst))
    except redis.RedisError as exc:
        UNCHECKED.inc()
        logger.warning("order rate not checked: %s", exc)
        return True, 0.0


def reset() -> None:
    """Forget every trader's rate (tests; a new Redis URL)."""
    global _store
    with _store_lock:
        _store = None
