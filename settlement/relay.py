"""The outbox relay (canal-like): a singleton that carries committed outbox events to the
acceptance intake through the broker.

It reads after its cursor with the snapshot guard of ``trading.outbox.outbox_after``,
publishes, and only then saves the cursor, fenced by its lease epoch: a crash between the two
publishes a batch twice (the intake shrugs), never zero times. It wakes on PostgreSQL's
LISTEN/NOTIFY (the writer's NOTIFY is delivered when its transaction commits), with a short
polling fallback; in the embedded mode the writer wakes it in-process.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.utils import timezone

from trading.leases import Singleton, checkpoint_load, checkpoint_save
from trading.outbox import NOTIFY_CHANNEL, outbox_after, outbox_message

logger = logging.getLogger(__name__)

LEASE = "relay"
START = {"txid": 0, "id": 0}


class Relay:
    def __init__(self, *, publish: Callable[[list[dict]], None] | None = None, batch: int | None = None):
        self.publish = publish or _publish_to_intake
        self.batch = batch or getattr(settings, "RELAY_BATCH_SIZE", 1000)
        self.linger = getattr(settings, "RELAY_LINGER_SECONDS", 0.005)
        self.holder = ""
        self.cursor = dict(START)
        self.lags_ms: deque[float] = deque(maxlen=10000)
        self.published = 0
        self.broker_down_since: float | None = None

    def _read(self):
        return outbox_after(txid=int(self.cursor["txid"]), event_id=int(self.cursor["id"]), limit=self.batch)

    def on_lead(self, epoch: int) -> None:
        self.cursor = dict(checkpoint_load(LEASE, START))
        logger.info("relay resumes after txid=%s id=%s", self.cursor.get("txid"), self.cursor.get("id"))

    def work(self, epoch: int) -> bool:
        events = self._read()
        if not events:
            return False
        if len(events) < self.batch and self.linger > 0:
            # Let a burst gather for a few milliseconds: one intake message and one chain
            # then carry many settlements instead of a handful each.
            young = self.linger - (timezone.now() - events[0].created_at).total_seconds()
            if young > 0:
                time.sleep(young)
                events = self._read()
        messages = [outbox_message(event) for event in events]
        try:
            self.publish(messages)
        except Exception as exc:  # broker down: keep the cursor, try again on the next round
            if self.broker_down_since is None:
                self.broker_down_since = time.monotonic()
                logger.warning("relay cannot publish (%s: %s); holding at %s", type(exc).__name__, exc, self.cursor)
            return False
        if self.broker_down_since is not None:
            logger.warning("relay publishing again after %.1fs", time.monotonic() - self.broker_down_since)
            self.broker_down_since = None
        now = timezone.now()
        lags = [(now - event.created_at).total_seconds() * 1000 for event in events]
        self.lags_ms.extend(lags)
        self.published += len(events)
        last = events[-1]
        cursor = {
            "txid": last.txid,
            "id": last.id,
            "published": self.published,
            "lag_ms_p50": round(statistics.median(lags), 3),
            "lag_ms_max": round(max(lags), 3),
            "at": now.isoformat(),
        }
        checkpoint_save(name=LEASE, epoch=epoch, holder=self.holder, value=cursor)
        self.cursor = cursor
        return len(events) == self.batch


def _publish_to_intake(messages: list[dict]) -> None:
    from .tasks import intake_publish

    # No publish retries: with the broker down the relay must hold its cursor and come
    # back, not block inside the client.
    intake_publish(messages, retry=False)


def relay_singleton(*, ttl: float = 3.0, announce=print, publish=None, interval: float | None = None) -> Singleton:
    relay = Relay(publish=publish)
    poll = getattr(settings, "RELAY_POLL_SECONDS", 0.25) if interval is None else interval
    singleton = Singleton(LEASE, work=relay.work, ttl=ttl, interval=poll, on_lead=relay.on_lead, announce=announce)
    relay.holder = singleton.holder
    singleton.relay = relay
    return singleton


def listen_for_commits(wake: Callable[[], None], stop: threading.Event) -> None:
    """Call ``wake`` whenever an outbox writer commits (PostgreSQL LISTEN). Reconnects on
    errors; the relay's polling covers the gaps."""
    if connection.vendor != "postgresql":
        return
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    while not stop.is_set():
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        wake()
        except Exception as exc:
            logger.warning("relay LISTEN connection failed (%s); retrying", exc)
            stop.wait(1.0)


def relay_lag_seconds() -> dict:
    """For /readyz and /metrics: the age of the oldest event the relay has not published,
    and its last recorded figures."""
    mark = checkpoint_load(LEASE, START)
    pending = outbox_after(txid=int(mark.get("txid", 0)), event_id=int(mark.get("id", 0)), limit=1)
    backlog_age = (timezone.now() - pending[0].created_at).total_seconds() if pending else 0.0
    return {"backlog_age_seconds": round(backlog_age, 3), "cursor": mark}
