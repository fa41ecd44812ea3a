from decimal import Decimal

import pytest

from ledger.services import deposit_credit


@pytest.fixture
def fund():
    """fund(user, "USDT", "1000") credits a deposit through the real deposit path."""

    counter = {"n": 0}

    def _fund(user, asset, amount):
        counter["n"] += 1
        return deposit_credit(
            user=user, asset=asset, amount=Decimal(str(amount)), txid=f"test-fund-{user.pk}-{counter['n']}"
        )

    return _fund
