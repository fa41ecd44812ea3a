"""The outbox relay (canal-like): a singleton that carries committed outbox events to the
acceptance intake through the broker, or takes a small batch in itself.

A small batch that settles in a few ms more than its ledger legs (a venue known to be fast,
see ``settlement.services.settlements_take_in_here``) is taken in by the relay's own process:
the resident intake, with no broker hop, queue mark or wait for a free worker between the
trader's commit and the venue swap. Larger batches (a backlog, a burst) and batches for a
slow venue go through the broker to the intake workers, which share them out; so do the
relay's own failures before a commit. ``RELAY_TAKE_IN=0`` sends every batch through the
broker.

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
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from trading.dependencies import BROKER, dependency
from trading.leases import Singleton, checkpoint_load, checkpoint_write
from trading.notify import listen
from trading.outbox import NOTIFY_CHANNEL, outbox_after, outbox_committed_after, outbox_message

logger = logging.getLogger(__name__)

LEASE = "relay"
START = {"txid": 0, "id": 0}


class Relay:
    def __init__(
        self,
        *,
        publish: Callable[[list[dict]], None] | None = None,
        batch: int | None = None,
        take_in: Callable[[list[dict]], bool] | None = None,
        take_in_budget: float | None = None,
    ):
        self.publish = publish or _publish_to_intake
        # The resident intake (``RELAY_TAKE_IN``): takes a small batch in here and says
        # True, or says False and the batch is published.
        self.take_in = take_in
        # A take-in that lasts longer than this (the singleton gives a share of its lease's
        # TTL) sends the next batches through the broker for RELAY_TAKE_IN_PAUSE_SECONDS.
        self.take_in_budget = take_in_budget
        self._take_in_paused_until = 0.0
        self.batch = batch or settings.RELAY_BATCH_SIZE
        self.linger = settings.RELAY_LINGER_SECONDS
        self.holder = ""
        self.cursor = dict(START)
        self.lags_ms: deque[float] = deque(maxlen=10000)
        self.published = 0
        # The cursor is saved at most this often (and whenever the relay goes idle), not
        # once per published batch: a fenced commit per batch cost more than the publish.
        # A new leader re-publishes what was sent after the last save; the intake shrugs.
        self.save_every = settings.RELAY_CHECKPOINT_SECONDS
        self._saved_at = 0.0
        self._published_at = 0.0
        # While the broker still holds intake messages no worker has taken, a new one would
        # only queue behind them: the events wait here instead (up to this long) and go out
        # together, so batches grow with the load and not the message count.
        self.hold = settings.RELAY_HOLD_SECONDS
        self._queue = _BrokerQueue() if publish is None else None
        self._unsaved_lags: list[float] = []
        # Committed events the snapshot guard still hides (an older transaction, say an
        # intake's, has not ended): their NOTIFY has come and gone, and the end of the
        # transaction in the way sends none. Look again after this long, doubling up to the
        # polling interval, instead of sleeping through the whole interval.
        self._behind = 0.0

    def _read(self):
        return outbox_after(txid=int(self.cursor["txid"]), event_id=int(self.cursor["id"]), limit=self.batch)

    def on_lead(self, epoch: int) -> None:
        self.cursor = dict(checkpoint_load(LEASE, START))
        self._unsaved_lags = []
        logger.info("relay resumes after txid=%s id=%s", self.cursor.get("txid"), self.cursor.get("id"))

    def _read_seen(self, seen: dict[int, float]) -> list:
        """Read after the cursor; note when each event was first read (its stage time)."""
        at = time.time()
        events = self._read()
        for event in events:
            seen.setdefault(event.id, at)
        return events

    def work(self, epoch: int) -> bool:
        seen: dict[int, float] = {}
        events = self._read_seen(seen)
        if not events:
            if self._unsaved_lags:
                self._save(epoch)
            self._probe_broker()
            return self._wait_behind_horizon()
        self._behind = 0.0
        if len(events) < self.batch and self.linger > 0:
            # While events keep coming, publish at most once per linger: one intake message
            # then carries what arrived meanwhile instead of one event each. The first event
            # after a pause goes at once, and so does a batch read after a take-in here that
            # lasted the linger (its events gathered meanwhile).
            wait = self.linger - (time.monotonic() - self._published_at)
            if wait > 0:
                time.sleep(wait)
                events = self._read_seen(seen)
        handed = time.monotonic()
        if not self._taken_in_here(events, seen):
            if len(events) < self.batch and self.hold > 0 and self._queue is not None and self._queue.waiting():
                # Ask the broker (cheap), not the outbox, while waiting; read once at the end.
                deadline = time.monotonic() + self.hold
                while time.monotonic() < deadline and self._queue.waiting():
                    time.sleep(0.002)
                events = self._read_seen(seen)
            broker = dependency(BROKER)
            try:
                self.publish(_messages(events, seen))
            except Exception as exc:  # broker down: keep the cursor, try again on the next round
                broker.failed(exc)  # one line per outage
                return False
            broker.ok()
        self._published_at = handed
        now = timezone.now()
        lags = [(now - event.created_at).total_seconds() * 1000 for event in events]
        self.lags_ms.extend(lags)
        self._unsaved_lags.extend(lags)
        self.published += len(events)
        last = events[-1]
        self.cursor = {"txid": last.txid, "id": last.id}
        if time.monotonic() - self._saved_at >= self.save_every:
            self._save(epoch)
        return len(events) == self.batch

    def _taken_in_here(self, events: list, seen: dict[int, float]) -> bool:
        """The resident intake: a batch it accepts is taken in by this process, at once;
        any other, or one it fails on before its commit, goes through the broker."""
        if self.take_in is None or time.monotonic() < self._take_in_paused_until or dependency(BROKER).down:
            # (With the broker down, as a take-in's refused retry or a publish found, the
            # relay holds its cursor as before: the take-ins' retries and the recovery
            # sweep need the broker.)
            return False
        started = time.monotonic()
        try:
            return self.take_in(_messages(events, seen))
        except DatabaseError as exc:  # a deadlock, a lock or statement timeout, PostgreSQL away
            logger.warning("relay: the take-in of %d events failed (%s); they go through the broker", len(events), exc)
            return False
        except Exception:
            logger.exception("relay: the resident intake failed on %d events; they go through the broker", len(events))
            return False
        finally:
            lasted = time.monotonic() - started
            if self.take_in_budget is not None and lasted > self.take_in_budget:
                # The lease is renewed between rounds: take-ins this slow (a starved machine,
                # busy ledger rows) would let it expire. Leave the next batches to the
                # intake workers for a while.
                self._take_in_paused_until = time.monotonic() + settings.RELAY_TAKE_IN_PAUSE_SECONDS
                logger.warning(
                    "relay: a take-in of %d events took %.0f ms; batches go through the broker for %g s",
                    len(events),
                    lasted * 1000,
                    settings.RELAY_TAKE_IN_PAUSE_SECONDS,
                )

    def _probe_broker(self) -> None:
        """Idle while the broker is down (as the resident intake found it): ask it again,
        with backoff, so that take-ins resume as soon as it is back."""
        broker = dependency(BROKER)
        if not broker.down or self._queue is None or not broker.may_try():
            return
        try:
            answers = self._queue.answers()
        except Exception as exc:
            broker.failed(exc)
        else:
            if answers:
                broker.ok()

    def _wait_behind_horizon(self) -> bool:
        """Nothing visible after the cursor. If committed events wait behind the snapshot
        guard, pause briefly and ask for another round at once (True); else idle (False)."""
        if connection.vendor != "postgresql" or not outbox_committed_after(
            txid=int(self.cursor["txid"]), event_id=int(self.cursor["id"])
        ):
            self._behind = 0.0
            return False
        self._behind = min(max(2 * self._behind, 0.001), settings.RELAY_POLL_SECONDS)
        time.sleep(self._behind)
        return True

    def _save(self, epoch: int) -> None:
        lags, self._unsaved_lags = self._unsaved_lags, []
        cursor = {
            "txid": self.cursor["txid"],
            "id": self.cursor["id"],
            "published": self.published,
            # Over every event published since the last save.
            "lag_ms_p50": round(statistics.median(lags), 3) if lags else None,
            "lag_ms_max": round(max(lags), 3) if lags else None,
            "at": timezone.now().isoformat(),
        }
        with transaction.atomic(durable=True):
            if connection.vendor == "postgresql":
                # Losing the last saves in a server crash only re-publishes a few events,
                # which the intake ignores: no need to wait for the disk here.
                with connection.cursor() as sql:
                    sql.execute("SET LOCAL synchronous_commit = off")
            checkpoint_write(name=LEASE, epoch=epoch, holder=self.holder, value=cursor)
        self.cursor = cursor
        self._saved_at = time.monotonic()


class _BrokerQueue:
    """How many messages wait in the intake's queue, and whether the broker answers (a
    Redis broker only; else none, and no answer)."""

    def __init__(self):
        self.client = None
        self.name = settings.CELERY_TASK_DEFAULT_QUEUE
        url = settings.CELERY_BROKER_URL or ""
        if url.startswith(("redis://", "rediss://")):
            import redis

            self.client = redis.Redis.from_url(url, socket_timeout=0.05, socket_connect_timeout=0.05)

    def answers(self) -> bool | None:
        """Whether the broker answers (None: not a Redis broker, cannot tell)."""
        return None if self.client is None else bool(self.client.ping())

    def waiting(self) -> bool:
        if self.client is None:
            return False
        try:
            return bool(self.client.llen(self.name))
        except Exception:  # a broker that does not answer at once: publish, and let that fail
            return False


def _messages(events: list, seen: dict[int, float]) -> list[dict]:
    sent = time.time()
    return [{**outbox_message(event), "relay_seen_at": seen[event.id], "relay_sent_at": sent} for event in events]


def _take_in_here(messages: list[dict]) -> bool:
    from .services import settlements_take_in_here

    return settlements_take_in_here(events=messages)


def _publish_to_intake(messages: list[dict]) -> None:
    from .tasks import intake_publish

    # No publish retries: with the broker down the relay must hold its cursor and come
    # back, not block inside the client.
    intake_publish(messages, retry=False)


def relay_singleton(*, ttl: float = 3.0, announce=print, publish=None, interval: float | None = None) -> Singleton:
    take_in = _take_in_here if publish is None and settings.RELAY_TAKE_IN else None
    relay = Relay(publish=publish, take_in=take_in, take_in_budget=ttl / 4)
    poll = settings.RELAY_POLL_SECONDS if interval is None else interval
    singleton = Singleton(LEASE, work=relay.work, ttl=ttl, interval=poll, on_lead=relay.on_lead, announce=announce)
    relay.holder = singleton.holder
    singleton.relay = relay
    return singleton


def listen_for_commits(wake: Callable[[], None], stop: threading.Event) -> None:
    """Call ``wake`` whenever an outbox writer commits; the relay's polling covers gaps."""
    listen(NOTIFY_CHANNEL, wake, stop)


def relay_lag_seconds() -> dict:
    """For /readyz and /metrics: the age of the oldest event the relay has not published,
    and its last recorded figures."""
    mark = checkpoint_load(LEASE, START)
    pending = outbox_after(txid=int(mark.get("txid", 0)), event_id=int(mark.get("id", 0)), limit=1)
    backlog_age = (timezone.now() - pending[0].created_at).total_seconds() if pending else 0.0
    return {"backlog_age_seconds": round(backlog_age, 3), "cursor": mark}
