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
