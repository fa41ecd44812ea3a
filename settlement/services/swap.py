"""Step 3, the market swap at the venue (USDT -> BTC/ETH for an opening buy, the mirror image
for a close or an exercise), and its executor.

Step 3 works outside a transaction, so a batch is *claimed* first (``state.claim``), and every
settlement that was never sent gets its durable send mark (``venue_sent_at``) in the claim's
transaction, before anything goes out. An attempt that finds the mark looks the client order
id (``stl-<settlement id>``) up on the venue first; if the venue has not seen it and an earlier
request could still be in flight, it waits (``venue_outcome_unknown``) rather than risk a
second execution. All of a batch's calls go out at once on this process's venue threads, and
the fills commit together with step 4's legs.

The executor (``settlements_venue_run``, the ``settlement.venue`` tasks on the venue queue)
claims only as many settlements as the process has venue calls free
(``SETTLEMENT_VENUE_CONCURRENCY``, and no more than the adapter serves at once:
``max_in_flight``), so no batch holds its claim while it waits for another's calls.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ledger.models import SystemRole
from ledger.services.transfers import TransferRequest, transfers_execute
from trading.celery import enqueue_on_commit
from trading.money import quantize
from venues.base import BUY, FILLED, SELL, Execution, VenueError, VenueTimeout
from venues.config import settlement_venue

from ..models import Settlement
from .state import (
    advance,
    batch_size,
    claim,
    client_order_id,
    mark_sent,
    record_failure,
)
from .steps import Accounts, ledger_steps, transfer

logger = logging.getLogger(__name__)


def venue_queue() -> str:
    """The queue of step 3's executor; empty: step 3 runs wherever the batch is."""
    return settings.SETTLEMENT_VENUE_QUEUE


def venue_inline(size: int) -> bool:
    """Whether the intake runs step 3 of a batch of ``size`` itself rather than hand it to the
    venue queue: with no queue, or for a batch of at most ``SETTLEMENT_VENUE_INLINE_BATCH``
    at a venue whose adapter knows its round trip to be within ``SETTLEMENT_VENUE_INLINE_MS``.
    Then the batch is claimed in the intake's own transaction and its orders go out right
    after that commit, without another message, claim and commit. A slow (or unknown) venue
    would hold the intake's process for its round trips, and a large batch (a backlog) is
    better spread over both kinds of worker: those keep the queue."""
    return not venue_queue() or venue_fast(size)


def venue_fast(size: int) -> bool:
    """Whether a batch of ``size`` is small (at most ``SETTLEMENT_VENUE_INLINE_BATCH``) and
    the venue's adapter knows its round trip to be within ``SETTLEMENT_VENUE_INLINE_MS``: the
    whole batch is then done in a few ms more than its ledger legs."""
    limit = settings.SETTLEMENT_VENUE_INLINE_MS
    if limit <= 0 or size > settings.SETTLEMENT_VENUE_INLINE_BATCH:
        return False
    expected = settlement_venue().round_trip_ms
    return expected is not None and expected <= limit


def venue_hand_on(ids: Sequence[int]) -> None:
    """Hand settlements waiting at step 3 to the venue executor, a batch per message, once
    the caller's transaction commits."""
    ids, size = list(ids), batch_size()
    for start in range(0, len(ids), size):
        enqueue_on_commit("settlement.venue", ids[start : start + size], queue=venue_queue())


# --- one settlement at the venue ----------------------------------------------------------------


def venue_symbol(settlement: Settlement) -> str:
    return f"{settlement.underlying}-USDT"


class OutcomeUnknown(VenueTimeout):
    """An earlier request may still be in flight: wait before deciding anything."""

    code = "venue_outcome_unknown"
    waits = True


class _Fatal(VenueError):
    transient = False

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _order_args(settlement: Settlement) -> dict:
    cid, symbol = client_order_id(settlement), venue_symbol(settlement)
    if settlement.buys_underlying:
        return {"client_order_id": cid, "symbol": symbol, "side": BUY, "quote_amount": settlement.usdt}
    return {"client_order_id": cid, "symbol": symbol, "side": SELL, "amount": settlement.underlying_qty}


_SEND = object()  # a lookup's verdict: the venue never saw it and nothing can be in flight


def _look_up(settlement: Settlement):
    """For a settlement an earlier attempt may have sent: its order, an error, or _SEND."""
    venue = settlement_venue()
    cid = client_order_id(settlement)
    found = venue.fetch_order(client_order_id=cid, symbol=venue_symbol(settlement))
    if found is not None:
        return found
    # Not seen: that proves it never will be only once an earlier request can no longer
    # be in flight. Until then, wait rather than risk a second execution.
    waited = (timezone.now() - settlement.venue_sent_at).total_seconds()
    if waited < venue.unknown_outcome_grace_s:
        error = OutcomeUnknown(f"Order {cid} is not visible on {venue.name} yet; its outcome is still unknown.")
        error.retry_after = venue.unknown_outcome_grace_s - waited
        raise error
    return _SEND


def _send(settlement: Settlement) -> Execution:
    return settlement_venue().market_order(**_order_args(settlement))


def _send_or_look_up(settlement: Settlement):
    # Marked in this claim: nothing can have been sent before. Marked earlier: look first.
    return _send(settlement) if settlement._fresh else _look_up(settlement)


def swap_legs(settlement: Settlement, order: Execution, accounts: Accounts) -> tuple[list[TransferRequest], dict]:
    """Step 3's ledger side: what left the funding account for the venue and what came back,
    net of the venue's fee, against the external world; and the fill's fields."""
    asset = settlement.underlying
    funding, external = SystemRole.VENUE_FUNDING, SystemRole.EXTERNAL
    acct = accounts.get
    fee = order.fee or Decimal(0)
    if settlement.buys_underlying:
        received = order.filled - (fee if order.fee_asset == asset else 0)
        spent = order.cost + (fee if order.fee_asset == "USDT" else 0)
        legs = [
            transfer(settlement, 3, "paid", "USDT", spent, acct(funding, "USDT"), acct(external, "USDT")),
            transfer(settlement, 3, "got", asset, received, acct(external, asset), acct(funding, asset)),
        ]
        fields = {"filled_qty": quantize(asset, received), "fill_cost": quantize("USDT", spent)}
    else:
        received = order.cost - (fee if order.fee_asset == "USDT" else 0)
        spent = order.filled + (fee if order.fee_asset == asset else 0)
        legs = [
            transfer(settlement, 3, "paid", asset, spent, acct(funding, asset), acct(external, asset)),
            transfer(settlement, 3, "got", "USDT", received, acct(external, "USDT"), acct(funding, "USDT")),
        ]
        fields = {"filled_qty": quantize(asset, spent), "fill_cost": quantize("USDT", received)}
    price = order.average or (order.cost / order.filled if order.filled else None)
    fields["fill_price"] = quantize("USDT", price) if price else None
    fields["venue_fee"] = fee
    fields["venue_order_id"] = order.venue_order_id or ""
    if price and settlement.index_price:
        # Positive slippage costs the platform: paying above the index, or selling below it.
        sign = 1 if settlement.buys_underlying else -1
        fields["slippage_bps"] = (sign * (price - settlement.index_price) / settlement.index_price * 10000).quantize(
            Decimal("0.0001")
        )
    return [leg for leg in legs if leg.amount > 0], fields


# --- the venue threads --------------------------------------------------------------------------


def _venue_concurrency() -> int:
    return max(1, int(settings.SETTLEMENT_VENUE_CONCURRENCY))


class _Slots:
    """Venue calls in flight in this process, so that an executor claims only as many
    settlements as can go out at once: a batch that waited for another's calls would
    hold its claim through several round trips."""

    def __init__(self, size: int):
        self.size, self.used = size, 0
        self._lock = threading.Lock()

    def reserve(self, wanted: int) -> _Reservation:
        """Up to ``wanted`` calls; at least one, so every executor progresses (then at
        most one call per executor thread waits for a free venue thread)."""
        with self._lock:
            granted = max(1, min(wanted, self.size - self.used))
            self.used += granted
        return _Reservation(self, granted)

    def give(self, count: int) -> None:
        with self._lock:
            self.used -= count


class _Reservation:
    def __init__(self, slots: _Slots, count: int):
        self.slots, self.count = slots, count

    def keep(self, count: int) -> None:
        """Give back all but ``count``."""
        self.slots.give(self.count - count)
        self.count = count

    def release(self) -> None:
        self.keep(0)


_pool: ThreadPoolExecutor | None = None
_slots: _Slots | None = None
_pool_pid = 0


def _venue_pool() -> ThreadPoolExecutor:
    """Threads for the venue calls of step 3, one pool per process (a forked worker makes
    its own); calls are I/O waits, so many of them share the GIL cheaply."""
    global _pool, _slots, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=_venue_concurrency(), thread_name_prefix="venue")
        _slots = _Slots(_venue_concurrency())
        _pool_pid = os.getpid()
    return _pool


def _venue_slots() -> _Slots:
    _venue_pool()
    # An adapter whose calls take turns (ccxt) gets claims it can send within their claim.
    _slots.size = min(_venue_concurrency(), settlement_venue().max_in_flight or _venue_concurrency())
    return _slots


def _call_all(fn, settlements: list[Settlement]) -> list:
    if len(settlements) <= 1 or _venue_concurrency() <= 1:
        return [_guarded(fn, s, threaded=False) for s in settlements]
    return list(_venue_pool().map(lambda s: _guarded(fn, s), settlements))


def _guarded(fn, settlement: Settlement, threaded: bool = True):
    try:
        return fn(settlement)
    except VenueError as exc:
        return exc
    except Exception as exc:  # an adapter bug must not take the batch down with it
        logger.exception("venue call failed for %s", settlement.ref)
        return exc
    finally:
        if threaded:
            # A venue thread touches the database only when the simulated venue refreshes
            # its index price: hundreds of threads must not each keep a connection open.
            connection.close()


# --- a claimed batch ----------------------------------------------------------------------------


@dataclass
class _Outcome:
    settlement: Settlement
    transfers: list[TransferRequest]
    fields: dict


def _venue_step(
    batch: list[Settlement], token: str, accounts: Accounts
) -> tuple[list[_Outcome], list[tuple[Settlement, Exception]]]:
    done = [_Outcome(s, [], {"filled_qty": Decimal(0), "fill_cost": Decimal(0)}) for s in batch if not s.has_swap]
    batch = [s for s in batch if s.has_swap]
    failed: list[tuple[Settlement, Exception]] = []
    orders: dict[int, Execution] = {}

    # 1. Fresh sends (marked in the claim) and lookups of earlier attempts, all at once.
    to_send = []
    for settlement, result in zip(batch, _call_all(_send_or_look_up, batch)):
        if result is _SEND:
            to_send.append(settlement)
        elif isinstance(result, Exception):
            failed.append((settlement, result))
        else:
            orders[settlement.id] = result

    # 2. Earlier attempts the venue never saw: a new mark, then the send.
    if to_send:
        with transaction.atomic(durable=True):
            marked = set(
                Settlement.objects.select_for_update()
                .filter(id__in=[s.id for s in to_send], claim=token, step=3)
                .values_list("id", flat=True)
            )
            to_send = [s for s in to_send if s.id in marked]  # the others passed to another executor
            if to_send:
                mark_sent(to_send, timezone.now())
        for settlement, result in zip(to_send, _call_all(_send, to_send)):
            if isinstance(result, Exception):
                failed.append((settlement, result))
            else:
                orders[settlement.id] = result

    for settlement in batch:
        order = orders.get(settlement.id)
        if order is None:
            continue
        if order.status != FILLED or not order.filled:
            failed.append(
                (settlement, _Fatal("venue_not_filled", f"The venue order {order.venue_order_id} is {order.status}."))
            )
            continue
        legs, fields = swap_legs(settlement, order, accounts)
        done.append(_Outcome(settlement, legs, fields))
    return done, failed


def venue_finish(token: str, batch: list[Settlement], *, last: int, answered=None) -> list[int]:
    """Step 3 for a batch claimed with ``token``, and step 4 with it if ``last`` is 4.
    ``answered()`` is called once the venue has answered every call, before the commit.
    Returns the ids that completed ``last``."""
    started = timezone.now()
    accounts = Accounts(batch)
    try:
        done, failed = _venue_step(batch, token, accounts)
    finally:
        if answered is not None:
            answered()
    completed = _commit(token, started, done, accounts, last, timezone.now())
    for settlement, error in failed:
        record_failure(settlement, 3, token, started, error)
    return completed


def _commit(
    token: str, started: datetime, done: list[_Outcome], accounts: Accounts, last: int, answered: datetime
) -> list[int]:
    if not done:
        return []
    with transaction.atomic(durable=True):
        # Still ours? A claim that expired while we worked may have passed to another
        # executor; then this batch's results are theirs to write. The row locks keep
        # it from passing while we write.
        mine = set(
            Settlement.objects.select_for_update()
            .filter(id__in=[o.settlement.id for o in done], claim=token, step=3)
            .values_list("id", flat=True)
        )
        done = [o for o in done if o.settlement.id in mine]
        if not done:
            return []
        for outcome in done:
            for name, value in outcome.fields.items():
                setattr(outcome.settlement, name, value)
        legs = [leg for o in done for leg in o.transfers]
        if last == 4:  # the return only moves what the swap booked: it commits with it
            legs += ledger_steps([o.settlement for o in done], (4,), accounts)
        transfers_execute(legs)
        advance([o.settlement for o in done], last, started, timezone.now(), first=3, fills=True, first_done=answered)
    return sorted(mine)


def venue_run(ids: Sequence[int], *, last: int) -> list[int]:
    """Claim a batch at step 3 (``ids`` first) and take it through step 3, and 4 if ``last``
    is 4, here. Returns the ids that completed ``last``."""
    token, batch = claim(ids, 3, mark_sends=True)
    return venue_finish(token, batch, last=last) if batch else []


# A venue task keeps claiming while work waits at step 3, for at most this long: a
# settlement whose own message was spent on a smaller claim is taken here, not by the
# recovery sweep seconds later.
VENUE_RUN_SECONDS = 20.0


def settlements_venue_run(*, ids: Sequence[int], seconds: float = VENUE_RUN_SECONDS) -> tuple[list[int], bool]:
    """The venue executor (``settlement.venue`` tasks, on their own worker pool): step 3
    at the venue and step 4 with it, for ``ids`` first and then whatever else waits at
    step 3, oldest first. Each claim is sized to the venue calls this process has free,
    and all of a batch's calls go out at once; several executors (threads, processes) run
    batches side by side, kept apart by their claims. Returns the ids it settled, and
    whether work may still be waiting (it stopped after ``seconds``, not for want of work)."""
    slots = _venue_slots()
    ids, done, started = list(ids), [], time.monotonic()
    while True:
        calls = slots.reserve(batch_size())
        wanted = calls.count
        try:
            token, batch = claim(ids, 3, mark_sends=True, limit=wanted)
            calls.keep(len(batch))
            if batch:
                # The calls go back as soon as the venue has answered: the next claim's
                # orders go out while this batch commits.
                done += venue_finish(token, batch, last=4, answered=calls.release)
        finally:
            calls.release()
        if len(batch) < wanted:
            return done, False
        if time.monotonic() - started > seconds:
            return done, True
        taken = {s.id for s in batch}
        ids = [i for i in ids if i not in taken]
