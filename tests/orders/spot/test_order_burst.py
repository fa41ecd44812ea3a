"""A burst of limit orders and cancels from several traders at once, matched by a runner
working beside them, ends with books that recompute exactly from their transfers: on
PostgreSQL here, and on SQLite (the embedded mode) through
``tests/ledger/test_exact_money.py::test_the_same_tests_pass_on_sqlite``."""

from __future__ import annotations

import contextlib
import random
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from ledger.models import AccountKind, LedgerAccount
from orders.models import LIVE_STATUSES, SpotOrder
from orders.spot.services import order_request, spot_order_cancel, spot_order_place
from trading.errors import DomainError

from .conftest import Engine, funded_trader

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TRADERS, ORDERS_EACH = 4, 40


def _trade(user, seed: int, errors: list) -> None:
    rng = random.Random(seed)
    mine: list[int] = []
    try:
        for _ in range(ORDERS_EACH):
            if mine and rng.random() < 0.35:
                order_id = mine.pop(rng.randrange(len(mine)))
                with contextlib.suppress(DomainError):  # filled or cancelled meanwhile
                    spot_order_cancel(user=user, order_id=order_id, wait=0)
                continue
            # Prices and sizes with odd cents and lots, so holds, fills and fees carry every
            # decimal place the assets have.
            side = rng.choice(("buy", "sell"))
            cents = rng.randrange(-300, 300)
            price = Decimal("65000.12") + Decimal(cents) / 100
            quantity = Decimal(rng.randrange(1, 3000)) / 100000
            order, _ = spot_order_place(
                user=user,
                request=order_request(
                    **{
                        "symbol": "BTC-USDT",
                        "side": side,
                        "type": "limit",
                        "price": f"{price}",
                        "quantity": f"{quantity}",
                    }
                ),
            )
            mine.append(order.pk)
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connection.close()


def test_a_burst_of_orders_and_cancels_leaves_the_ledger_exact(markets):
    traders = [funded_trader(usdt="250000.123457", btc="4.56789123") for _ in range(TRADERS)]
    engine = Engine("BTC-USDT", batch=50)
    stop, errors = threading.Event(), []

    def run_engine():
        try:
            while not stop.is_set():
                engine.run()
                stop.wait(0.002)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    runner = threading.Thread(target=run_engine)
    runner.start()
    workers = [threading.Thread(target=_trade, args=(user, n, errors)) for n, user in enumerate(traders)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    stop.set()
    runner.join(30)
    assert not errors, errors

    for order in SpotOrder.objects.filter(status__in=LIVE_STATUSES):
        spot_order_cancel(user=order.user, order_id=order.pk, wait=0)
    engine.run()
    assert not SpotOrder.objects.filter(status__in=LIVE_STATUSES).exists()
    assert SpotOrder.objects.count() > TRADERS * ORDERS_EACH // 2
    # every hold released, and every counter equal to the sum of its transfers
    assert not LedgerAccount.objects.filter(kind=AccountKind.USER, debits_pending__gt=0).exists()
    call_command("ledger_audit")  # raises CommandError on any difference
