"""History in the past for the snapshot, statement and export tests: deposits, withdrawals and
trades made through the platform's own services, then moved back to the day the test
needs (their transfers, accounts and orders re-dated), and index candles for the prices of
those days. The books stay balanced: only times change."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q

from accounts.models import KycProfile, KycStatus
from ledger.models import AccountKind, LedgerAccount, Transfer, TransferKind
from ledger.services import deposit_credit, withdrawal_approve, withdrawal_create
from marketdata.models import Candle, CandleSource
from tests.factories import UserFactory

D = Decimal
ETH_ADDRESS = "0x" + "ab" * 20


def moment(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=UTC)


def trader(*, kyc: bool = True):
    user = UserFactory()
    if kyc:
        KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    return user


def candle(asset: str, opened: datetime, close) -> Candle:
    """A one-minute index candle of ``asset``-USDT opening at ``opened``."""
    price = D(str(close))
    return Candle.objects.create(
        symbol=f"{asset}-USDT",
        source=CandleSource.INDEX,
        interval="1m",
        open_time=opened,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=0,
    )


def closes(asset: str, prices: dict[date, object]) -> None:
    """The index at each day's close: a candle opening at 23:59."""
    for day, price in prices.items():
        candle(asset, moment(day, 23, 59), price)


def redate(transfer_ids, when: datetime) -> None:
    """Move transfers (and the accounts they touch, if younger) back to ``when``."""
    transfers = Transfer.objects.filter(pk__in=list(transfer_ids))
    accounts = set()
    for debit, credit in transfers.values_list("debit_account_id", "credit_account_id"):
        accounts.update((debit, credit))
    transfers.update(created_at=when)
    LedgerAccount.objects.filter(pk__in=accounts, created_at__gt=when).update(created_at=when)


def deposit(user, asset: str, amount, when: datetime, *, txid: str | None = None) -> Transfer:
    transfer = deposit_credit(user=user, asset=asset, amount=D(str(amount)), txid=txid or f"t-{user.pk}-{when}-{asset}")
    redate([transfer.pk], when)
    transfer.refresh_from_db()
    return transfer


def withdraw(user, asset: str, amount, when: datetime, *, staff=None) -> list[Transfer]:
    """A withdrawal requested and sent at ``when``: its holds, their posts."""
    withdrawal = withdrawal_create(user=user, asset=asset, amount=D(str(amount)), address=ETH_ADDRESS)
    withdrawal_approve(withdrawal_id=withdrawal.pk, actor=staff)
    ids = list(Transfer.objects.filter(reference=f"withdrawal:{withdrawal.pk}").values_list("pk", flat=True))
    redate(ids, when)
    return list(Transfer.objects.filter(pk__in=ids))


def balance_at(user, asset: str, when: datetime) -> Decimal:
    """The reference: the account's posted credits minus debits before ``when``, summed in
    Python from the transfers one by one."""
    account = LedgerAccount.objects.filter(kind=AccountKind.USER, user=user, asset=asset).first()
    if account is None:
        return D(0)
    total = D(0)
    posted = Transfer.objects.filter(
        Q(debit_account=account) | Q(credit_account=account),
        kind__in=[TransferKind.POSTED, TransferKind.POST_PENDING],
        created_at__lt=when,
    )
    for transfer in posted:
        total += transfer.amount if transfer.credit_account_id == account.pk else -transfer.amount
    return total


def days_from(first: date, count: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(count)]
