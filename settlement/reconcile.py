"""Reconciliation: nothing is lost while the relay or the broker is down.

Every few seconds, outbox events of the settlement topics that have been committed for a
while without a settlement record are published to the intake again. A watermark (the
``(txid, id)`` up to which every event is known to have its settlement) keeps each pass
short; it is read with the same snapshot guard as the relay, so an event committed late
is never stepped over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trading.models import SingletonCheckpoint
from trading.outbox import outbox_after, outbox_message

from .models import Settlement
from .services import TOPICS, counter_add

CHECKPOINT = "settlement-reconcile"


def outbox_reconcile(*, publish: Callable[[list[dict]], None], older_than: float | None = None, limit: int = 5000) -> int:
    """Publish the events still without a settlement; returns how many were re-published."""
    older_than = getattr(settings, "SETTLEMENT_RECONCILE_AFTER_SECONDS", 3.0) if older_than is None else older_than
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
        publish([outbox_message(e) for e in missing])
        counter_add("outbox_republished", len(missing))
    if watermark != (txid, event_id):
        with transaction.atomic(durable=True):
            SingletonCheckpoint.objects.update_or_create(
                name=CHECKPOINT, defaults={"epoch": 0, "value": {"txid": watermark[0], "id": watermark[1]}}
            )
    return len(missing)
