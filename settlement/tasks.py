"""Celery tasks of the back office. Thin: they take ids and call services.

One relay read travels as one intake message (split at ``SETTLEMENT_BATCH_SIZE``); the
intake records the batch and takes it through steps 1+2 in one transaction. Step 3 waits on
the venue's round trips, so it runs elsewhere: a ``settlement.venue`` message on
``SETTLEMENT_VENUE_QUEUE``, served by a worker with a thread pool (see the Procfile), whose
tasks claim what waits at step 3, send all of a batch's orders at once and commit step 4
with the fills. Intake workers thus never wait for a venue, and many batches are at the
venue together. With ``SETTLEMENT_VENUE_QUEUE`` empty the intake runs steps 3+4 itself, in
the same task (the previous process model).

A settlement that fails a step stays there and comes back through ``settlement.resume``
after its backoff (or through the recovery sweep, if that message is lost).
``settlement.step`` runs one step and hands its ids on, for chains queued by an earlier
version.
"""

from __future__ import annotations

import logging

from celery import chain, shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import DatabaseError

from . import reconcile, selectors, services

logger = logging.getLogger(__name__)

# Hard time limits only: a soft limit raises inside whatever runs (a transaction's rollback,
# say) and can leave the worker's connection in a broken state; a hard limit replaces the
# worker process, and the recovery sweep picks its settlements up.
_DB_RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": 0.2, "retry_backoff_max": 5, "max_retries": 20}


def batch_size() -> int:
    return getattr(settings, "SETTLEMENT_BATCH_SIZE", 200)


def step_chains() -> bool:
    """The literal design, for comparison (``bench/settlement.py`` "literal"): a chain of
    one task per step instead of the batch running its steps in one task."""
    return bool(settings.SETTLEMENT_STEP_CHAINS)


def venue_queue() -> str:
    """The queue of step 3's venue executor; empty: the intake runs step 3 itself."""
    return settings.SETTLEMENT_VENUE_QUEUE


def chains_start(ids: list[int], *, from_step: int = 1) -> None:
    """One task per micro-batch of settlements, running them from ``from_step`` to the end."""
    if from_step == 3 and venue_queue() and not step_chains():
        venue_start(ids)
        return
    size = batch_size()
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        if step_chains():
            steps = [settlement_step.si(part, from_step)] + [settlement_step.s(step) for step in range(from_step + 1, 5)]
            chain(*steps).apply_async()
        else:
            settlement_run.apply_async(args=[part, from_step])


def venue_start(ids: list[int]) -> None:
    """Hand settlements waiting at step 3 to the venue executor (or, without its queue,
    run steps 3+4 here)."""
    if not ids:
        return
    queue = venue_queue()
    if not queue:
        services.settlements_run(ids=ids, from_step=3)
        return
    size = batch_size()
    for start in range(0, len(ids), size):
        settlement_venue.apply_async(args=[ids[start : start + size]], queue=queue)


def _run(ids: list[int], from_step: int) -> list[int]:
    """Steps ``from_step``..4 as this worker's part: the ledger steps here, step 3 on
    the venue queue when there is one."""
    if not venue_queue() or from_step >= 4:
        return services.settlements_run(ids=ids, from_step=from_step)
    venue_start(services.settlements_run(ids=ids, from_step=from_step, through_venue=False))
    return []


@shared_task(name="settlement.intake", time_limit=120, **_DB_RETRY)
def settlement_intake(events: list[dict]) -> int:
    """Acceptance: record a settlement per event (duplicates are no-ops) and settle them."""
    reconcile.events_taken(events)
    if step_chains():
        new_ids = services.settlements_accept(events=events)
        chains_start(new_ids)
        return len(new_ids)
    through_venue = not venue_queue()
    new_ids, carried = services.settlements_take_in(events=events, through_venue=through_venue)
    if not through_venue:
        venue_start(carried)
    if len(new_ids) < len(events):
        # A redelivery (say, its worker died mid-batch): pick up what is still unfinished
        # now rather than after the idle timeout. Claims keep a live executor's rows apart.
        unfinished = selectors.settlements_unfinished(refs=[e.get("key") for e in events])
        if unfinished:
            for step in (1, 2, 3, 4) if through_venue else (1, 2, 4):
                services.settlements_run(ids=unfinished, from_step=step, through_venue=through_venue)
            if not through_venue:
                venue_start(unfinished)  # it takes those now at step 3
    return len(new_ids)


@shared_task(name="settlement.run", time_limit=120, **_DB_RETRY)
def settlement_run(ids: list[int], from_step: int = 1) -> int:
    return len(_run(ids, from_step))


@shared_task(name="settlement.venue", time_limit=120, **_DB_RETRY)
def settlement_venue(ids: list[int]) -> int:
    """Step 3 at the venue (and step 4) for settlements waiting there: the venue queue's task."""
    done, more = services.settlements_venue_run(ids=ids)
    if more and venue_queue():
        # Its time is up but work still waits: a successor carries on, so a backlog never
        # depends on the recovery sweep.
        settlement_venue.apply_async(args=[[]], queue=venue_queue())
    return len(done)


@shared_task(name="settlement.step", time_limit=120, **_DB_RETRY)
def settlement_step(ids: list[int], step: int) -> list[int]:
    return services.settlement_step_run(step=step, ids=ids)


@shared_task(name="settlement.resume", time_limit=120, **_DB_RETRY)
def settlement_resume(step: int, ids: list[int]) -> None:
    if step_chains():
        chains_start(ids, from_step=step)
    else:
        _run(ids, step)


@shared_task(name="settlement.recover", time_limit=60, **_DB_RETRY)
def settlement_recover() -> int:
    """Re-enqueue settlements idle in a non-final state (a crashed worker, a lost message)."""
    stalled = services.settlements_stalled()
    if 3 in stalled and venue_queue() and not step_chains() and selectors.venue_busy():
        # Waiting behind the venue stage's backlog, not lost: its executors take the
        # oldest first and keep claiming while work waits.
        del stalled[3]
    total = 0
    for step, ids in sorted(stalled.items()):
        services.settlements_touch(ids=ids)
        chains_start(ids, from_step=step)
        total += len(ids)
    if total:
        logger.warning("recovery re-enqueued %d settlement(s): %s", total, {s: len(i) for s, i in stalled.items()})
        services.counter_add("settlement_recovered", total)
    return total


@shared_task(name="settlement.reconcile", time_limit=60, **_DB_RETRY)
def outbox_reconcile() -> int:
    """Re-publish outbox events that have no settlement a few seconds after their commit."""
    return reconcile.outbox_reconcile(publish=intake_publish)


def intake_publish(messages: list[dict], *, retry: bool = True) -> None:
    """Hand events to the acceptance intake, in micro-batches, marked as queued (see
    ``settlement.reconcile``)."""
    reconcile.events_queued(messages)
    size = batch_size()
    for start in range(0, len(messages), size):
        settlement_intake.apply_async(args=[messages[start : start + size]], retry=retry)


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs):
    # A worker that starts (or restarts after a crash) sweeps for work left half done.
    settlement_recover.delay()
