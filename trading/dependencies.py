"""The services a long-running process cannot work without -- PostgreSQL, Redis (cache and
channel layer), the Celery broker -- as that process sees them.

A dependency goes away (a restart, a failover, a network cut) and comes back; the process
must neither die nor flood its log meanwhile. ``dependency(name)`` is the process's one
view of a service, shared by its threads:

* ``failed(exc)`` records a failure: the first one since the service was last seen working
  logs one line (``DEPENDENCY DOWN <name>: ...``), later ones none; it returns how long to
  wait before the next attempt (exponential, capped at ``MAX_BACKOFF`` seconds, with jitter
  so a fleet of processes does not reconnect in step);
* ``ok()`` after a success logs one line (``DEPENDENCY BACK <name> after <s>s``) if the
  service was down, and is a single attribute check otherwise;
* ``may_try()`` says whether a best-effort caller (a realtime publish, a cache write)
  should try now or drop its work without waiting on a service known to be down: once
  per backoff interval one caller tries again, and the first success lets everyone through.

``unavailable(exc)`` tells which service an exception says is unreachable (``None`` for
any other error: a bug must still surface).
"""

from __future__ import annotations

import logging
import random
import threading
import time

logger = logging.getLogger(__name__)

POSTGRESQL = "postgresql"
REDIS = "redis"
BROKER = "broker"

BASE_BACKOFF = 0.2
# Capped low: a dependency that returns must be used again within seconds (the index feed
# is what option quotes wait for), and an attempt against a down local service costs little.
MAX_BACKOFF = 2.0


def backoff_delay(attempt: int, *, base: float = BASE_BACKOFF, cap: float = MAX_BACKOFF) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): doubling from ``base``
    up to ``cap``, the upper half of it jittered."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


class Dependency:
    def __init__(self, name: str):
        self.name = name
        self.down_since: float | None = None
        self.failures = 0
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException | None = None) -> float:
        """Record a failure; return the seconds to wait before trying again."""
        now = time.monotonic()
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since, self.failures = now, 0
            self.failures += 1
            delay = backoff_delay(self.failures)
            self._retry_at = now + delay
        if first:
            reason = f"{type(exc).__name__}: {_first_line(exc)}" if exc is not None else "unreachable"
            logger.warning("DEPENDENCY DOWN %s: %s; retrying with backoff up to %gs", self.name, reason, MAX_BACKOFF)
        return delay

    def ok(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            since, failures = self.down_since, self.failures
            if since is None:
                return
            self.down_since, self.failures, self._retry_at = None, 0, 0.0
        logger.warning(
            "DEPENDENCY BACK %s after %.1fs (%d failed attempts)", self.name, time.monotonic() - since, failures
        )

    def may_try(self) -> bool:
        """True unless the service is down and its next attempt is not due yet. A caller
        told True while it is down is that attempt (others keep being told False)."""
        if self.down_since is None:
            return True
        with self._lock:
            now = time.monotonic()
            if self.down_since is None or now >= self._retry_at:
                self._retry_at = now + backoff_delay(self.failures + 1)
                return True
            return False


_dependencies: dict[str, Dependency] = {}
_registry_lock = threading.Lock()


def dependency(name: str) -> Dependency:
    """This process's view of the service ``name``."""
    found = _dependencies.get(name)
    if found is None:
        with _registry_lock:
            found = _dependencies.setdefault(name, Dependency(name))
    return found


def unavailable(exc: BaseException) -> str | None:
    """The service ``exc`` says cannot be reached, or ``None``."""
    if _database_unreachable(exc):
        return POSTGRESQL
    try:
        import redis
    except ImportError:  # pragma: no cover
        redis = None
    if redis is not None and isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return REDIS
    try:
        from kombu.exceptions import OperationalError as BrokerError
    except ImportError:  # pragma: no cover
        BrokerError = None
    if BrokerError is not None and isinstance(exc, BrokerError):
        return BROKER
    return None


# Server answers that mean "not reachable now": connection exceptions (class 08) and a
# server shutting down, crashed or still starting.
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")


def _database_unreachable(exc: BaseException) -> bool:
    from django.db import InterfaceError, OperationalError

    try:
        import psycopg
    except ImportError:  # pragma: no cover - SQLite-only installs
        return False
    if isinstance(exc, (OperationalError, InterfaceError)):
        cause = exc.__cause__
        if cause is None:
            return isinstance(exc, InterfaceError)
        exc = cause
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    # No state: the client lost or could not open the connection. Any other state is the
    # server answering (a deadlock, a lock or statement timeout): not an outage.
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith(_UNREACHABLE_STATES)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"
