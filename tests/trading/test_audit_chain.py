"""The chain: append-only at every layer, verifiable, and any tampering is found."""

import itertools
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from ledger import services as ledger_services
from ledger import signals as ledger_signals
from ledger.models import Transfer
from tests.trading.audit_helpers import records
from trading.audit import audit_append, audit_chain_verify
from trading.models import (
    GENESIS_HASH,
    AppendOnlyError,
    AuditChainHead,
    AuditRecord,
    chain_hash,
)

pytestmark = pytest.mark.django_db

TABLE = AuditRecord._meta.db_table


def _append_many(n, actor=None):
    for i in range(n):
        audit_append(
            actor=actor,
            action="test.event",
            target_type="test.thing",
            target_id=str(i),
            data={
                "i": i,
                "amount": Decimal("1.25") * i,
                "note": "ünïcode ✓",
                "nested": {"b": [1, None, True], "a": 1e100},
            },
            ip="2001:DB8::1" if i % 2 else "192.0.2.1",
        )


@pytest.fixture
def chain(user):
    _append_many(6, actor=user)
    return records()


def _raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _tamper(sql, params=()):
    """Change the table behind the triggers' back, as someone with the owner's rights could.

    (The test's transaction still holds deferred foreign-key checks from the appends, and
    PostgreSQL refuses ALTER TABLE while they are pending: run them first.)"""
    _raw("SET CONSTRAINTS ALL IMMEDIATE")
    _raw(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
    try:
        _raw(sql, params)
    finally:
        _raw(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")
        _raw("SET CONSTRAINTS ALL DEFERRED")


def _broken_at() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify", stdout=_Sink(), stderr=_Sink())
    return str(caught.value)


class _Sink:
    def write(self, *args, **kwargs):
        pass

    def flush(self):
        pass


def test_many_appends_form_a_gapless_verified_chain(user):
    _append_many(250, actor=user)
    chain = records()
    assert [r.seq for r in chain] == list(range(1, 251))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert all(a.at <= b.at for a, b in itertools.pairwise(chain))
    assert chain[1].ip == "2001:db8::1" and chain[0].ip == "192.0.2.1"
    assert chain[3].data["amount"] == "3.75" and chain[3].data["nested"]["a"] == "1e+100"
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (250, chain[-1].hash)
    assert audit_chain_verify() == (True, 250, None, "")


def test_audit_verify_command_reports_success(chain):
    from io import StringIO

    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "6 records verified" in out.getvalue()


def test_the_orm_refuses_updates_and_deletes(chain):
    record = AuditRecord.objects.get(seq=2)
    record.data = {"forged": True}
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(seq=2).update(action="forged")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(seq=2).delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.bulk_update([record], ["data"])
    assert audit_chain_verify().ok


def test_the_database_refuses_raw_updates_and_deletes(chain):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw(f"UPDATE {TABLE} SET data = %s WHERE seq = 3", ['{"forged": true}'])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw(f"DELETE FROM {TABLE} WHERE seq = 6")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw(f"DELETE FROM {TABLE}")
    assert AuditRecord.objects.count() == 6
    assert audit_chain_verify() == (True, 6, None, "")


@pytest.mark.tampers
def test_a_changed_record_is_caught_at_its_seq(chain):
    _tamper(f"UPDATE {TABLE} SET data = %s WHERE seq = 3", ['{"i": 2, "amount": "0"}'])
    assert audit_chain_verify() == (False, 2, 3, "hash mismatch: the record's contents were changed")
    message = _broken_at()
    assert message.startswith("BROKEN at seq 3:"), message


@pytest.mark.tampers
@pytest.mark.parametrize(
    "column, value", [("actor_label", "someone-else@example.com"), ("ip", "10.9.9.9"), ("action", "test.other")]
)
def test_any_covered_column_is_protected(chain, column, value):
    _tamper(f"UPDATE {TABLE} SET {column} = %s WHERE seq = 4", [value])
    assert _broken_at().startswith("BROKEN at seq 4:")


@pytest.mark.tampers
def test_a_rehashed_forgery_breaks_the_next_link(chain):
    forged = AuditRecord.objects.get(seq=3)
    forged.data = {"forged": True}
    forged_hash = chain_hash(forged.prev_hash, forged.canonical())
    _tamper(f"UPDATE {TABLE} SET data = %s, hash = %s WHERE seq = 3", ['{"forged": true}', forged_hash])
    result = audit_chain_verify()
    assert (result.ok, result.first_broken) == (False, 4)
    assert "prev_hash" in result.reason
    assert _broken_at().startswith("BROKEN at seq 4:")


@pytest.mark.tampers
def test_a_removed_record_is_caught(chain):
    _tamper(f"DELETE FROM {TABLE} WHERE seq = 3")
    result = audit_chain_verify()
    assert (result.ok, result.checked, result.first_broken) == (False, 2, 3)
    assert "seq 3 is missing" in result.reason
    assert _broken_at().startswith("BROKEN at seq 3:")


@pytest.mark.tampers
def test_records_removed_from_the_end_are_caught(chain):
    _tamper(f"DELETE FROM {TABLE} WHERE seq >= 5")
    result = audit_chain_verify()
    assert (result.ok, result.checked, result.first_broken) == (False, 4, 5)
    assert "removed from the end" in result.reason


def test_a_rolled_back_transaction_leaves_no_record(chain):
    head_before = AuditChainHead.objects.values_list("seq", "hash").get()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_append(actor=None, action="test.doomed")
        raise RuntimeError("the business transaction fails after the audit append")
    assert AuditRecord.objects.count() == 6
    assert AuditChainHead.objects.values_list("seq", "hash").get() == head_before
    assert audit_append(actor=None, action="test.after").seq == 7
    assert audit_chain_verify() == (True, 7, None, "")


def test_a_failing_business_transaction_takes_its_audit_record_with_it(user):
    def fail_after_audit(sender, **kwargs):
        assert AuditRecord.objects.filter(action="ledger.deposit").exists()  # written, not yet committed
        raise RuntimeError("a later step of the deposit fails")

    ledger_signals.deposit_credited.connect(fail_after_audit)
    try:
        with pytest.raises(RuntimeError):
            ledger_services.deposit_credit(user=user, asset="USDT", amount="25", txid="doomed-tx")
    finally:
        ledger_signals.deposit_credited.disconnect(fail_after_audit)
    assert not Transfer.objects.filter(reference="doomed-tx").exists()
    assert not AuditRecord.objects.exists()

    ledger_services.deposit_credit(user=user, asset="USDT", amount="25", txid="good-tx")
    [record] = records()
    assert (record.seq, record.action, record.data["txid"]) == (1, "ledger.deposit", "good-tx")
    assert audit_chain_verify().ok


def test_a_lost_head_row_is_rebuilt_from_the_last_record(chain):
    AuditChainHead.objects.all().delete()
    record = audit_append(actor=None, action="test.after_head_loss")
    assert (record.seq, record.prev_hash) == (7, chain[-1].hash)
    assert audit_chain_verify() == (True, 7, None, "")
