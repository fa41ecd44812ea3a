"""The transactional outbox: what must not be lost leaves the business transaction as a
row here, and the relay (settlement/relay.py) carries it on after commit.

``outbox_write`` needs the caller's transaction (it refuses to run in autocommit): the event
exists exactly when the business change does.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from .models import OutboxEvent

NOTIFY_CHANNEL = "outbox"


def outbox_write(*, topic: str, key: str, payload: dict) -> OutboxEvent:
    """Record one event in the current transaction (required)."""
    if not connection.in_atomic_block:
        raise TransactionManagementError("outbox_write must run inside the business transaction.")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The writer's own xid8 (assigning one if the transaction has none yet), and a
            # NOTIFY that PostgreSQL delivers only if and when this transaction commits.
            cursor.execute("SELECT pg_current_xact_id()::text::bigint, pg_notify(%s, '')", [NOTIFY_CHANNEL])
            (txid, _) = cursor.fetchone()
    else:
        txid = 0
    event = OutboxEvent.objects.create(txid=txid, topic=topic, key=key, payload=payload)
    if connection.vendor != "postgresql":
        from . import workers

        transaction.on_commit(lambda: workers.wake("relay"))
    return event


def outbox_after(*, txid: int, event_id: int, limit: int, topics: tuple[str, ...] | None = None) -> list[OutboxEvent]:
    """Committed events after the cursor ``(txid, event_id)``, in ``(txid, id)`` order.

    On PostgreSQL only events of transactions older than every transaction still running
    (``txid < pg_snapshot_xmin``) are returned: a transaction that started earlier but
    commits later than its neighbours will still be read, in its place, when it ends. A
    plain ``id > last`` scan would have stepped over it for good.
    """
    table = OutboxEvent._meta.db_table
    where = "(txid, id) > (%s, %s)"
    params: list = [txid, event_id]
    if connection.vendor == "postgresql":
        where += " AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    if topics:
        where += f" AND topic IN ({', '.join(['%s'] * len(topics))})"
        params += list(topics)
    return list(
        OutboxEvent.objects.raw(f"SELECT * FROM {table} WHERE {where} ORDER BY txid, id LIMIT %s", [*params, limit])
    )


def outbox_committed_after(*, txid: int, event_id: int) -> bool:
    """Whether any committed event follows the cursor, visible or not yet to ``outbox_after``
    (an older transaction still running holds it behind the snapshot guard)."""
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE (txid, id) > (%s, %s))", [txid, event_id])
        return bool(cursor.fetchone()[0])


def outbox_message(event: OutboxEvent) -> dict:
    """The event as it travels through the broker (JSON)."""
    return {
        "id": event.id,
        "txid": event.txid,
        "topic": event.topic,
        "key": event.key,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }
