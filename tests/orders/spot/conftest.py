"""Spot set-up: the listed pairs at a fresh index, funded traders, and an in-process engine
runner that holds its symbol's lease (the same code ``run_engine`` runs)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from ledger.selectors import balance_of
from ledger.services import deposit_credit
from marketdata.services import instruments_sync
from orders.spot.runner import EngineRunner, lease_name
from tests.factories import UserFactory
from tests.orders.conftest import INDEX, print_index
from trading.leases import lease_acquire


@pytest.fixture
def markets(db):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


def funded_trader(*, usdt="100000", btc="10", eth="0"):
    user = UserFactory()
    for asset, amount in (("USDT", usdt), ("BTC", btc), ("ETH", eth)):
        if Decimal(amount):
            deposit_credit(user=user, asset=asset, amount=Decimal(amount), txid=f"spot-test-{asset}-{user.pk}")
    return user


@pytest.fixture
def alice(markets):
    return funded_trader()


@pytest.fixture
def bob(markets):
    return funded_trader()


class Engine:
    """A runner driven by hand: ``run()`` processes everything waiting, batch by batch."""

    def __init__(self, symbol: str, batch: int | None = None):
        self.runner = EngineRunner(symbol, batch=batch)
        self.runner.holder = f"test-{symbol}"
        self.epoch = lease_acquire(name=lease_name(symbol), holder=self.runner.holder, ttl=60)
        assert self.epoch is not None
        self.runner.on_lead(self.epoch)

    def run(self) -> int:
        rounds = 0
        while self.runner.work(self.epoch):
            rounds += 1
        return rounds + 1

    def restart(self) -> None:
        """A new runner rebuilding from the database, as after a crash."""
        runner = EngineRunner(self.runner.symbol, batch=self.runner.batch)
        runner.holder = self.runner.holder
        runner.on_lead(self.epoch)
        self.runner = runner


@pytest.fixture
def btc_engine(markets):
    return Engine("BTC-USDT")


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def available(user, asset: str) -> Decimal:
    return balance_of(user=user, asset=asset).available


def held(user, asset: str) -> Decimal:
    return balance_of(user=user, asset=asset).held
