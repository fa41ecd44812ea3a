"""``manage.py deposit`` (the chain watcher's entry point) and ``manage.py ledger_audit``."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ledger.models import LedgerAccount, Transfer
from ledger.selectors import balance_of
from ledger.services import user_account

pytestmark = pytest.mark.django_db


def _deposit(**options) -> str:
    out = StringIO()
    call_command("deposit", stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def _audit() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ledger_audit", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_deposit_prints_the_transfer_id_and_credits_once_per_txid(user):
    output = _deposit(email=user.email, asset="USDT", amount="1000", txid="t1")

    transfer = Transfer.objects.get(pk="deposit:USDT:t1")
    assert transfer.id in output
    assert "1000.000000 USDT" in output and user.email in output
    assert transfer.amount == Decimal("1000") and transfer.code == "deposit" and transfer.reference == "t1"
    assert balance_of(user=user, asset="USDT").available == Decimal("1000")

    # the watcher reports the same transaction again: same transfer, nothing more credited
    again = _deposit(email=user.email, asset="USDT", amount="1000", txid="t1")
    assert transfer.id in again
    assert Transfer.objects.filter(code="deposit").count() == 1
    assert balance_of(user=user, asset="USDT").available == Decimal("1000")

    out, err = _audit()
    assert "ledger audit OK" in out and err == ""


def test_the_same_txid_with_another_amount_is_refused(user):
    _deposit(email=user.email, asset="USDT", amount="1000", txid="t1")
    with pytest.raises(CommandError):
        _deposit(email=user.email, asset="USDT", amount="2000", txid="t1")
    assert balance_of(user=user, asset="USDT").available == Decimal("1000")


def test_deposit_options(user):
    # email is matched case-insensitively, the asset too; without a txid every run is new
    _deposit(email=user.email.upper(), asset="btc", amount="0.015")
    _deposit(email=f"  {user.email} ", asset="BTC", amount="0.015")
    assert balance_of(user=user, asset="BTC").available == Decimal("0.03")
    assert Transfer.objects.filter(code="deposit", asset="BTC").count() == 2
    # the same txid on another asset is another deposit
    _deposit(email=user.email, asset="ETH", amount="1", txid="t1")
    _deposit(email=user.email, asset="USDT", amount="1", txid="t1")
    assert {t.id for t in Transfer.objects.filter(reference="t1")} == {"deposit:ETH:t1", "deposit:USDT:t1"}
    assert "ledger audit OK" in _audit()[0]


def test_deposit_works_through_the_command_line_parser(user):
    out = StringIO()
    call_command("deposit", "--email", user.email, "--asset", "ETH", "--amount", "2.5", "--txid", "0xabc", stdout=out)
    assert "deposit:ETH:0xabc" in out.getvalue()
    assert balance_of(user=user, asset="ETH").available == Decimal("2.5")


@pytest.mark.parametrize(
    "asset, amount",
    [
        ("USDT", "abc"),
        ("USDT", "-5"),
        ("USDT", "0"),
        ("USDT", "1.1234567"),  # 7 places
        ("BTC", "0.000000001"),  # 9 places
        ("USDT", "NaN"),
        ("USDT", ""),
        ("DOGE", "1"),
    ],
)
def test_bad_input_is_a_command_error_and_credits_nothing(user, asset, amount):
    with pytest.raises(CommandError):
        _deposit(email=user.email, asset=asset, amount=amount, txid="bad")
    assert not Transfer.objects.exists()
    assert not LedgerAccount.objects.filter(user=user).exclude(credits_posted=0).exists()


@pytest.mark.parametrize("amount", ["1e40", "1e25"])
def test_a_huge_amount_is_a_command_error(user, amount):
    with pytest.raises(CommandError):
        _deposit(email=user.email, asset="USDT", amount=amount, txid="huge")
    assert not Transfer.objects.exists()


def test_unknown_email_is_a_command_error(user):
    with pytest.raises(CommandError, match=r"nobody@example\.com"):
        _deposit(email="nobody@example.com", asset="USDT", amount="10", txid="t1")
    assert not Transfer.objects.exists()


def test_ledger_audit_on_an_empty_ledger_passes(db):
    out, err = _audit()
    assert "ledger audit OK" in out and err == ""


@pytest.mark.tampers
def test_ledger_audit_catches_a_tampered_counter(user, other_user):
    _deposit(email=user.email, asset="USDT", amount="1000", txid="t1")
    _deposit(email=other_user.email, asset="BTC", amount="1", txid="t2")
    assert "ledger audit OK" in _audit()[0]
    account = user_account(user_id=user.pk, asset="USDT")

    # someone edits a balance behind the ledger's back
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_ledgeraccount SET credits_posted = credits_posted + 1 WHERE id = %s", [account.pk]
        )

    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("ledger_audit", stdout=out, stderr=err)
    assert "FAILED" in str(caught.value)
    report = err.getvalue()
    assert account.code in report
    assert "counter mismatch" in report
    assert "unbalanced asset" in report and "USDT" in report
    # only the tampered account and its asset are reported
    other = user_account(user_id=other_user.pk, asset="BTC")
    assert other.code not in report
    assert "BTC:" not in report

    # put it back: clean again
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_ledgeraccount SET credits_posted = credits_posted - 1 WHERE id = %s", [account.pk]
        )
    assert "ledger audit OK" in _audit()[0]


@pytest.mark.tampers
def test_ledger_audit_catches_a_tampered_pending_counter(user):
    _deposit(email=user.email, asset="ETH", amount="3", txid="t1")
    account = user_account(user_id=user.pk, asset="ETH")
    with connection.cursor() as cursor:
        # a phantom hold: still within the user's balance, so the database constraints allow it
        cursor.execute("UPDATE ledger_ledgeraccount SET debits_pending = 1 WHERE id = %s", [account.pk])
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("ledger_audit", stdout=StringIO(), stderr=err)
    assert account.code in err.getvalue()
