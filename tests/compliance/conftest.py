from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import KycProfile, KycStatus
from ledger.models import Transfer, Withdrawal
from ledger.services import deposit_credit, withdrawal_create

ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.fixture
def money():
    """deposit(user, "9500") / withdraw(user, "100") through the ledger's real services,
    optionally dated ``ago`` (a timedelta) in the past, as history."""

    counter = {"n": 0}

    class Money:
        def deposit(self, user, amount, *, asset="USDT", ago=None):
            counter["n"] += 1
            transfer = deposit_credit(
                user=user, asset=asset, amount=Decimal(str(amount)), txid=f"aml-{user.pk}-{counter['n']}"
            )
            if ago is not None:
                Transfer.objects.filter(pk=transfer.pk).update(created_at=timezone.now() - ago)
            return transfer

        def withdraw(self, user, amount, *, asset="USDT", ago=None):
            KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
            withdrawal = withdrawal_create(user=user, asset=asset, amount=Decimal(str(amount)), address=ETH_ADDRESS)
            if ago is not None:
                Withdrawal.objects.filter(pk=withdrawal.pk).update(created_at=timezone.now() - ago)
            return withdrawal

    return Money()


@pytest.fixture
def joined_long_ago(user):
    user.date_joined = timezone.now() - timedelta(days=400)
    user.save(update_fields=["date_joined"])
    return user
