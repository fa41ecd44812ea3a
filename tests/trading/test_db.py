"""Several reads in one round trip (``trading.db``): results in order, one statement text on
PostgreSQL, each statement's own snapshot (a read after a lock sees what committed before
the lock was granted), and only plain names written into the SQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from risk.models import TradingState
from trading.db import Read, read_together, sql_int, sql_name

LOCK = 0x7465_7374  # a key no product code uses


@pytest.mark.django_db
def test_reads_come_back_in_order_from_one_statement_text():
    with CaptureQueriesContext(connection) as sent:
        first, second, empty = read_together(
            Read.one("SELECT 1, 'a'"),
            Read(("SELECT 2", "SELECT 3 UNION ALL SELECT 4"), lambda rows: [value for (value,) in rows]),
            Read.one("SELECT 1 WHERE false", lambda rows: rows or None),
        )
    assert first == [(1, "a")]
    assert second == [3, 4]  # the last statement's rows
    assert empty is None
    assert len(sent.captured_queries) == 1


@pytest.mark.django_db(transaction=True)
def test_a_read_after_a_lock_sees_what_committed_before_the_lock_was_granted():
    holding, release = threading.Event(), threading.Event()
    outcome = {}

    def writer():
        try:
            outcome["writer"] = "started"
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK])
                TradingState.objects.create(
                    scope="platform", target="", state="halted", reason="test", set_at=timezone.now()
                )
                holding.set()
                release.wait(10)
            outcome["writer"] = "committed"
        finally:
            connection.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert holding.wait(10), outcome
    reader_done = threading.Event()

    def reader():
        try:
            with transaction.atomic():
                (_, states) = read_together(
                    Read.one(f"SELECT pg_advisory_xact_lock_shared({LOCK})"),
                    Read.one(f"SELECT state FROM {TradingState._meta.db_table}"),
                )
            outcome["reader"] = states
        finally:
            connection.close()
            reader_done.set()

    second = threading.Thread(target=reader, daemon=True)
    second.start()
    assert not reader_done.wait(0.5), "the read did not wait for the lock"
    release.set()
    thread.join(10)
    assert reader_done.wait(10)
    # the text was sent before the writer committed; the read's snapshot was taken after
    assert outcome == {"writer": "committed", "reader": [("halted",)]}


@pytest.mark.parametrize("name", ["BTC-USDT", "BTC", "bot-7:order.1", "-x", "a" * 64])
def test_plain_names_are_written_in(name):
    assert sql_name(name) == f"'{name}'"


@pytest.mark.parametrize("name", ["", "a" * 65, "x'; DROP TABLE t; --", "a b", "a\\b", "é", "１", "a\nb", None, 7])
def test_anything_else_is_refused_not_escaped(name):
    with pytest.raises(ValueError):
        sql_name(name)


def test_integers_only():
    assert sql_int(42) == "42" and sql_int("7") == "7"
    with pytest.raises(ValueError):
        sql_int("7; SELECT 1")
