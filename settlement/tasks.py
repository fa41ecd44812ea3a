"""Celery tasks of the back office. Thin: they take ids and call services.

One relay read travels as one intake message (split at ``SETTLEMENT_BATCH_SIZE``); the
intake records the batch and runs it through the four steps in the same task
(``services.settlements_run``: steps 1+2 in one transaction, step 3 at the venue, step 4
committed with it), so a batch costs one broker message, not five. A settlement that fails
a step stays there and comes back through ``settlement.resume`` after its backoff (or
through the recovery sweep, if that message is lost). ``settlement.step`` runs one step
and hands its ids on, for chains queued by an earlier version.
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


def chains_start(ids: list[int], *, from_step: int = 1) -> None:
    """One task per micro-batch of settlements, running them from ``from_step`` to the end."""
    size = batch_size()
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        if step_chains():
            steps = [settlement_step.si(part, from_step)] + [settlement_step.s(step) for step in range(from_step + 1, 5)]
            chain(*steps).apply_async()
        else:
            settlement_run.apply_async(args=[part, from_step])


@shared_task(name="settlement.intake", time_limit=120, **_DB_RETRY)
def settlement_intake(events: list[dict]) -> int:
    """Acceptance: record a settlement per event (duplicates are no-ops) and settle them."""
    if step_chains():
        new_ids = services.settlements_accept(events=events)
        chains_start(new_ids)
        return len(new_ids)
    new_ids, _ = services.settlements_take_in(events=events)
    if len(new_ids) < len(events):
        # A redelivery (say, its worker died mid-batch): pick up what is still unfinished
        # now rather than after the idle timeout. Claims keep a live executor's rows apart.
        unfinished = selectors.settlements_unfinished(refs=[e.get("key") for e in events])
        for step in (1, 2, 3, 4) if unfinished else ():
            services.settlements_run(ids=unfinished, from_step=step)
    return len(new_ids)


@shared_task(name="settlement.run", time_limit=120, **_DB_RETRY)
def settlement_run(ids: list[int], from_step: int = 1) -> int:
    return len(services.settlements_run(ids=ids, from_step=from_step))


@shared_task(name="settlement.step", time_limit=120, **_DB_RETRY)
def settlement_step(ids: list[int], step: int) -> list[int]:
    return services.settlement_step_run(step=step, ids=ids)


@shared_task(name="settlement.resume", time_limit=120, **_DB_RETRY)
def settlement_resume(step: int, ids: list[int]) -> None:
    if step_chains():
        chains_start(ids, from_step=step)
    else:
        services.settlements_run(ids=ids, from_step=step)


@shared_task(name="settlement.recover", time_limit=60, **_DB_RETRY)
def settlement_recover() -> int:
    """Re-enqueue settlements idle in a non-final state (a crashed worker, a lost message)."""
    stalled = services.settlements_stalled()
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
    """Hand events to the acceptance intake, in micro-batches."""
    size = batch_size()
    for start in range(0, len(messages), size):
        settlement_intake.apply_async(args=[messages[start : start + size]], retry=retry)


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs):
    # A worker that starts (or restarts after a crash) sweeps for work left half done.
    settlement_recover.delay()
