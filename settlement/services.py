"""Settlement writes: accept outbox events, run the four steps over micro-batches, retry,
recover, and the staff decisions of the review queue.

Every step is idempotent. Steps 1, 2 and 4 are ledger transfers whose ids derive from
(settlement, step) and commit in the same transaction that advances the settlement, so a
step is either wholly done or not at all. Step 3 talks to the venue: the settlement records
that it is about to send (``venue_sent_at``) before sending, and a later attempt that finds
that mark looks the client order id up on the venue before it would ever send again.
Concurrent executors (a redelivered message, a recovery sweep) are kept apart by the claim.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ledger.models import AccountKind, LedgerAccount, SystemRole
from ledger.services.transfers import TransferRequest, system_account, system_bucket, transfers_execute
from trading.audit import audit_append
from trading.errors import Conflict, DomainError, NotFound, ValidationFailed
from trading.money import quantize

from venues.base import Execution, VenueError, VenueTimeout
from venues.config import settlement_venue

from .models import ACTIVE_STATES, Counter, Kind, Settlement, SettlementError, SettlementStep, State, StepStatus

logger = logging.getLogger(__name__)

TOPICS = ("options.order", "options.exercise")


def _conf(name: str, default):
    return getattr(settings, name, default)


# --- intake -----------------------------------------------------------------------------------


def settlements_accept(*, events: Sequence[dict]) -> list[int]:
    """Insert one settlement per event, keyed by the event key; returns the ids of the new
    ones (a duplicate delivery inserts nothing and returns nothing for it)."""
    with transaction.atomic(durable=True):
        return sorted(s.id for s in _insert(events))


def settlements_take_in(*, events: Sequence[dict], through_venue: bool = True) -> tuple[list[int], list[int]]:
    """The intake's hot path: accept the events and take the new settlements through the
    ledger steps 1 and 2 in the same transaction. Returns (new ids, ids carried on).

    ``through_venue``: the batch goes on into step 3 (claimed, venue send marked) in that
    transaction, then to the venue and through step 4 in this call; the second id list
    is the settled ones. A batch thus costs two commits in all. Without it the batch stops
    at step 3, unclaimed, for the venue executor (``settlements_venue_run``) to take, and
    the second list is the ids waiting there: the intake then never waits for a venue.

    Each step still has its own legs and its own state row: steps 1 and 2 commit with the
    acceptance, step 4 with step 3. Should the ledger refuse the batch, only its savepoint
    rolls back: the settlements stay accepted at step 1 for the step-by-step path
    (``settlements_run``)."""
    token = uuid.uuid4().hex
    with transaction.atomic(durable=True):
        batch = _insert(events)
        new_ids = [s.id for s in batch]
        if batch:
            try:
                with transaction.atomic():
                    accounts = _Accounts(batch)
                    started = timezone.now()
                    transfers_execute([leg for s in batch for step in (1, 2) for leg in _ledger_step(s, step, accounts)])
                    if through_venue:
                        _steps_upsert((1, 2), batch, StepStatus.DONE, started, timezone.now())
                        _claim_rows(batch, token, step=3, mark_sends=True)
                    else:
                        _advance(batch, 2, started, timezone.now(), first=1)
            except DomainError:
                logger.exception("intake: the ledger refused steps 1-2 of settlements %s; they wait at step 1", new_ids)
                batch = []
    if not batch:
        return new_ids, []
    if not through_venue:
        return new_ids, [s.id for s in batch]
    return new_ids, _venue_finish(token, batch, last=4)


def _insert(events: Sequence[dict]) -> list[Settlement]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: the new settlements, as inserted.
    Needs the caller's transaction."""
    rows = []
    for event in events:
        if event.get("topic") not in TOPICS:
            logger.warning("settlement intake ignores topic %r (%s)", event.get("topic"), event.get("key"))
            continue
        payload = event["payload"]
        rows.append(
            (
                event["key"],
                event["id"],
                event["topic"],
                payload["kind"],
                payload["underlying"],
                Decimal(payload["usdt"]),
                Decimal(payload["underlying_qty"]),
                Decimal(payload["index_price"]),
                payload,
                parse_datetime(event["created_at"]) if isinstance(event["created_at"], str) else event["created_at"],
            )
        )
    if not rows:
        return []
    now = timezone.now()
    table = Settlement._meta.db_table
    columns = (
        "ref, event_id, topic, kind, underlying, usdt, underlying_qty, index_price, payload, event_created_at, "
        "state, step, attempts, claim, last_error_code, last_error, client_order_id, venue, venue_order_id, "
        "accepted_at, updated_at, resolved_by, resolution_note"
    )
    constants = [State.PENDING, 1, 0, "", "", "", "", "", "", now, now, "", ""]
    if connection.vendor == "postgresql":
        # One array per column: a short statement whatever the batch size (a VALUES list
        # of 200 rows x 23 columns cost more to build and parse than the insert).
        arrays = [list(column) for column in zip(*rows)]
        arrays[8] = [json.dumps(payload) for payload in arrays[8]]
        sql = (
            f"INSERT INTO {table} ({columns}) SELECT r, e, t, k, u, a, q, i, p::jsonb, c, "
            + ", ".join(["%s"] * len(constants))
            + " FROM unnest(%s::varchar[], %s::bigint[], %s::varchar[], %s::varchar[], %s::varchar[], %s::numeric[], "
            "%s::numeric[], %s::numeric[], %s::text[], %s::timestamptz[]) AS x(r, e, t, k, u, a, q, i, p, c)"
        )
        params = constants + arrays
    else:
        field = Settlement._meta.get_field
        json_field, usdt_field, qty_field, index_field = (field(n) for n in ("payload", "usdt", "underlying_qty", "index_price"))
        params = []
        for ref, event_id, topic, kind, underlying, usdt, qty, index, payload, created in rows:
            params += [
                ref, event_id, topic, kind, underlying, usdt_field.get_db_prep_save(usdt, connection),
                qty_field.get_db_prep_save(qty, connection), index_field.get_db_prep_save(index, connection),
                json_field.get_db_prep_value(payload, connection), created, *constants,
            ]  # fmt: skip
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join(['(' + ', '.join(['%s'] * 23) + ')'] * len(rows))}"
    with connection.cursor() as cursor:
        # ON CONFLICT ... RETURNING answers only the rows this statement inserted: a
        # duplicate delivery is recognised by the database, not by a read before the write.
        cursor.execute(sql + " ON CONFLICT (ref) DO NOTHING RETURNING id, ref", params)
        inserted = dict((ref, pk) for pk, ref in cursor.fetchall())
    if not inserted:
        return []
    _mirror_refs(list(inserted), "settling")
    # As inserted: the rows need not be read back. (A key twice in one batch was
    # inserted once.)
    new = []
    for ref, event_id, topic, kind, underlying, usdt, qty, index, payload, created in rows:
        pk = inserted.pop(ref, None)
        if pk is not None:
            new.append(
                Settlement(
                    id=pk, ref=ref, event_id=event_id, topic=topic, kind=kind, underlying=underlying, usdt=usdt,
                    underlying_qty=qty, index_price=index, payload=payload, event_created_at=created,
                    state=State.PENDING, step=1, attempts=0, accepted_at=now, updated_at=now,
                )
            )
    return sorted(new, key=lambda s: s.id)


# --- claims -----------------------------------------------------------------------------------


def _batch_size() -> int:
    return _conf("SETTLEMENT_BATCH_SIZE", 200)


def _lock_batch(ids: Sequence[int], step: int, now: datetime, limit: int | None = None) -> list[Settlement]:
    """The settlements among ``ids`` that are at ``step``, active, due and not claimed by
    another executor, then others waiting at the same step, up to a batch (or ``limit``);
    row-locked. Needs the caller's transaction (the locks last until its end)."""
    # SKIP LOCKED: rows another executor is taking right now are simply not ours; no
    # executor ever waits on another's row locks (nor deadlocks with it).
    ready = Settlement.objects.select_for_update(skip_locked=True).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        step=step,
        state__in=ACTIVE_STATES,
    )
    ids = list(ids)
    size = _batch_size() if limit is None else limit
    batch = list(ready.filter(id__in=ids).order_by("id")[:size]) if ids else []
    room = size - len(batch)
    if room > 0:
        # Disruptor-style: also take whatever else waits at this step, so batches grow
        # by themselves when work queues up (their own messages will find nothing).
        batch += list(ready.exclude(id__in=ids).order_by("id")[:room])
    return sorted(batch, key=lambda s: s.id)


def _claim(ids: Sequence[int], step: int, *, mark_sends: bool = False, limit: int | None = None) -> tuple[str, list[Settlement]]:
    """Take a batch at ``step`` (see ``_lock_batch``) for work outside a transaction: one
    UPDATE sets the claim, so a redelivered message or a recovery sweep leaves the rows
    alone until it expires. With ``mark_sends`` (step 3), the settlements that were never
    sent to the venue get their durable send mark in the same transaction; they come
    back with ``_fresh`` set."""
    token = uuid.uuid4().hex
    with transaction.atomic(durable=True):
        batch = _lock_batch(ids, step, timezone.now(), limit)
        if batch:
            _claim_rows(batch, token, step=step, mark_sends=mark_sends)
    return token, batch


def _claim_rows(batch: list[Settlement], token: str, *, step: int, mark_sends: bool = False) -> None:
    """Claim rows this transaction holds (locked, or inserted by it) at ``step``."""
    now = timezone.now()
    until = now + timedelta(seconds=_conf("SETTLEMENT_CLAIM_SECONDS", 15.0))
    Settlement.objects.filter(id__in=[s.id for s in batch]).update(
        step=step, claimed_until=until, claim=token, state=State.RUNNING, updated_at=now
    )
    fresh = [s for s in batch if mark_sends and s.venue_sent_at is None and _swaps(s)]
    if fresh:
        _mark_sent(fresh, now)
    fresh_ids = {s.id for s in fresh}
    for settlement in batch:
        settlement.step, settlement.claimed_until, settlement.claim = step, until, token
        settlement.state, settlement.updated_at = State.RUNNING, now
        settlement._fresh = settlement.id in fresh_ids


def _mark_sent(settlements: list[Settlement], now: datetime) -> None:
    """The durable mark before a send: whoever runs step 3 next looks the order up first.
    Runs in the caller's transaction, which must commit before the send."""
    venue = settlement_venue().name
    prefix = f"{_conf('SETTLEMENT_CLIENT_ID_PREFIX', 'stl')}-"
    # The same id as client_order_id(), computed by the database: one statement.
    Settlement.objects.filter(id__in=[s.id for s in settlements]).update(
        venue_sent_at=now, client_order_id=Concat(Value(prefix), Cast("id", output_field=CharField())), venue=venue
    )
    for settlement in settlements:
        settlement.venue_sent_at, settlement.client_order_id, settlement.venue = now, client_order_id(settlement), venue


# --- the steps --------------------------------------------------------------------------------


@dataclass
class _Outcome:
    settlement: Settlement
    transfers: list[TransferRequest]
    fields: dict


_ROLES = (SystemRole.OPTION_CLEARING, SystemRole.TREASURY, SystemRole.VENUE_FUNDING, SystemRole.EXTERNAL)


class _Accounts:
    """The system accounts of one batch. All its legs use one bucket of each role and
    asset, picked by the batch's first settlement: a batch then updates a handful of
    account rows rather than up to 16 per role and asset, and two batches running at
    the same time rarely share a row. (The audit sums the buckets.)"""

    def __init__(self, batch: Sequence[Settlement]):
        self.key = batch[0].ref if batch else ""
        # Every account the batch may need, in one query; a missing one is created on use.
        rows = LedgerAccount.objects.filter(
            kind__in=(AccountKind.SYSTEM, AccountKind.EXTERNAL), role__in=_ROLES, bucket=system_bucket(self.key), user=None
        )
        self._cache = {(a.role, a.asset): a for a in rows}

    def get(self, role: str, asset: str, key: str = ""):
        if (role, asset) not in self._cache:
            self._cache[(role, asset)] = system_account(role=role, asset=asset, key=self.key)
        return self._cache[(role, asset)]


def _transfer(settlement: Settlement, step: int, leg: str, asset: str, amount: Decimal, debit, credit) -> TransferRequest:
    return TransferRequest(
        id=f"stl:{settlement.id}:{step}:{leg}",
        code=f"settlement_step{step}",
        asset=asset,
        amount=quantize(asset, amount),
        debit=debit,
        credit=credit,
        reference=settlement.ref,
    )


def _buys_underlying(settlement: Settlement) -> bool:
    """An opening buy leaves the platform short the underlying: it buys it back with the
    USDT premium. A close or an exercise is the mirror image."""
    return settlement.kind == Kind.OPEN


def _ledger_step(settlement: Settlement, step: int, accounts: _Accounts) -> list[TransferRequest]:
    asset, usdt, qty = settlement.underlying, settlement.usdt, settlement.underlying_qty
    key = settlement.ref

    def acct(role, a):
        return accounts.get(role, a, key)

    clearing, treasury, funding = SystemRole.OPTION_CLEARING, SystemRole.TREASURY, SystemRole.VENUE_FUNDING
    buy = _buys_underlying(settlement)
    legs: list[TransferRequest] = []
    if step == 1:
        if buy:  # the premium moves to the system wallet, which now owes the underlying
            legs.append(_transfer(settlement, 1, "usdt", "USDT", usdt, acct(clearing, "USDT"), acct(treasury, "USDT")))
            legs.append(_transfer(settlement, 1, "base", asset, qty, acct(treasury, asset), acct(clearing, asset)))
        else:  # the system wallet funds the payout and takes the underlying to sell
            legs.append(_transfer(settlement, 1, "usdt", "USDT", usdt, acct(treasury, "USDT"), acct(clearing, "USDT")))
            legs.append(_transfer(settlement, 1, "base", asset, qty, acct(clearing, asset), acct(treasury, asset)))
    elif step == 2:
        if buy:
            legs.append(_transfer(settlement, 2, "usdt", "USDT", usdt, acct(treasury, "USDT"), acct(funding, "USDT")))
        else:
            legs.append(_transfer(settlement, 2, "base", asset, qty, acct(treasury, asset), acct(funding, asset)))
    elif step == 4:
        # The swap's proceeds return to the system wallet; what the venue left on the
        # funding account (rounding dust) and the hedge's slippage and fee against the index
        # go to the option book (clearing), so the system wallet ends flat in both assets.
        if buy:
            legs.append(_transfer(settlement, 4, "base", asset, settlement.filled_qty, acct(funding, asset), acct(treasury, asset)))
            legs.append(_transfer(settlement, 4, "dust", "USDT", usdt - settlement.fill_cost, acct(funding, "USDT"), acct(clearing, "USDT")))
            legs.append(_true_up(settlement, asset, qty - settlement.filled_qty, acct(clearing, asset), acct(treasury, asset)))
        else:
            legs.append(_transfer(settlement, 4, "usdt", "USDT", settlement.fill_cost, acct(funding, "USDT"), acct(treasury, "USDT")))
            legs.append(_transfer(settlement, 4, "dust", asset, qty - settlement.filled_qty, acct(funding, asset), acct(clearing, asset)))
            legs.append(_true_up(settlement, "USDT", usdt - settlement.fill_cost, acct(clearing, "USDT"), acct(treasury, "USDT")))
    return [leg for leg in legs if leg.amount > 0]


def _true_up(settlement: Settlement, asset: str, shortfall: Decimal, clearing, treasury) -> TransferRequest:
    """The system wallet's shortfall (positive) is made good by the option book, its
    surplus (negative) goes to it."""
    if shortfall >= 0:
        return _transfer(settlement, 4, "pnl", asset, shortfall, clearing, treasury)
    return _transfer(settlement, 4, "pnl", asset, -shortfall, treasury, clearing)


def _swap_legs(settlement: Settlement, order: Execution, accounts: _Accounts) -> tuple[list[TransferRequest], dict]:
    """Step 3's ledger side: what left the funding account for the venue and what came back,
    net of the venue's fee, against the external world."""
    asset = settlement.underlying
    funding, external = SystemRole.VENUE_FUNDING, SystemRole.EXTERNAL
    key = settlement.ref
    fee = order.fee or Decimal(0)
    if _buys_underlying(settlement):
        received = order.filled - (fee if order.fee_asset == asset else 0)
        spent = order.cost + (fee if order.fee_asset == "USDT" else 0)
        legs = [
            _transfer(settlement, 3, "paid", "USDT", spent, accounts.get(funding, "USDT", key), accounts.get(external, "USDT", key)),
            _transfer(settlement, 3, "got", asset, received, accounts.get(external, asset, key), accounts.get(funding, asset, key)),
        ]
        fields = {"filled_qty": quantize(asset, received), "fill_cost": quantize("USDT", spent)}
    else:
        received = order.cost - (fee if order.fee_asset == "USDT" else 0)
        spent = order.filled + (fee if order.fee_asset == asset else 0)
        legs = [
            _transfer(settlement, 3, "paid", asset, spent, accounts.get(funding, asset, key), accounts.get(external, asset, key)),
            _transfer(settlement, 3, "got", "USDT", received, accounts.get(external, "USDT", key), accounts.get(funding, "USDT", key)),
        ]
        fields = {"filled_qty": quantize(asset, spent), "fill_cost": quantize("USDT", received)}
    price = order.average or (order.cost / order.filled if order.filled else None)
    fields["fill_price"] = quantize("USDT", price) if price else None
    fields["venue_fee"] = fee
    fields["venue_order_id"] = order.venue_order_id or ""
    if price and settlement.index_price:
        # Positive slippage costs the platform: paying above the index, or selling below it.
        sign = 1 if _buys_underlying(settlement) else -1
        fields["slippage_bps"] = (sign * (price - settlement.index_price) / settlement.index_price * 10000).quantize(
            Decimal("0.0001")
        )
    return [leg for leg in legs if leg.amount > 0], fields


def client_order_id(settlement: Settlement) -> str:
    """Derived from the settlement alone: every attempt, on any worker, uses the same id."""
    return f"{_conf('SETTLEMENT_CLIENT_ID_PREFIX', 'stl')}-{settlement.id}"


def _venue_symbol(settlement: Settlement) -> str:
    return f"{settlement.underlying}-USDT"


class _OutcomeUnknown(VenueTimeout):
    """An earlier request may still be in flight: wait before deciding anything."""

    code = "venue_outcome_unknown"


def _venue_args(settlement: Settlement) -> dict:
    cid, symbol = client_order_id(settlement), _venue_symbol(settlement)
    if _buys_underlying(settlement):
        return {"client_order_id": cid, "symbol": symbol, "side": "buy", "quote_amount": settlement.usdt}
    return {"client_order_id": cid, "symbol": symbol, "side": "sell", "amount": settlement.underlying_qty}


_SEND = object()  # a lookup's verdict: the venue never saw it and nothing can be in flight


def _lookup(settlement: Settlement):
    """For a settlement an earlier attempt may have sent: its order, an error, or _SEND."""
    venue = settlement_venue()
    cid = client_order_id(settlement)
    found = venue.fetch_order(client_order_id=cid, symbol=_venue_symbol(settlement))
    if found is not None:
        return found
    # Not seen: that proves it never will be only once an earlier request can no longer
    # be in flight. Until then, wait rather than risk a second execution.
    waited = (timezone.now() - settlement.venue_sent_at).total_seconds()
    if waited < venue.unknown_outcome_grace_s:
        error = _OutcomeUnknown(f"Order {cid} is not visible on {venue.name} yet; its outcome is still unknown.")
        error.retry_after = venue.unknown_outcome_grace_s - waited
        raise error
    return _SEND


def _send(settlement: Settlement) -> Execution:
    return settlement_venue().market_order(**_venue_args(settlement))


class _Fatal(VenueError):
    transient = False

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _venue_concurrency() -> int:
    return max(1, int(_conf("SETTLEMENT_VENUE_CONCURRENCY", 512)))


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


def _swaps(settlement: Settlement) -> bool:
    """A close at a zero bid moved no money: there is nothing to swap."""
    return bool(settlement.usdt if _buys_underlying(settlement) else settlement.underlying_qty)


def _send_or_look_up(settlement: Settlement):
    # Marked in this claim: nothing can have been sent before. Marked earlier: look first.
    return _send(settlement) if settlement._fresh else _lookup(settlement)


def _venue_step(batch: list[Settlement], token: str, accounts: _Accounts) -> tuple[list[_Outcome], list[tuple[Settlement, Exception]]]:
    done = [_Outcome(s, [], {"filled_qty": Decimal(0), "fill_cost": Decimal(0)}) for s in batch if not _swaps(s)]
    batch = [s for s in batch if _swaps(s)]
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
                _mark_sent(to_send, timezone.now())
        for settlement, result in zip(to_send, _call_all(_send, to_send)):
            if isinstance(result, Exception):
                failed.append((settlement, result))
            else:
                orders[settlement.id] = result

    for settlement in batch:
        order = orders.get(settlement.id)
        if order is None:
            continue
        if order.status != "filled" or not order.filled:
            failed.append((settlement, _Fatal("venue_not_filled", f"The venue order {order.venue_order_id} is {order.status}.")))
            continue
        legs, fields = _swap_legs(settlement, order, accounts)
        done.append(_Outcome(settlement, legs, fields))
    return done, failed


def settlement_step_run(*, step: int, ids: Sequence[int]) -> list[int]:
    """Run ``step`` alone for the settlements among ``ids`` it can take (plus others
    waiting at it); returns the ids that completed it."""
    if not ids:
        return []
    if step == 3:
        return _venue_run(ids, last=3)
    return _ledger_run(ids, first=step, last=step)


def settlements_run(*, ids: Sequence[int], from_step: int = 1, through_venue: bool = True) -> list[int]:
    """Run settlements from ``from_step`` to the end; returns the ids it settled (without
    ``through_venue``: it stops before step 3 and returns the ids now waiting there, for
    the venue executor).

    Steps 1 and 2 (ledger only) commit together, and step 4 (ledger only) commits with
    step 3's outcome: each settlement still has its own legs and state row per step, and
    every step is done exactly once, but a batch costs two transactions of work and one
    claim instead of four of each, and no broker round trip between steps."""
    ids = list(ids)
    if ids and from_step <= 2:
        ids, from_step = _ledger_run(ids, first=from_step, last=2), 3
    if ids and from_step == 3:
        return _venue_run(ids, last=4) if through_venue else ids
    if ids and from_step == 4:
        return _ledger_run(ids, first=4, last=4)
    return []


def _ledger_run(ids: Sequence[int], *, first: int, last: int) -> list[int]:
    """Ledger-only steps ``first``..``last`` in one transaction: the row locks are the
    claim, and the legs commit with the step change."""
    started = timezone.now()
    with transaction.atomic(durable=True):
        batch = _lock_batch(ids, first, started)
        if not batch:
            return []
        accounts = _Accounts(batch)
        steps = range(first, last + 1)
        transfers_execute([leg for s in batch for step in steps for leg in _ledger_step(s, step, accounts)])
        _advance(batch, last, started, timezone.now(), first=first)
    return [s.id for s in batch]


def _venue_run(ids: Sequence[int], *, last: int) -> list[int]:
    token, batch = _claim(ids, 3, mark_sends=True)
    return _venue_finish(token, batch, last=last) if batch else []


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
        calls = slots.reserve(_batch_size())
        wanted = calls.count
        try:
            token, batch = _claim(ids, 3, mark_sends=True, limit=wanted)
            calls.keep(len(batch))
            if batch:
                # The calls go back as soon as the venue has answered: the next claim's
                # orders go out while this batch commits.
                done += _venue_finish(token, batch, last=4, answered=calls.release)
        finally:
            calls.release()
        if len(batch) < wanted:
            return done, False
        if time.monotonic() - started > seconds:
            return done, True
        taken = {s.id for s in batch}
        ids = [i for i in ids if i not in taken]


def _venue_finish(token: str, batch: list[Settlement], *, last: int, answered=None) -> list[int]:
    """Step 3 for a claimed batch, and step 4 with it if ``last`` is 4. ``answered()`` is
    called once the venue has answered every call, before the commit."""
    started = timezone.now()
    accounts = _Accounts(batch)
    try:
        done, failed = _venue_step(batch, token, accounts)
    finally:
        if answered is not None:
            answered()
    completed = _commit_venue(token, started, done, accounts, last)
    for settlement, error in failed:
        _record_failure(settlement, 3, token, started, error)
    return completed


def _commit_venue(token: str, started: datetime, done: list[_Outcome], accounts: _Accounts, last: int) -> list[int]:
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
            legs += [leg for o in done for leg in _ledger_step(o.settlement, 4, accounts)]
        transfers_execute(legs)
        _advance([o.settlement for o in done], last, started, timezone.now(), first=3, fills=True)
    return sorted(mine)


_FILL_FIELDS = ("filled_qty", "fill_cost", "fill_price", "venue_fee", "venue_order_id", "slippage_bps")


def _advance(batch: list[Settlement], last: int, started: datetime, now: datetime, *, first: int, fills: bool = False) -> None:
    """Record steps ``first``..``last`` done for the batch: the settlement rows (one
    statement), a state row per step, and the order mirror once settled. Runs in the
    caller's transaction, with the legs."""
    final = last == 4
    common = {
        "step": last + 1,
        "attempts": 0,
        "claimed_until": None,
        "claim": "",
        "next_attempt_at": None,
        "state": State.SETTLED if final else State.RUNNING,
        "updated_at": now,
    }
    if final:
        common["settled_at"] = now
    if fills:  # the venue's fill differs per settlement
        _update_each(batch, common, _FILL_FIELDS)
    else:
        Settlement.objects.filter(id__in=[s.id for s in batch]).update(**common)
    _steps_upsert(range(first, last + 1), batch, StepStatus.DONE, started, now)
    if final:
        _mirror_refs([s.ref for s in batch], "settled")


def _update_each(batch: list[Settlement], common: dict, fields: Sequence[str]) -> None:
    """One statement: ``common`` for every row, ``fields`` from each settlement. (Django's
    bulk_update builds a CASE per field and row, which cost more than the whole step.)"""
    for settlement in batch:
        for name, value in common.items():
            setattr(settlement, name, value)
    if connection.vendor != "postgresql":
        Settlement.objects.bulk_update(batch, [*common, *fields])
        return
    meta = Settlement._meta
    columns = [meta.get_field(name) for name in fields]
    sets = [f"{meta.get_field(name).column} = %s" for name in common]
    sets += [f"{c.column} = v.{c.column}" for c in columns]
    row = "(%s::bigint, " + ", ".join(f"%s::{c.cast_db_type(connection)}" for c in columns) + ")"
    params = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in common.items()]
    for settlement in batch:
        params.append(settlement.id)
        params += [c.get_db_prep_save(getattr(settlement, c.attname), connection) for c in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} SET {', '.join(sets)} FROM (VALUES {', '.join([row] * len(batch))}) "
            f"AS v(id, {', '.join(c.column for c in columns)}) WHERE {meta.db_table}.id = v.id",
            params,
        )


def _steps_upsert(step, settlements: Iterable[Settlement], status: str, started: datetime, finished, code: str = "") -> None:
    """``step``: one step or several (steps that commit together)."""
    steps = [step] if isinstance(step, int) else list(step)
    rows = [(s.id, n, status, s.attempts + (status != StepStatus.DONE), code, started, finished) for n in steps for s in settlements]
    if not rows:
        return
    table = SettlementStep._meta.db_table
    upsert = (
        " ON CONFLICT (settlement_id, step) DO UPDATE SET status = excluded.status, "
        "attempts = excluded.attempts, error_code = excluded.error_code, finished_at = excluded.finished_at"
    )
    columns = "settlement_id, step, status, attempts, error_code, started_at, finished_at"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A short statement with one array per column: a VALUES list of a whole batch
            # costs more to build and parse than the upsert itself.
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest(%s::bigint[], %s::smallint[], %s::varchar[], "
                "%s::integer[], %s::varchar[], %s::timestamptz[], %s::timestamptz[])" + upsert,
                [list(column) for column in zip(*rows)],
            )
            return
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}" + upsert, [value for row in rows for value in row])


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    base = _conf("SETTLEMENT_RETRY_BASE_SECONDS", 0.2)
    cap = _conf("SETTLEMENT_RETRY_MAX_SECONDS", 10.0)
    return random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1)))


def _record_failure(settlement: Settlement, step: int, token: str, started: datetime, error: Exception) -> None:
    code = getattr(error, "code", None) or "internal_error"
    transient = bool(getattr(error, "transient", False))
    attempt = settlement.attempts + 1
    waiting = isinstance(error, _OutcomeUnknown)
    give_up = not transient or (attempt >= _conf("SETTLEMENT_MAX_ATTEMPTS", 8) and not waiting)
    now = timezone.now()
    delay = 0.0 if give_up else max(_backoff(attempt), float(getattr(error, "retry_after", 0) or 0))
    extra = {}
    if step == 3 and isinstance(error, VenueError) and not isinstance(error, VenueTimeout):
        # A definite refusal: the venue executed nothing, so the next attempt need not wait
        # for an earlier request's outcome.
        extra["venue_sent_at"] = None
    with transaction.atomic(durable=True):
        changed = Settlement.objects.filter(id=settlement.id, claim=token, step=step).update(
            **extra,
            attempts=attempt,
            last_error_code=code[:40],
            last_error=str(error)[:2000],
            claimed_until=None,
            claim="",
            state=State.MANUAL_REVIEW if give_up else State.RUNNING,
            next_attempt_at=None if give_up else now + timedelta(seconds=delay),
            updated_at=now,
        )
        if not changed:
            return
        SettlementError.objects.create(
            settlement=settlement, step=step, attempt=attempt, code=code[:40], message=str(error)[:2000], transient=transient
        )
        settlement.attempts = attempt - 1
        _steps_upsert(step, [settlement], StepStatus.FAILED if give_up else StepStatus.RETRYING, started, now, code[:40])
        counter_add("settlement_retries" if not give_up else "settlement_manual_reviews")
        if give_up:
            _mirror_state(Settlement.objects.filter(id=settlement.id), "manual_review")
            audit_append(
                actor=None,
                action="settlement.manual_review",
                target_type="settlement",
                target_id=str(settlement.id),
                data={"ref": settlement.ref, "step": step, "error": code, "attempts": attempt},
            )
        else:
            from . import tasks

            transaction.on_commit(lambda: tasks.settlement_resume.apply_async(args=[step, [settlement.id]], countdown=delay))


# --- recovery ---------------------------------------------------------------------------------


def settlements_stalled(*, idle_seconds: float | None = None, limit: int = 5000) -> dict[int, list[int]]:
    """Active settlements nobody is working on: unclaimed (or claim expired), due, and idle
    past the timeout. Grouped by their current step."""
    now = timezone.now()
    idle = _conf("SETTLEMENT_IDLE_SECONDS", 10.0) if idle_seconds is None else idle_seconds
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
    later = timezone.now() + timedelta(seconds=_conf("SETTLEMENT_IDLE_SECONDS", 10.0))
    Settlement.objects.filter(id__in=list(ids), state__in=ACTIVE_STATES).update(updated_at=later)


# --- staff decisions --------------------------------------------------------------------------


def settlement_retry(*, settlement_id: int, actor, note: str = "") -> Settlement:
    """Put a settlement in manual review back to work from its current step."""
    with transaction.atomic(durable=True):
        settlement = _for_update(settlement_id)
        if settlement.state != State.MANUAL_REVIEW:
            raise Conflict(f"Settlement {settlement.ref} is {settlement.state}, not in manual review.", code="not_in_review")
        Settlement.objects.filter(id=settlement.id).update(
            state=State.RUNNING, attempts=0, next_attempt_at=None, claimed_until=None, claim="", updated_at=timezone.now()
        )
        _mirror_state(Settlement.objects.filter(id=settlement.id), "settling")
        audit_append(
            actor=actor,
            action="settlement.retry",
            target_type="settlement",
            target_id=str(settlement.id),
            data={"ref": settlement.ref, "step": settlement.step, "note": note},
        )
        from . import tasks

        step = settlement.step
        transaction.on_commit(lambda: tasks.settlement_resume.delay(step, [settlement.id]))
    settlement.refresh_from_db()
    return settlement


def settlement_resolve(*, settlement_id: int, actor, note: str) -> Settlement:
    """Close a settlement in manual review by hand (e.g. the swap was done outside)."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed("A note is required to mark a settlement resolved.", fields={"note": ["Required."]})
    with transaction.atomic(durable=True):
        settlement = _for_update(settlement_id)
        if settlement.state != State.MANUAL_REVIEW:
            raise Conflict(f"Settlement {settlement.ref} is {settlement.state}, not in manual review.", code="not_in_review")
        Settlement.objects.filter(id=settlement.id).update(
            state=State.RESOLVED,
            resolved_by=getattr(actor, "email", "") or "",
            resolution_note=note,
            settled_at=timezone.now(),
            updated_at=timezone.now(),
        )
        _mirror_state(Settlement.objects.filter(id=settlement.id), "settled")
        audit_append(
            actor=actor,
            action="settlement.resolve",
            target_type="settlement",
            target_id=str(settlement.id),
            data={"ref": settlement.ref, "step": settlement.step, "note": note},
        )
    settlement.refresh_from_db()
    return settlement


def _for_update(settlement_id: int) -> Settlement:
    try:
        return Settlement.objects.select_for_update().get(pk=settlement_id)
    except Settlement.DoesNotExist:
        raise NotFound("No such settlement.") from None


# --- counters and the order mirror ------------------------------------------------------------


def counter_add(name: str, by: int = 1) -> None:
    if not by:
        return
    updated = Counter.objects.filter(name=name).update(value=F("value") + by)
    if not updated:
        from django.db import IntegrityError

        try:
            with transaction.atomic():
                Counter.objects.create(name=name, value=by)
        except IntegrityError:
            Counter.objects.filter(name=name).update(value=F("value") + by)


def _mirror_state(settlements, state: str) -> None:
    """Show the back office's progress on the trader's order (the order rows belong to the
    orders app; settlement may write this one column of them)."""
    _mirror_refs(list(settlements.values_list("ref", flat=True)), state)


def _mirror_refs(refs: list[str], state: str) -> None:
    from orders.options import settlement_mirror

    if refs:
        settlement_mirror.set_state(refs=refs, state=state)
