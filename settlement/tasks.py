"""Celery tasks of the back office. Thin: they take ids and call services.

A settlement batch travels as one chain ``step 1 -> 2 -> 3 -> 4``; each step task returns
the ids that completed it, which become the next task's batch. A settlement that fails a
step leaves its chain there and comes back through ``settlement.resume`` after its backoff
(or through the recovery sweep, if that message is lost).
"""

from __future__ import annotations

import logging

from celery import chain, shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import DatabaseError

from . import reconcile, services

logger = logging.getLogger(__name__)

# Hard time limits only: a soft limit raises inside whatever runs (a transaction's rollback,
# say) and can leave the worker's connection in a broken state; a hard limit replaces the
# worker process, and the recovery sweep picks its settlements up.
_DB_RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": 0.2, "retry_backoff_max": 5, "max_retries": 20}


def batch_size() -> int:
    return getattr(settings, "SETTLEMENT_BATCH_SIZE", 200)


def chains_start(ids: list[int], *, from_step: int = 1) -> None:
    """One chain per micro-batch of settlements, from ``from_step`` to the end."""
    size = batch_size()
    for start in range(0, len(ids), size):
        part = ids[start : start + size]
        steps = [settlement_step.si(part, from_step)] + [settlement_step.s(step) for step in range(from_step + 1, 5)]
        chain(*steps).apply_async()


@shared_task(name="settlement.intake", time_limit=120, **_DB_RETRY)
def settlement_intake(events: list[dict]) -> int:
    """Acceptance: record a settlement per event (duplicates are no-ops) and start them."""
    new_ids = services.settlements_accept(events=events)
    if new_ids:
        chains_start(new_ids)
    return len(new_ids)


@shared_task(name="settlement.step", time_limit=120, **_DB_RETRY)
def settlement_step(ids: list[int], step: int) -> list[int]:
    return services.settlement_step_run(step=step, ids=ids)


@shared_task(name="settlement.resume", time_limit=30, **_DB_RETRY)
def settlement_resume(step: int, ids: list[int]) -> None:
    chains_start(ids, from_step=step)


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
