"""Shared set-up for the options counter tests: a fresh index, the listed series, funded
traders with approved KYC, and small helpers to reach the API and the books."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import KycProfile, KycStatus
from ledger.models import AccountKind, LedgerAccount, SystemRole
from ledger.services import deposit_credit
from marketdata.models import IndexPrint, Instrument, InstrumentKind
from marketdata.services import instruments_sync
from tests.factories import UserFactory
from tests.processes import Repeat

INDEX = {"BTC": Decimal("65000.12"), "ETH": Decimal("3400.55")}
FUNDS = Decimal("100000")


def print_index(
    underlying: str, price: Decimal | None, *, ago: float = 0.0, stale: bool = False, ts=None
) -> IndexPrint:
    return IndexPrint.objects.create(
        underlying=underlying,
        ts=ts or timezone.now() - timedelta(seconds=ago),
        price=price,
        stale=stale,
        sources={},
    )


def _print_all() -> None:
    for underlying, price in INDEX.items():
        print_index(underlying, price)


def IndexTicker() -> Repeat:
    """Keeps both indexes fresh: a print a second at the fixed test prices."""
    return Repeat(_print_all, every=1.0)


def list_series() -> None:
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


def pick_series(underlying: str = "BTC", option_type: str = "C", *, min_days: float = 2, offset: int = 0) -> Instrument:
    """A live series at least ``min_days`` from expiry (clear of the trading cut-off), with
    the strike nearest the index (``offset`` strikes above it; negative: below)."""
    now = timezone.now()
    live = Instrument.objects.filter(
        kind=InstrumentKind.OPTION,
        base=underlying,
        option_type=option_type,
        active=True,
        expiry__gt=now + timedelta(days=min_days),
    )
    expiry = live.order_by("expiry").values_list("expiry", flat=True).first()
    strikes = sorted(live.filter(expiry=expiry), key=lambda i: i.strike)
    nearest = min(range(len(strikes)), key=lambda n: abs(strikes[n].strike - INDEX[underlying]))
    return strikes[nearest + offset]


def trader(*, usdt: Decimal | str | None = FUNDS, kyc: bool = True):
    user = UserFactory()
    if kyc:
        KycProfile.objects.filter(user=user).update(status=KycStatus.APPROVED)
    if usdt:
        deposit_credit(user=user, asset="USDT", amount=Decimal(str(usdt)), txid=f"options-test-{user.pk}")
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


def usdt_available(client) -> Decimal:
    response = client.get("/api/v1/balances")
    assert response.status_code == 200, response.content[:300]
    [usdt] = [row for row in response.json() if row["asset"] == "USDT"]
    return Decimal(usdt["available"])


def clearing_usdt() -> Decimal:
    """The OPTION_CLEARING role's USDT balance over all its buckets."""
    return sum(
        (
            a.balance
            for a in LedgerAccount.objects.filter(
                kind=AccountKind.SYSTEM, role=SystemRole.OPTION_CLEARING, asset="USDT"
            )
        ),
        Decimal(0),
    )


@pytest.fixture
def listed(db):
    list_series()


@pytest.fixture
def btc_call(listed) -> Instrument:
    return pick_series("BTC", "C")


@pytest.fixture
def funded(db):
    return trader()


@pytest.fixture
def funded_api(funded) -> APIClient:
    return client_for(funded)
