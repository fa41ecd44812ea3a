"""Celery tasks of the back office. Thin: they take ids and call services.

One relay read travels as one intake message (split at ``SETTLEMENT_BATCH_SIZE``); the
intake records the batch and takes it through steps 1+2 in one transaction. Step 3 waits on
the venue's round trips, so it runs elsewhere: a ``settlement.venue`` message on
``SETTLEMENT_VENUE_QUEUE``, served by a worker with a thread pool (see the Procfile), whose
tasks claim what waits at step 3, send all of a batch's orders at once and commit step 4
with the fills. Intake workers thus never wait for a venue, and many batches are at the
venue together. With ``SETTLEMENT_VENUE_QUEUE`` empty the intake runs steps 3+4 itself, in
the same task.

A settlement that fails a step stays there and comes back through ``settlement.resume``
after its backoff (or through the recovery sweep, if that message is lost).
"""

from __future__ import annotations

import time

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import DatabaseError

from . import services
from .services import recovery

# Hard time limits only: a soft limit raises inside whatever runs (a transaction's rollback,
# say) and can leave the worker's connection in a broken state; a hard limit replaces the
# worker process, and the recovery sweep picks its settlements up.
_DB_RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": 0.2, "retry_backoff_max": 5, "max_retries": 20}


@shared_task(name="settlement.intake", time_limit=120, **_DB_RETRY)
def settlement_intake(events: list[dict]) -> int:
    """Acceptance: record a settlement per event (duplicates are no-ops) and settle them."""
    started = time.time()
    events = [{**event, "intake_started_at": started} for event in events]
    recovery.events_taken(events)
    new_ids, _ = services.settlements_take_in(events=events)
    return len(new_ids)


@shared_task(name="settlement.run", time_limit=120, **_DB_RETRY)
def settlement_run(ids: list[int], from_step: int = 1) -> int:
    return len(services.settlements_run(ids=ids, from_step=from_step))


@shared_task(name="settlement.venue", time_limit=120, **_DB_RETRY)
def settlement_venue(ids: list[int]) -> int:
    """Step 3 at the venue (and step 4) for settlements waiting there: the venue queue's task."""
    done, more = services.settlements_venue_run(ids=ids)
    if more and services.venue_queue():
        # Its time is up but work still waits: a successor carries on, so a backlog never
        # depends on the recovery sweep.
        settlement_venue.apply_async(args=[[]], queue=services.venue_queue())
    return len(done)


@shared_task(name="settlement.resume", time_limit=120, **_DB_RETRY)
def settlement_resume(step: int, ids: list[int]) -> None:
    services.settlements_run(ids=ids, from_step=step)


@shared_task(name="settlement.recover", time_limit=60, **_DB_RETRY)
def settlement_recover() -> int:
    """Re-enqueue settlements idle in a non-final state (a crashed worker, a lost message)."""
    return services.settlements_recover()


@shared_task(name="settlement.reconcile", time_limit=60, **_DB_RETRY)
def outbox_reconcile() -> int:
    """Re-publish outbox events that have no settlement a few seconds after their commit."""
    return services.outbox_reconcile(publish=intake_publish)


def intake_publish(messages: list[dict], *, retry: bool = True) -> None:
    """Hand events to the acceptance intake, in micro-batches, marked as queued (see
    ``settlement.services.recovery``)."""
    recovery.events_queued(messages)
    size = settings.SETTLEMENT_BATCH_SIZE
    for start in range(0, len(messages), size):
        settlement_intake.apply_async(args=[messages[start : start + size]], retry=retry)


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs):
    # A worker that starts (or restarts after a crash) sweeps for work left half done.
    settlement_recover.delay()
