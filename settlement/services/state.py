"""The back office's state table, shared by every step: claims on settlements, the durable
send mark of step 3, the per-step rows, failures with their retries or manual review, the
counters /metrics reads, and the order mirror.

Helpers here run in their caller's transaction unless their docstring says otherwise.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from trading.audit import audit_append
from trading.celery import enqueue_on_commit
from trading.pgarrays import unnest_arrays
from venues.base import VenueError, VenueTimeout
from venues.config import settlement_venue

from ..models import (
    ACTIVE_STATES,
    Counter,
    Settlement,
    SettlementError,
    SettlementStep,
    State,
    StepStatus,
)


def batch_size() -> int:
    return settings.SETTLEMENT_BATCH_SIZE


def client_order_id(settlement: Settlement) -> str:
    """Derived from the settlement alone: every attempt, on any worker, uses the same id."""
    return f"{settings.SETTLEMENT_CLIENT_ID_PREFIX}-{settlement.id}"


# --- claims -----------------------------------------------------------------------------------


def lock_batch(ids: Sequence[int], step: int, now: datetime, limit: int | None = None) -> list[Settlement]:
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
    size = batch_size() if limit is None else limit
    batch = list(ready.filter(id__in=ids).order_by("id")[:size]) if ids else []
    room = size - len(batch)
    if room > 0:
        # Disruptor-style: also take whatever else waits at this step, so batches grow
        # by themselves when work queues up (their own messages will find nothing).
        batch += list(ready.exclude(id__in=ids).order_by("id")[:room])
    return sorted(batch, key=lambda s: s.id)


def claim(
    ids: Sequence[int], step: int, *, mark_sends: bool = False, limit: int | None = None
) -> tuple[str, list[Settlement]]:
    """Take a batch at ``step`` (see ``lock_batch``) for work outside a transaction, in a
    transaction of its own: one UPDATE sets the claim, so a redelivered message or a
    recovery sweep leaves the rows alone until it expires. With ``mark_sends`` (step 3), the
    settlements that were never sent to the venue get their durable send mark in the same
    transaction; they come back with ``_fresh`` set."""
    token = uuid.uuid4().hex
    with transaction.atomic(durable=True):
        batch = lock_batch(ids, step, timezone.now(), limit)
        if batch:
            claim_rows(batch, token, step=step, mark_sends=mark_sends)
    return token, batch


def claim_rows(batch: list[Settlement], token: str, *, step: int, mark_sends: bool = False) -> None:
    """Claim rows this transaction holds (locked, or inserted by it) at ``step``."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.SETTLEMENT_CLAIM_SECONDS)
    Settlement.objects.filter(id__in=[s.id for s in batch]).update(
        step=step, claimed_until=until, claim=token, state=State.RUNNING, updated_at=now
    )
    fresh = [s for s in batch if mark_sends and s.venue_sent_at is None and s.has_swap]
    if fresh:
        mark_sent(fresh, now)
    fresh_ids = {s.id for s in fresh}
    for settlement in batch:
        settlement.step, settlement.claimed_until, settlement.claim = step, until, token
        settlement.state, settlement.updated_at = State.RUNNING, now
        settlement._fresh = settlement.id in fresh_ids


def mark_sent(settlements: list[Settlement], now: datetime) -> None:
    """The durable mark before a send: whoever runs step 3 next looks the order up first.
    The caller's transaction must commit before the send."""
    venue = settlement_venue().name
    prefix = f"{settings.SETTLEMENT_CLIENT_ID_PREFIX}-"
    # The same id as client_order_id(), computed by the database: one statement.
    Settlement.objects.filter(id__in=[s.id for s in settlements]).update(
        venue_sent_at=now, client_order_id=Concat(Value(prefix), Cast("id", output_field=CharField())), venue=venue
    )
    for settlement in settlements:
        settlement.venue_sent_at, settlement.client_order_id, settlement.venue = now, client_order_id(settlement), venue


# --- progress ---------------------------------------------------------------------------------


FILL_FIELDS = ("filled_qty", "fill_cost", "fill_price", "venue_fee", "venue_order_id", "slippage_bps")


def advance(
    batch: list[Settlement],
    last: int,
    started: datetime,
    now: datetime,
    *,
    first: int,
    fills: bool = False,
    first_done: datetime | None = None,
) -> None:
    """Record steps ``first``..``last`` done for the batch: the settlement rows (one
    statement), a state row per step, and the order mirror once settled. Runs in the
    caller's transaction, with the legs. ``first_done``: step ``first`` ended then (the
    venue answered), the later ones started then."""
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
        _update_each(batch, common, FILL_FIELDS)
    else:
        Settlement.objects.filter(id__in=[s.id for s in batch]).update(**common)
    if first_done is not None and last > first:
        steps_upsert(first, batch, StepStatus.DONE, started, first_done)
        steps_upsert(range(first + 1, last + 1), batch, StepStatus.DONE, first_done, now)
    else:
        steps_upsert(range(first, last + 1), batch, StepStatus.DONE, started, now)
    if final:
        mirror_refs([s.ref for s in batch], "settled")


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
    values = [[s.id for s in batch]] + [
        [c.get_db_prep_save(getattr(s, c.attname), connection) for s in batch] for c in columns
    ]
    placeholders, arrays = unnest_arrays(
        values, ["bigint"] + [c.cast_db_type(connection).split("(")[0] for c in columns]
    )
    params = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in common.items()]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} SET {', '.join(sets)} FROM unnest({placeholders}) "
            f"AS v(id, {', '.join(c.column for c in columns)}) WHERE {meta.db_table}.id = v.id",
            params + arrays,
        )


STEP_ROW_KINDS = ("bigint", "smallint", "varchar", "integer", "varchar", "timestamptz", "timestamptz")


def steps_upsert(
    step, settlements: Iterable[Settlement], status: str, started: datetime, finished, code: str = ""
) -> None:
    """``step``: one step or several (steps that commit together)."""
    steps = [step] if isinstance(step, int) else list(step)
    rows = [
        (s.id, n, status, s.attempts + (status != StepStatus.DONE), code, started, finished)
        for n in steps
        for s in settlements
    ]
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
            placeholders, arrays = unnest_arrays([list(column) for column in zip(*rows)], STEP_ROW_KINDS)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({placeholders})" + upsert, arrays)
            return
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {values}" + upsert, [value for row in rows for value in row]
        )


# --- failures ---------------------------------------------------------------------------------


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    base, cap = settings.SETTLEMENT_RETRY_BASE_SECONDS, settings.SETTLEMENT_RETRY_MAX_SECONDS
    return random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1)))


def record_failure(settlement: Settlement, step: int, token: str, started: datetime, error: Exception) -> None:
    """A failed attempt at ``step``, in a transaction of its own: transient errors come back
    through ``settlement.resume`` after their backoff (or the recovery sweep, should that
    message be lost); fatal ones, and transient ones past ``SETTLEMENT_MAX_ATTEMPTS``, stop
    in manual review (audited). An error that only means "wait" (``waits``: an earlier
    request may still be in flight) is not an attempt that counts towards the limit."""
    code = getattr(error, "code", None) or "internal_error"
    transient = bool(getattr(error, "transient", False))
    attempt = settlement.attempts + 1
    waiting = bool(getattr(error, "waits", False))
    give_up = not transient or (attempt >= settings.SETTLEMENT_MAX_ATTEMPTS and not waiting)
    now = timezone.now()
    delay = 0.0 if give_up else max(backoff(attempt), float(getattr(error, "retry_after", 0) or 0))
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
            settlement=settlement,
            step=step,
            attempt=attempt,
            code=code[:40],
            message=str(error)[:2000],
            transient=transient,
        )
        settlement.attempts = attempt - 1
        steps_upsert(step, [settlement], StepStatus.FAILED if give_up else StepStatus.RETRYING, started, now, code[:40])
        counter_add("settlement_retries" if not give_up else "settlement_manual_reviews")
        if give_up:
            mirror_refs([settlement.ref], "manual_review")
            audit_append(
                actor=None,
                action="settlement.manual_review",
                target_type="settlement",
                target_id=str(settlement.id),
                data={"ref": settlement.ref, "step": step, "error": code, "attempts": attempt},
            )
        else:
            enqueue_on_commit("settlement.resume", step, [settlement.id], countdown=delay)


# --- counters and the order mirror ------------------------------------------------------------


def counter_add(name: str, by: int = 1) -> None:
    if not by:
        return
    updated = Counter.objects.filter(name=name).update(value=F("value") + by)
    if not updated:
        try:
            with transaction.atomic():
                Counter.objects.create(name=name, value=by)
        except IntegrityError:
            Counter.objects.filter(name=name).update(value=F("value") + by)


def mirror_refs(refs: list[str], state: str) -> None:
    """Show the back office's progress on the traders' orders (the order rows belong to the
    orders app; settlement may write this one column of them)."""
    from orders.options import settlement_mirror

    if refs:
        settlement_mirror.set_state(refs=refs, state=state)
