"""Acceptance intake: one settlement per outbox event of the settlement topics, keyed by the
event's key (unique), so a duplicate delivery inserts nothing.

The intake's hot path (``settlements_take_in``) records a batch and books the ledger legs of
steps 1 and 2 for its new settlements in **one transaction**; step 3 then goes to the venue
executor's queue, or, without one, runs here (claimed in that same transaction, then sent,
and committed with step 4). A redelivered message (its worker died mid-batch) carries on
with whatever of its settlements is unfinished.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ledger.services.transfers import transfers_execute
from trading.dependencies import dependency, unavailable
from trading.errors import DomainError
from trading.pgarrays import unnest_arrays

from .. import selectors
from ..models import Settlement, State, StepStatus
from .pipeline import settlements_continue
from .state import advance, claim_rows, mirror_refs, steps_upsert
from .steps import Accounts, ledger_steps
from .swap import venue_fast, venue_finish, venue_hand_on, venue_inline

logger = logging.getLogger(__name__)

TOPICS = ("options.order", "options.exercise")


def settlements_accept(*, events: Sequence[dict]) -> list[int]:
    """Insert one settlement per event, keyed by the event key; returns the ids of the new
    ones (a duplicate delivery inserts nothing and returns nothing for it)."""
    with transaction.atomic(durable=True):
        return sorted(s.id for s in _insert(events))


def settlements_take_in(
    *, events: Sequence[dict], through_venue: bool | None = None, carry_on: bool = True
) -> tuple[list[int], list[int]]:
    """Accept the events and take the new settlements through the ledger steps 1 and 2 in
    the same transaction, then on through step 3. Returns (new ids, ids carried on).

    ``through_venue`` (default: ``venue_inline()``: no ``SETTLEMENT_VENUE_QUEUE``, or a small
    batch and a venue known to answer within ``SETTLEMENT_VENUE_INLINE_MS``): the batch is
    claimed for step 3 in that transaction, then goes to the venue and through step 4 in
    this call; the second list is the settled ones. A batch thus costs two commits in all.
    Otherwise the batch stops at step 3, unclaimed, and is handed to the venue executor
    (``settlements_venue_run``) after the commit; the second list is the ids waiting
    there: the intake then never waits for a venue.

    Each step still has its own legs and its own state row: steps 1 and 2 commit with the
    acceptance, step 4 with step 3. Should the ledger refuse the batch, only its savepoint
    rolls back: the settlements stay accepted at step 1 for the step-by-step path.
    ``carry_on=False`` leaves a redelivery's unfinished settlements to the recovery sweep."""
    inline = venue_inline(len(events)) if through_venue is None else through_venue
    token = uuid.uuid4().hex
    with transaction.atomic(durable=True):
        batch = _insert(events)
        new_ids = [s.id for s in batch]
        if batch:
            try:
                with transaction.atomic():
                    started = timezone.now()
                    transfers_execute(ledger_steps(batch, (1, 2), Accounts(batch)))
                    if inline:
                        steps_upsert((1, 2), batch, StepStatus.DONE, started, timezone.now())
                        claim_rows(batch, token, step=3, mark_sends=True)
                    else:
                        advance(batch, 2, started, timezone.now(), first=1)
            except DomainError:
                logger.exception("intake: the ledger refused steps 1-2 of settlements %s; they wait at step 1", new_ids)
                batch = []
    if not batch:
        carried = []
    elif inline:
        carried = venue_finish(token, batch, last=4)
    else:
        carried = [s.id for s in batch]
        venue_hand_on(carried)
    if carry_on and len(new_ids) < len(events):
        # A redelivery (say, its worker died mid-batch): carry on with what is still
        # unfinished now rather than after the idle timeout. Claims keep a live executor's
        # rows apart.
        unfinished = selectors.settlements_unfinished(refs=[e.get("key") for e in events])
        carried += settlements_continue(by_step=unfinished, through_venue=inline)
    return new_ids, carried


def settlements_take_in_here(*, events: Sequence[dict]) -> bool:
    """The relay's resident intake: take a small batch in within the caller's process, as
    the intake task would (``settlements_take_in``), with no broker hop, queue mark or wait
    for a free worker on the way. Only a batch the venue step finishes in a few ms
    (``venue_fast``: at most ``SETTLEMENT_VENUE_INLINE_BATCH`` events, a venue known to
    answer within ``SETTLEMENT_VENUE_INLINE_MS``); returns False for any other, which the
    caller hands to the intake task as before, as it does when this raises.

    On an error, the batch counts as taken when every one of its settlements exists (the
    acceptance committed, now or on an earlier read): the error (the venue step's commit,
    say) is logged, or recorded against the service it says is down (a retry the broker
    refused: ``trading.dependencies``), and those settlements go on through the recovery
    sweep as after a worker's crash. Otherwise it raises. A batch read again (a new leader
    after a crash) leaves what is unfinished to the recovery sweep as well: the relay never
    takes on more than the batch's own settlements."""
    if not venue_fast(len(events)):
        return False
    started = time.time()
    events = [{**event, "intake_started_at": started} for event in events]
    try:
        settlements_take_in(events=events, carry_on=False)
    except Exception as exc:
        refs = {event["key"] for event in events if event.get("topic") in TOPICS}
        if Settlement.objects.filter(ref__in=refs).count() < len(refs):
            raise
        service = unavailable(exc)
        if service is not None:  # say, a retry the broker could not take: said once per outage
            dependency(service).failed(exc)
        else:
            logger.exception("intake: settlements %s were accepted; the recovery sweep finishes them", sorted(refs))
    return True


INSERT_KINDS = (
    "varchar",
    "bigint",
    "varchar",
    "varchar",
    "varchar",
    "numeric",
    "numeric",
    "numeric",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
)


def _stamp(value) -> datetime | None:
    """A stage time carried in a message (seconds since the epoch, or ISO), as a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC)
    return parse_datetime(value) if isinstance(value, str) else value


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
                _stamp(event.get("relay_seen_at")),
                _stamp(event.get("relay_sent_at")),
                _stamp(event.get("intake_started_at")),
            )
        )
    if not rows:
        return []
    now = timezone.now()
    table = Settlement._meta.db_table
    columns = (
        "ref, event_id, topic, kind, underlying, usdt, underlying_qty, index_price, payload, event_created_at, "
        "relay_seen_at, relay_sent_at, intake_started_at, "
        "state, step, attempts, claim, last_error_code, last_error, client_order_id, venue, venue_order_id, "
        "accepted_at, updated_at, resolved_by, resolution_note"
    )
    constants = [State.PENDING, 1, 0, "", "", "", "", "", "", now, now, "", ""]
    if connection.vendor == "postgresql":
        # One array per column: a short statement whatever the batch size (a VALUES list
        # of 200 rows x 23 columns cost more to build and parse than the insert).
        arrays = [list(column) for column in zip(*rows)]
        arrays[8] = [json.dumps(payload) for payload in arrays[8]]
        placeholders, literals = unnest_arrays(arrays, INSERT_KINDS)
        sql = (
            f"INSERT INTO {table} ({columns}) SELECT r, e, t, k, u, a, q, i, p::jsonb, c, rs, rp, st, "
            + ", ".join(["%s"] * len(constants))
            + f" FROM unnest({placeholders}) AS x(r, e, t, k, u, a, q, i, p, c, rs, rp, st)"
        )
        params = constants + literals
    else:
        field = Settlement._meta.get_field
        json_field, usdt_field, qty_field, index_field = (
            field(n) for n in ("payload", "usdt", "underlying_qty", "index_price")
        )
        params = []
        for ref, event_id, topic, kind, underlying, usdt, qty, index, payload, created, *stages in rows:
            params += [
                ref, event_id, topic, kind, underlying, usdt_field.get_db_prep_save(usdt, connection),
                qty_field.get_db_prep_save(qty, connection), index_field.get_db_prep_save(index, connection),
                json_field.get_db_prep_value(payload, connection), created, *stages, *constants,
            ]  # fmt: skip
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join(['(' + ', '.join(['%s'] * 26) + ')'] * len(rows))}"
    with connection.cursor() as cursor:
        # ON CONFLICT ... RETURNING answers only the rows this statement inserted: a
        # duplicate delivery is recognised by the database, not by a read before the write.
        cursor.execute(sql + " ON CONFLICT (ref) DO NOTHING RETURNING id, ref", params)
        inserted = {ref: pk for pk, ref in cursor.fetchall()}
    if not inserted:
        return []
    mirror_refs(list(inserted), "settling")
    # As inserted: the rows need not be read back. (A key twice in one batch was
    # inserted once.)
    new = []
    for ref, event_id, topic, kind, underlying, usdt, qty, index, payload, created, seen, sent, started in rows:
        pk = inserted.pop(ref, None)
        if pk is not None:
            new.append(
                Settlement(
                    id=pk,
                    ref=ref,
                    event_id=event_id,
                    topic=topic,
                    kind=kind,
                    underlying=underlying,
                    usdt=usdt,
                    underlying_qty=qty,
                    index_price=index,
                    payload=payload,
                    event_created_at=created,
                    relay_seen_at=seen,
                    relay_sent_at=sent,
                    intake_started_at=started,
                    state=State.PENDING,
                    step=1,
                    attempts=0,
                    accepted_at=now,
                    updated_at=now,
                )
            )
    return sorted(new, key=lambda s: s.id)
