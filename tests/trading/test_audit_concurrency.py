"""Concurrent appends from many connections still form one gapless, valid chain."""

import threading

import pytest
from django.db import connection, transaction

from trading.audit import audit_append, audit_chain_verify
from trading.models import AuditChainHead, AuditRecord

THREADS = 10
APPENDS_PER_THREAD = 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_a_gapless_valid_chain():
    # The table was flushed: the head row does not exist yet, so the first appends also race
    # to create it.
    assert not AuditChainHead.objects.exists()
    start = threading.Barrier(THREADS)
    errors = []

    def worker(n):
        try:
            start.wait(timeout=30)
            for i in range(APPENDS_PER_THREAD):
                with transaction.atomic(durable=True):
                    audit_append(actor=None, action="test.concurrent", target_id=f"{n}:{i}", data={"thread": n, "i": i})
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    total = THREADS * APPENDS_PER_THREAD
    assert list(AuditRecord.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    assert set(AuditRecord.objects.values_list("target_id", flat=True)) == {
        f"{n}:{i}" for n in range(THREADS) for i in range(APPENDS_PER_THREAD)
    }
    assert audit_chain_verify() == (True, total, None, "")
