"""Settlement writes, one module per part of the back office:

* ``intake`` — accept outbox events (one settlement per event key) and take them through
  steps 1 and 2 in the same transaction;
* ``steps`` — the ledger legs of steps 1, 2 and 4, and the run of ledger-only steps;
* ``swap`` — step 3 at the venue (send mark, look-up before any resend, fills) and its
  executor with the venue threads;
* ``pipeline`` — the one path that runs settlements from a step to the end;
* ``recovery`` — the recovery sweep and the outbox reconciliation with its queue marks;
* ``review`` — staff retry and resolve, audited;
* ``state`` — what they share: claims, step rows, failures and retries, counters, the order
  mirror.

Every step is idempotent. Steps 1, 2 and 4 are ledger transfers whose ids derive from
(settlement, step) and commit in the same transaction that advances the settlement, so a
step is either wholly done or not at all. Step 3 talks to the venue: the settlement records
that it is about to send (``venue_sent_at``) before sending, and a later attempt that finds
that mark looks the client order id up on the venue before it would ever send again.
Concurrent executors (a redelivered message, a recovery sweep) are kept apart by the claim.

This module hands the public names on.
"""

from .intake import TOPICS, settlements_accept, settlements_take_in, settlements_take_in_here
from .pipeline import settlements_continue, settlements_enqueue, settlements_run
from .recovery import (
    outbox_reconcile,
    settlements_recover,
    settlements_stalled,
    settlements_touch,
)
from .review import settlement_resolve, settlement_retry
from .state import client_order_id, counter_add
from .swap import settlements_venue_run, venue_queue

__all__ = [
    "TOPICS",
    "client_order_id",
    "counter_add",
    "outbox_reconcile",
    "settlement_resolve",
    "settlement_retry",
    "settlements_accept",
    "settlements_continue",
    "settlements_enqueue",
    "settlements_recover",
    "settlements_run",
    "settlements_stalled",
    "settlements_take_in",
    "settlements_take_in_here",
    "settlements_touch",
    "settlements_venue_run",
    "venue_queue",
]
