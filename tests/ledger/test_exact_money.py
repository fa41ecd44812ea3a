"""Money is exact in both databases: every stored amount equals its Decimal, and sums the
database does are exact. On PostgreSQL ``numeric`` is exact; on SQLite (the embedded mode)
amount columns hold integer counts of units (``trading.fields.ExactDecimalField``).
``test_the_same_tests_pass_on_sqlite`` runs this file, the ledger's state machine and the
order burst again on a SQLite database."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import DataError, connection, transaction
from django.db.models import F

from ledger.models import LedgerAccount, SystemRole, Transfer, TransferKind
from ledger.selectors import balance_of, ledger_recompute
from ledger.services import TransferRequest, deposit_credit, system_account, transfers_commit, user_account
from orders.models import SpotOrder
from tests.factories import UserFactory
from tests.processes import pytest_on_sqlite
from trading.fields import ExactDecimalField
from trading.money import ASSETS, quantum

D = Decimal
SQLITE = connection.vendor == "sqlite"


@pytest.mark.django_db
@pytest.mark.parametrize("asset", ASSETS)
def test_a_tenth_and_two_tenths_are_three_tenths_in_balances_holds_and_the_audit(asset):
    user = UserFactory()
    deposit_credit(user=user, asset=asset, amount=D("0.1"), txid="a")
    deposit_credit(user=user, asset=asset, amount=D("0.2"), txid="b")
    assert balance_of(user=user, asset=asset).total == D("0.3")
    account = LedgerAccount.objects.get(pk=user_account(user_id=user.pk, asset=asset).pk)
    assert account.credits_posted == D("0.3") and str(account.credits_posted.normalize()) == "0.3"

    # hold the two tenths, release one tenth of it, spend the rest: nothing left over
    fees = system_account(role=SystemRole.FEES, asset=asset)
    transfers_commit(
        [
            TransferRequest(
                id="h", kind=TransferKind.PENDING, code="t", asset=asset, amount=D("0.2"), debit=account, credit=fees
            )
        ]
    )
    transfers_commit(
        [TransferRequest(id="p", kind=TransferKind.POST_PENDING, code="t", pending_id="h", amount=D("0.1"))]
    )
    transfers_commit([TransferRequest(id="s", code="t", asset=asset, amount=D("0.2"), debit=account, credit=fees)])
    balance = balance_of(user=user, asset=asset)
    assert (balance.total, balance.available, balance.held) == (0, 0, 0)

    report = ledger_recompute()
    assert report.ok, report
    assert report.totals[asset]["credits_posted"] == report.totals[asset]["debits_posted"]
    call_command("ledger_audit")


@pytest.mark.django_db
def test_the_smallest_unit_of_every_asset_adds_up_exactly_many_times():
    user = UserFactory()
    for asset in ASSETS:
        for n in range(30):
            deposit_credit(user=user, asset=asset, amount=quantum(asset), txid=f"dust-{n}")
        assert balance_of(user=user, asset=asset).total == 30 * quantum(asset)
    assert ledger_recompute().ok


@pytest.mark.django_db
def test_amounts_round_trip_exactly_up_to_the_columns_range():
    user = UserFactory()
    large = "92233720368.54775807" if SQLITE else "999999999999999999999999999999.99999999"
    # (literals: Python's arithmetic, even a minus sign, rounds to 28 digits)
    for value in (D("0.00000001"), D("1234567.89012345"), D(large), D("-" + large)):
        Transfer.objects.filter(pk="probe").delete()
        SpotOrder.objects.filter(request_hash="probe").delete()
        order = SpotOrder.objects.create(
            user=user,
            symbol="BTC-USDT",
            side="buy",
            type="limit",
            quantity=value,
            price=D("1"),
            hold_asset="USDT",
            hold_amount=0,
            request_hash="probe",
        )
        assert SpotOrder.objects.values_list("quantity", flat=True).get(pk=order.pk) == value
        assert SpotOrder.objects.filter(quantity=value).count() == 1
        assert SpotOrder.objects.filter(quantity__gte=value, quantity__lte=value).count() == 1
        assert not SpotOrder.objects.filter(quantity__lt=value).exists()


@pytest.mark.django_db
def test_a_value_beyond_the_column_is_refused_not_rounded_away():
    user = UserFactory()
    too_large = D("92233720368.54775808") if SQLITE else D("1e30")
    with pytest.raises(DataError), transaction.atomic():
        SpotOrder.objects.create(
            user=user,
            symbol="BTC-USDT",
            side="buy",
            type="limit",
            quantity=too_large,
            price=D("1"),
            hold_asset="USDT",
            hold_amount=0,
            request_hash="x",
        )


def test_floats_and_mixed_expressions_are_refused():
    field = ExactDecimalField()
    with pytest.raises(Exception, match="Floats"):
        field.to_python(0.1)
    # a plain number added to a column would be a sum of units of different sizes on SQLite
    with pytest.raises(FieldError):
        LedgerAccount.objects.annotate(x=F("credits_posted") + D("1")).first()


@pytest.mark.django_db
@pytest.mark.skipif(not SQLITE, reason="the column layout of the embedded mode")
def test_sqlite_keeps_integer_units_and_refuses_anything_else():
    user = UserFactory()
    deposit_credit(user=user, asset="USDT", amount=D("0.3"), txid="t")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credits_posted, typeof(credits_posted) FROM ledger_ledgeraccount WHERE user_id = %s", [user.pk]
        )
        assert cursor.fetchone() == (30000000, "integer")
        with pytest.raises(Exception, match="CHECK constraint failed"), transaction.atomic():
            cursor.execute("UPDATE ledger_ledgeraccount SET credits_posted = 0.3 WHERE user_id = %s", [user.pk])


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not SQLITE, reason="converts an embedded database made before the exact columns")
def test_migrating_an_older_embedded_database_converts_its_amounts():
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("ledger", "0002_alter_ledgeraccount_role")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_ledgeraccount (code, asset, kind, role, bucket, debits_posted, credits_posted, "
            "debits_pending, credits_pending, created_at) VALUES ('old', 'USDT', 'system', 'fees', 99, 0, "
            "0.30000000000000004, 0.1, 0, '2026-01-01')"
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    old = LedgerAccount.objects.get(code="old")
    assert (old.credits_posted, old.debits_pending) == (D("0.3"), D("0.1"))
    old.delete()


@pytest.mark.slow
@pytest.mark.skipif(SQLITE, reason="this is the SQLite run")
def test_the_same_tests_pass_on_sqlite(tmp_path):
    here = os.path.dirname(__file__)
    pytest_on_sqlite(
        tmp_path,
        __file__,
        os.path.join(here, "test_ledger_state_machine.py"),
        os.path.join(here, "..", "orders", "spot", "test_order_burst.py"),
        timeout=600,
    )
