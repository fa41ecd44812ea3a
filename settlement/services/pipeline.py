"""The one path that runs settlements through their steps, whoever asks: a retry after its
backoff, the recovery sweep, a redelivered intake message, staff putting a settlement back to
work.

Each step works on a micro-batch that also takes every other settlement waiting at that step,
each settlement with its own state. Steps 1 and 2 (ledger only) commit together; step 3 runs
at the venue and commits with step 4 (ledger only). Step 3 goes to the venue executor's queue
when there is one (``SETTLEMENT_VENUE_QUEUE``), so no worker but the venue executor waits for
a venue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trading.celery import enqueue_on_commit

from .state import batch_size
from .steps import ledger_run
from .swap import venue_hand_on, venue_queue, venue_run


def settlements_run(
    *, ids: Sequence[int], from_step: int = 1, to_step: int = 4, through_venue: bool | None = None
) -> list[int]:
    """Run the settlements among ``ids`` (and others waiting at each step) from ``from_step``
    through ``to_step``; returns the ids that completed ``to_step``.

    ``through_venue`` (default: when there is no ``SETTLEMENT_VENUE_QUEUE``): step 3 runs
    here; otherwise the batch is handed to the venue executor at step 3, which takes it
    through step 4, and the ids handed on are not returned."""
    inline = not venue_queue() if through_venue is None else through_venue
    ids, step = list(ids), from_step
    if ids and step <= 2 and step <= to_step:
        last = min(2, to_step)
        ids, step = ledger_run(ids, first=step, last=last), last + 1
    if ids and step == 3 and step <= to_step:
        if not inline:
            venue_hand_on(ids)
            return []
        last = min(4, to_step)
        ids, step = venue_run(ids, last=last), last + 1
    if ids and step == 4 and step <= to_step:
        ids = ledger_run(ids, first=4, last=4)
    return ids


def settlements_continue(*, by_step: Mapping[int, Sequence[int]], through_venue: bool | None = None) -> list[int]:
    """Run unfinished settlements, grouped by their current step, each from that step to the
    end; returns the ids settled (or handed on at step 3, without ``through_venue``)."""
    carried = []
    for step, ids in sorted(by_step.items()):
        carried += settlements_run(ids=ids, from_step=step, through_venue=through_venue)
    return carried


def settlements_enqueue(*, ids: Sequence[int], from_step: int) -> None:
    """Queue settlements to run from ``from_step`` to the end, a batch per task, once the
    caller's transaction commits: settlements at step 3 straight to the venue executor."""
    ids = list(ids)
    if from_step == 3 and venue_queue():
        venue_hand_on(ids)
        return
    size = batch_size()
    for start in range(0, len(ids), size):
        enqueue_on_commit("settlement.run", ids[start : start + size], from_step)
