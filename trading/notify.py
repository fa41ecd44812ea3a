"""PostgreSQL LISTEN for the singletons woken by commits (the outbox relay, the engine
runners): a writer sends ``NOTIFY <channel>`` inside its transaction, and PostgreSQL
delivers it when, and only if, the transaction commits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection

from trading.dependencies import POSTGRESQL, backoff_delay, dependency, unavailable

logger = logging.getLogger(__name__)


def listen(channel: str, wake: Callable[[], None], stop: threading.Event) -> None:
    """Call ``wake`` on every notification on ``channel`` until ``stop`` is set. Reconnects
    after errors; the caller's polling covers any gap. Returns at once on other databases."""
    if connection.vendor != "postgresql":
        return
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    database = dependency(POSTGRESQL)
    failures = 0
    while not stop.is_set():
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                conn.execute(f"LISTEN {channel}")
                failures = 0
                database.ok()
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        wake()
        except Exception as exc:
            # The singleton beside this thread sees the same outage: one line for both.
            failures += 1
            if unavailable(exc) == POSTGRESQL:
                database.failed(exc)
            else:
                logger.warning("LISTEN %s failed (%s); retrying", channel, exc)
            stop.wait(backoff_delay(failures))
