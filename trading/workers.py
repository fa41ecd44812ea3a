"""Background singletons of the embedded mode.

In stack mode each singleton (feed, relay, engines, market maker) is its own process from
the Procfile. In embedded mode the web process runs them as daemon threads: apps register a
``start()`` callable here from their AppConfig.ready(), and the ASGI entry point starts them
all once. The same lease and fencing code runs in both modes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_registry: dict[str, Callable[[], object]] = {}
_wakers: dict[str, Callable[[], object]] = {}
_started: dict[str, threading.Thread] = {}
_lock = threading.Lock()


def register(name: str, run: Callable[[], object]) -> None:
    """``run`` blocks for the life of the worker (e.g. ``Singleton(...).run``)."""
    _registry[name] = run


def set_waker(name: str, wake: Callable[[], object]) -> None:
    """How to cut a running worker's idle wait short (e.g. ``Singleton.wake``)."""
    _wakers[name] = wake


def wake(name: str) -> None:
    """Tell an in-process worker it has new work; a no-op when it is not running here."""
    waker = _wakers.get(name)
    if waker is not None:
        waker()


def start_all() -> list[str]:
    with _lock:
        for name, run in _registry.items():
            if name in _started:
                continue
            thread = threading.Thread(target=_guarded, args=(name, run), name=f"embedded-{name}", daemon=True)
            thread.start()
            _started[name] = thread
            logger.info("embedded worker %s started", name)
        return list(_started)


def _guarded(name: str, run: Callable[[], object]) -> None:
    try:
        run()
    except Exception:
        logger.exception("embedded worker %s stopped with an error", name)
    finally:
        from django.db import connection

        connection.close()
