"""Nothing is left half done, and nothing is lost.

**Recovery** (``settlements_recover``, the ``settlement.recover`` sweep every few seconds and on
every worker start) re-enqueues settlements idle in a non-final state from their current step:
a crashed worker, a lost message. Settlements waiting at step 3 while a venue executor holds a
live claim are behind a backlog, not lost: the executors take the oldest first, so the sweep
leaves them; once no claim is live (the venue workers died, the messages were lost) it sends
them again.

**Reconciliation** (``outbox_reconcile``, the ``settlement.reconcile`` sweep): outbox events of
the settlement topics that have been committed for a while without a settlement record are
published to the intake again. A watermark (the ``(txid, id)`` up to which every event is known
to have its settlement) keeps each pass short; it is read with the same snapshot guard as the
relay, so an event committed late is never stepped over.

An event without a settlement may simply be waiting in the broker behind a backlog: sent
again every pass, it would pile duplicates onto the very queue that is late. So whoever
publishes to the intake (the relay, the reconciliation) first *marks* the events as queued, in
a sorted set on the broker's own Redis (score: when), and the intake task unmarks its events
as it starts them. A pass re-publishes only events that are neither accepted nor marked
within ``SETTLEMENT_RECONCILE_QUEUED_SECONDS``: each missing event goes again at most once per
that period. The marks share the broker's fate: a broker that lost its messages (restarted,
flushed) lost their marks too, and those events go again on the next pass; an intake whose
worker died had already unmarked its events.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trading.models import SingletonCheckpoint
from trading.outbox import outbox_after, outbox_message

from .. import selectors
from ..models import ACTIVE_STATES, Settlement
from .intake import TOPICS
from .pipeline import settlements_enqueue
from .state import counter_add
from .swap import venue_queue

logger = logging.getLogger(__name__)

CHECKPOINT = "settlement-reconcile"


# --- recovery -------------------------------------------------------------------------------


def settlements_stalled(*, idle_seconds: float | None = None, limit: int = 5000) -> dict[int, list[int]]:
    """Active settlements nobody is working on: unclaimed (or claim expired), due, and idle
    past the timeout. Grouped by their current step."""
    now = timezone.now()
    idle = settings.SETTLEMENT_IDLE_SECONDS if idle_seconds is None else idle_seconds
    rows = (
        Settlement.objects.filter(state__in=ACTIVE_STATES, updated_at__lt=now - timedelta(seconds=idle))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("id")
        .values_list("step", "id")[:limit]
    )
    by_step: dict[int, list[int]] = defaultdict(list)
    for step, settlement_id in rows:
        by_step[step].append(settlement_id)
    return dict(by_step)


def settlements_touch(*, ids: Sequence[int]) -> None:
    """Mark re-enqueued settlements so the next sweeps leave them alone while their message
    waits in the queue: they count as idle again only one more idle period later. (Were a
    sweep to re-enqueue whatever waits longer than the idle timeout, a long queue would grow
    itself with duplicates.)"""
    later = timezone.now() + timedelta(seconds=settings.SETTLEMENT_IDLE_SECONDS)
    Settlement.objects.filter(id__in=list(ids), state__in=ACTIVE_STATES).update(updated_at=later)


def settlements_recover() -> int:
    """Re-enqueue the stalled settlements from their current step; returns how many."""
    stalled = settlements_stalled()
    if 3 in stalled and venue_queue() and selectors.venue_busy():
        # Waiting behind the venue stage's backlog, not lost: its executors take the
        # oldest first and keep claiming while work waits.
        del stalled[3]
    total = 0
    for step, ids in sorted(stalled.items()):
        settlements_touch(ids=ids)
        settlements_enqueue(ids=ids, from_step=step)
        total += len(ids)
    if total:
        logger.warning("recovery re-enqueued %d settlement(s): %s", total, {s: len(i) for s, i in stalled.items()})
        counter_add("settlement_recovered", total)
    return total


# --- reconciliation -------------------------------------------------------------------------


def outbox_reconcile(
    *, publish: Callable[[list[dict]], None], older_than: float | None = None, limit: int = 5000
) -> int:
    """Publish the events still without a settlement and not queued; returns how many were
    re-published."""
    older_than = settings.SETTLEMENT_RECONCILE_AFTER_SECONDS if older_than is None else older_than
    mark = SingletonCheckpoint.objects.filter(name=CHECKPOINT).values_list("value", flat=True).first() or {}
    txid, event_id = int(mark.get("txid", 0)), int(mark.get("id", 0))
    events = outbox_after(txid=txid, event_id=event_id, limit=limit, topics=TOPICS)
    if not events:
        return 0
    settled = set(Settlement.objects.filter(ref__in=[e.key for e in events]).values_list("ref", flat=True))
    cutoff = timezone.now() - timedelta(seconds=older_than)
    missing, watermark, blocked = [], (txid, event_id), False
    for event in events:
        if event.key in settled:
            if not blocked:
                watermark = (event.txid, event.id)
            continue
        blocked = True
        if event.created_at < cutoff:
            missing.append(event)
    if missing:
        marks = queue_marks()
        marks.trim()
        queued = marks.queued([e.id for e in missing])
        missing = [e for e in missing if e.id not in queued]
    if missing:
        publish([outbox_message(e) for e in missing])
        counter_add("outbox_republished", len(missing))
    if watermark != (txid, event_id):
        with transaction.atomic(durable=True):
            SingletonCheckpoint.objects.update_or_create(
                name=CHECKPOINT, defaults={"epoch": 0, "value": {"txid": watermark[0], "id": watermark[1]}}
            )
    return len(missing)


def queued_seconds() -> float:
    return float(settings.SETTLEMENT_RECONCILE_QUEUED_SECONDS)


class QueueMarks:
    """Outbox event ids on their way to the intake, with when they were published: a
    sorted set on the broker's Redis, or this process's memory when the broker is not
    Redis (the embedded mode, where publishing runs the intake at once)."""

    def __init__(self, broker_url: str, key: str):
        self.key = key
        self.client = None
        self._local: dict[int, float] = {}
        self._lock = threading.Lock()
        if broker_url.startswith(("redis://", "rediss://")):
            import redis

            # Short timeouts: the relay calls this on its publish path.
            self.client = redis.Redis.from_url(broker_url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def mark(self, ids: Iterable[int]) -> None:
        at = time.time()
        members = {int(i): at for i in ids}
        if not members:
            return
        if self.client is not None:
            self.client.zadd(self.key, {str(i): at for i in members})
            return
        with self._lock:
            self._local.update(members)

    def unmark(self, ids: Iterable[int]) -> None:
        ids = [int(i) for i in ids]
        if not ids:
            return
        if self.client is not None:
            self.client.zrem(self.key, *[str(i) for i in ids])
            return
        with self._lock:
            for i in ids:
                self._local.pop(i, None)

    def queued(self, ids: list[int]) -> set[int]:
        """Those of ``ids`` marked within the last ``SETTLEMENT_RECONCILE_QUEUED_SECONDS``."""
        if not ids:
            return set()
        since = time.time() - queued_seconds()
        if self.client is not None:
            scores = self.client.zmscore(self.key, [str(i) for i in ids])
        else:
            with self._lock:
                scores = [self._local.get(int(i)) for i in ids]
        return {int(i) for i, score in zip(ids, scores) if score is not None and score >= since}

    def trim(self) -> None:
        """Forget marks older than the period: they no longer count, and a message that
        never reached an intake (discarded, or held by a worker that died before starting
        it) leaves its marks behind."""
        before = time.time() - queued_seconds()
        if self.client is not None:
            self.client.zremrangebyscore(self.key, "-inf", before)
            return
        with self._lock:
            for i in [i for i, at in self._local.items() if at < before]:
                del self._local[i]


_marks: dict[tuple[int, str, str], QueueMarks] = {}
_marks_lock = threading.Lock()


def queue_marks() -> QueueMarks:
    """This process's marks for the configured broker and intake queue."""
    url = settings.CELERY_BROKER_URL or ""
    key = f"settlement:queued:{settings.CELERY_TASK_DEFAULT_QUEUE}"
    cache_key = (os.getpid(), url, key)
    marks = _marks.get(cache_key)
    if marks is None:
        with _marks_lock:
            marks = _marks.setdefault(cache_key, QueueMarks(url, key))
    return marks


def events_queued(messages: list[dict]) -> None:
    """Before publishing intake messages: their events are on their way. (Marked first: an
    intake that starts at once must find the mark to remove.)"""
    queue_marks().mark(m["id"] for m in messages if "id" in m)


def events_taken(messages: list[dict]) -> None:
    """An intake task starts on these events: if its worker dies now, the next pass sends
    them again. Best effort: a mark left behind only delays that by the period."""
    try:
        queue_marks().unmark(m["id"] for m in messages if "id" in m)
    except Exception as exc:
        logger.warning("intake could not unmark %d event(s): %s: %s", len(messages), type(exc).__name__, exc)
