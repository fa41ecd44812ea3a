"""The transactional outbox and its snapshot-guarded read, on PostgreSQL.

The relay must never step over an event whose transaction commits after later ones: these
tests hold real transactions open on separate connections and check what a reader sees.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.processes import test_database_url
from trading.models import OutboxEvent
from trading.outbox import outbox_after, outbox_write


@pytest.mark.django_db(transaction=True)
def test_outbox_write_needs_the_business_transaction():
    with pytest.raises(TransactionManagementError):
        outbox_write(topic="t", key="k", payload={})
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_event_carries_its_writers_transaction_id_and_rolls_back_with_it():
    with transaction.atomic():
        event = outbox_write(topic="t", key="a", payload={"n": 1})
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            assert event.txid == cursor.fetchone()[0]
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_write(topic="t", key="b", payload={})
        raise RuntimeError("the business change failed")
    assert list(OutboxEvent.objects.values_list("key", flat=True)) == ["a"]


def _read_settled(read, expected_count: int, timeout: float = 15.0):
    """The snapshot guard also waits for transactions of other databases on the same server
    (transaction ids are server-wide): poll briefly instead of failing on a neighbour's."""
    deadline = time.monotonic() + timeout
    while True:
        result = read()
        if len(result) >= expected_count or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def _raw_connection():
    return psycopg.connect(test_database_url().replace("postgres://", "postgresql://"))


def _insert(conn, key: str) -> None:
    conn.execute(
        f"INSERT INTO {OutboxEvent._meta.db_table} (txid, topic, key, payload, created_at) "
        "VALUES (pg_current_xact_id()::text::bigint, 't', %s, '{}', now())",
        [key],
    )


@pytest.mark.django_db(transaction=True)
def test_a_late_commit_holds_the_reader_back_instead_of_being_skipped():
    early, late = _raw_connection(), _raw_connection()
    try:
        _insert(early, "early")  # transaction open, not committed
        _insert(late, "late")
        late.commit()
        # "late" has a higher txid and is committed, but "early" may still commit: nothing
        # at or after the oldest running transaction may be read yet.
        assert [e.key for e in outbox_after(txid=0, event_id=0, limit=10)] == []
        early.commit()
        keys = _read_settled(lambda: [e.key for e in outbox_after(txid=0, event_id=0, limit=10)], 2)
        assert keys == ["early", "late"]
    finally:
        early.close()
        late.close()


@pytest.mark.django_db(transaction=True)
@hsettings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=2, max_size=8))
def test_a_cursor_reader_sees_every_committed_event_once(plan):
    """Writers open in order, then commit (or roll back) in a shuffled order while a reader
    advances its cursor between every step: it must end with exactly the committed events,
    each once, whatever the interleaving."""
    OutboxEvent.objects.all().delete()
    conns = [_raw_connection() for _ in plan]
    try:
        for i, conn in enumerate(conns):
            _insert(conn, f"e{i}")
        order = sorted(range(len(plan)), key=lambda i: (plan[i][0], -i))
        seen: list[str] = []
        cursor = (0, 0)

        def read():
            nonlocal cursor
            for event in outbox_after(txid=cursor[0], event_id=cursor[1], limit=100):
                seen.append(event.key)
                cursor = (event.txid, event.id)

        committed = set()
        for i in order:
            if plan[i][1]:
                conns[i].commit()
                committed.add(f"e{i}")
            else:
                conns[i].rollback()
            read()
        _read_settled(lambda: (read(), seen)[1], len(committed))
        assert sorted(seen) == sorted(committed)
        assert len(seen) == len(set(seen))
    finally:
        for conn in conns:
            conn.close()
