"""Races against real concurrent PostgreSQL transactions (one connection per thread): closes
of one position sell only what is held, a client_order_id fills once, expiry pays once,
and an order's rows and its outbox event commit in the same transaction."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from ledger.models import Transfer
from orders.models import OptionExercise, OptionOrder, OptionPosition
from orders.options.services import options_expire, options_order_place
from tests.risk.helpers import limit_set
from trading.errors import DomainError
from trading.models import OutboxEvent

from ..conftest import FUNDS, client_for, list_series, pick_series, print_index, trader, usdt_available

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@dataclass
class Outcome:
    result: object = None
    error: BaseException | None = None


def run_concurrently(calls, timeout=60) -> list[Outcome]:
    """Each call in its own thread (and database connection), released together."""
    barrier = threading.Barrier(len(calls))
    outcomes = [Outcome() for _ in calls]

    def worker(index, call):
        try:
            barrier.wait(timeout=timeout)
            outcomes[index].result = call()
        except BaseException as exc:
            outcomes[index].error = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return outcomes


def codes(outcomes) -> list[str]:
    unexpected = [o.error for o in outcomes if o.error is not None and not isinstance(o.error, DomainError)]
    assert not unexpected, unexpected
    return sorted(o.error.code for o in outcomes if o.error is not None)


def buy(user, series, contracts):
    return options_order_place(
        user=user, series=series.symbol, side="buy", contracts=contracts, limit_price_usdt="999999"
    )[0]


def sell(user, series, contracts, **kwargs):
    return options_order_place(
        user=user, series=series.symbol, side="sell", contracts=contracts, limit_price_usdt="0.01", **kwargs
    )


@pytest.fixture
def series(transactional_db):
    list_series()
    return pick_series("BTC", "C")


def test_two_concurrent_closes_of_one_position_sell_it_once(series):
    user = trader()
    cost = buy(user, series, "1").total_usdt
    outcomes = run_concurrently([lambda: sell(user, series, "1"), lambda: sell(user, series, "1")])
    assert codes(outcomes) == ["insufficient_position"]
    [(order, replayed)] = [o.result for o in outcomes if o.error is None]
    assert not replayed and order.contracts == 1
    position = OptionPosition.objects.get(user=user)
    assert (position.status, position.contracts, position.cost_usdt) == ("closed", 0, 0)
    assert OptionOrder.objects.filter(side="sell").count() == 1
    assert Transfer.objects.filter(code="option_close").count() == 1
    assert OutboxEvent.objects.filter(topic="options.order").count() == 2
    assert usdt_available(client_for(user)) == FUNDS - cost + order.total_usdt


def test_many_partial_closes_never_sell_more_than_held(series):
    user = trader()
    buy(user, series, "1")
    outcomes = run_concurrently([lambda: sell(user, series, "0.3") for _ in range(6)])
    assert codes(outcomes) == ["insufficient_position"] * 3
    sold = [o.result[0] for o in outcomes if o.error is None]
    assert len(sold) == 3
    position = OptionPosition.objects.get(user=user)
    assert position.contracts == Decimal("0.1") and position.status == "open"
    proceeds = sum((order.total_usdt for order in sold), Decimal(0))
    assert sum(Transfer.objects.filter(code="option_close").values_list("amount", flat=True)) == proceeds


def test_concurrent_buys_with_one_client_order_id_fill_once(series):
    user = trader()
    outcomes = run_concurrently([lambda: buy_with_id(user, series) for _ in range(5)])
    assert codes(outcomes) == []
    ids = {o.result[0].pk for o in outcomes}
    assert len(ids) == 1
    assert sorted(o.result[1] for o in outcomes) == [False, True, True, True, True]
    order = OptionOrder.objects.get()
    assert OptionPosition.objects.get(user=user).contracts == 1
    assert usdt_available(client_for(user)) == FUNDS - order.total_usdt
    assert OutboxEvent.objects.filter(topic="options.order").count() == 1


def buy_with_id(user, series):
    return options_order_place(
        user=user, series=series.symbol, side="buy", contracts="1", limit_price_usdt="999999", client_order_id="race-1"
    )


def test_concurrent_buys_respect_the_position_limit(series):
    limit_set("max_series_contracts", 3, target="BTC")
    user = trader()
    outcomes = run_concurrently([lambda: buy(user, series, "1") for _ in range(5)])
    assert codes(outcomes) == ["position_limit", "position_limit"]
    assert OptionPosition.objects.get(user=user).contracts == 3


def test_concurrent_expiry_runs_pay_each_position_once(series):
    users = [trader() for _ in range(4)]
    for user in users:
        buy(user, series, "1.5")
    expiry = series.expiry
    print_index("BTC", series.strike + 2000, ts=expiry - timedelta(minutes=31))
    outcomes = run_concurrently([lambda: options_expire(now=expiry + timedelta(seconds=1)) for _ in range(3)])
    assert codes(outcomes) == []
    assert sum(o.result["exercised"] for o in outcomes) == 4
    assert OptionExercise.objects.count() == 4
    assert Transfer.objects.filter(code="option_exercise").count() == 4
    assert OutboxEvent.objects.filter(topic="options.exercise").count() == 4
    for user in users:
        paid = OptionOrder.objects.get(user=user).total_usdt
        assert usdt_available(client_for(user)) == FUNDS - paid + Decimal(3000)


def test_the_order_the_transfer_and_the_outbox_event_commit_in_one_transaction(series):
    """PostgreSQL stamps each row with the id of the transaction that wrote it (xmin); the
    outbox row records its writer's xid8, whose low 32 bits are that id."""
    user = trader()
    order = buy(user, series, "1")
    event = OutboxEvent.objects.get(key=f"option_order:{order.pk}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM orders_optionorder WHERE id = %s", [order.pk])
        order_xmin = int(cursor.fetchone()[0])
        cursor.execute("SELECT xmin::text FROM trading_outboxevent WHERE id = %s", [event.pk])
        event_xmin = int(cursor.fetchone()[0])
    assert order_xmin == event_xmin == event.txid % 2**32
    # (the ledger legs run in a savepoint, which PostgreSQL numbers as a subtransaction; that
    # they roll back with the order is test_option_orders' failure-after-the-money-moved test)
    # and another order is another transaction
    second = sell(user, series, "1")[0]
    assert OutboxEvent.objects.get(key=f"option_order:{second.pk}").txid > event.txid
