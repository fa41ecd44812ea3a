"""Trading states: the kill switch and reduce-only at platform, symbol and user scope, set by
staff through the API (audited), honoured by order entry, the counter and the engine runner;
exact at the change's commit under concurrency; cancel-all."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from ledger.models import Transfer
from orders.models import OptionOrder, SpotOrder, SpotStatus
from orders.spot.services import order_request, spot_order_place
from risk import core, services
from tests.factories import UserFactory
from tests.orders.conftest import INDEX, client_for, pick_series, print_index, trader
from tests.orders.spot.conftest import funded_trader
from trading.errors import DomainError
from trading.models import AuditRecord

D = Decimal


def post(client, **data):
    data = {"symbol": "BTC-USDT", "type": "limit", "quantity": "0.01", **data}
    return client.post("/api/v1/orders", data, format="json")


def set_state(client, **data):
    return client.post("/api/v1/ops/risk/state", data, format="json")


def code_of(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def ops(db):
    return client_for(UserFactory(is_staff=True))


@pytest.mark.django_db
def test_only_staff_set_states(alice):
    response = set_state(client_for(alice), scope="platform", state="halted", reason="x")
    assert (response.status_code, code_of(response)) == (403, "permission_denied")
    from rest_framework.test import APIClient

    assert set_state(APIClient(), scope="platform", state="halted", reason="x").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, status, code",
    [
        ({"scope": "galaxy", "state": "halted", "reason": "x"}, 400, "validation_error"),
        ({"scope": "platform", "state": "frozen", "reason": "x"}, 400, "validation_error"),
        ({"scope": "platform", "state": "halted"}, 400, "validation_error"),
        ({"scope": "platform", "state": "halted", "reason": "   "}, 400, "validation_error"),
        ({"scope": "platform", "target": "BTC-USDT", "state": "halted", "reason": "x"}, 400, "validation_error"),
        ({"scope": "symbol", "state": "halted", "reason": "x"}, 400, "validation_error"),
        ({"scope": "symbol", "target": "DOGE-USDT", "state": "halted", "reason": "x"}, 404, "not_found"),
        ({"scope": "user", "target": "nobody@example.com", "state": "halted", "reason": "x"}, 404, "not_found"),
    ],
)
def test_bad_state_changes_are_refused_and_write_nothing(ops, markets, data, status, code):
    response = set_state(ops, **data)
    assert (response.status_code, code_of(response)) == (status, code), response.content[:300]
    assert not AuditRecord.objects.filter(action="risk.trading_state").exists()


@pytest.mark.django_db
def test_symbol_halt_then_reduce_only_then_active(ops, alice):
    client = client_for(alice)
    response = set_state(ops, scope="symbol", target="btc-usdt", state="halted", reason="venue incident")
    assert response.status_code == 200, response.content
    assert response.json()["target"] == "BTC-USDT" and response.json()["previous"] == "active"
    record = AuditRecord.objects.get(action="risk.trading_state")
    assert record.data["state"] == "halted" and record.data["reason"] == "venue incident"

    before = SpotOrder.objects.count(), Transfer.objects.count()
    for side in ("buy", "sell"):
        response = post(client, side=side, price="65000.00")
        assert (response.status_code, code_of(response)) == (403, "trading_halted")
        assert "BTC-USDT" in response.json()["error"]["message"]
    assert (SpotOrder.objects.count(), Transfer.objects.count()) == before
    assert post(client, symbol="ETH-USDT", side="buy", price="3400.00", quantity="0.1").status_code == 201
    assert client.get("/api/v1/risk/limits").json()["trading_state"] == "active"  # the account is not halted

    assert set_state(ops, scope="symbol", target="BTC-USDT", state="reduce_only", reason="unwinding").status_code == 200
    response = post(client, side="buy", price="65000.00")
    assert (response.status_code, code_of(response)) == (403, "reduce_only")
    assert post(client, side="sell", price="65000.00").status_code == 201

    assert set_state(ops, scope="symbol", target="BTC-USDT", state="active", reason="resolved").status_code == 200
    assert post(client, side="buy", price="65000.00").status_code == 201
    assert AuditRecord.objects.filter(action="risk.trading_state").count() == 3


@pytest.mark.django_db
def test_a_user_halt_stops_only_that_user(ops, alice, bob):
    assert set_state(ops, scope="user", target=alice.email.upper(), state="halted", reason="review").status_code == 200
    response = post(client_for(alice), side="buy", price="65000.00")
    assert (response.status_code, code_of(response)) == (403, "trading_halted")
    assert "your account" in response.json()["error"]["message"]
    assert client_for(alice).get("/api/v1/risk/limits").json()["trading_state"] == "halted"
    assert post(client_for(bob), side="buy", price="65000.00").status_code == 201


@pytest.mark.django_db
def test_the_counter_honours_states(ops, listed):
    user = trader()
    series = pick_series("BTC", "C")
    client = client_for(user)

    def option(side, **extra):
        data = {"series": series.symbol, "side": side, "contracts": "1", "limit_price_usdt": "999999", **extra}
        if side == "sell":
            data["limit_price_usdt"] = "0.01"
        return client.post("/api/v1/options/orders", data, format="json")

    assert option("buy").status_code == 201
    assert set_state(ops, scope="symbol", target="BTC", state="reduce_only", reason="delta").status_code == 200
    response = option("buy")
    assert (response.status_code, code_of(response)) == (403, "reduce_only")
    quote = client.post(
        "/api/v1/options/quotes", {"series": series.symbol, "side": "buy", "contracts": "1"}, format="json"
    )
    assert (quote.status_code, code_of(quote)) == (403, "reduce_only")
    assert option("sell", contracts="0.5").status_code == 201  # selling to close reduces

    assert set_state(ops, scope="platform", state="halted", reason="incident").status_code == 200
    before = OptionOrder.objects.count(), Transfer.objects.count()
    response = option("sell", contracts="0.5")
    assert (response.status_code, code_of(response)) == (403, "trading_halted")
    assert (OptionOrder.objects.count(), Transfer.objects.count()) == before


@pytest.mark.django_db
def test_cancel_all_with_a_halt_and_the_runner_ends_unmatched_orders(ops, alice, bob, btc_engine):
    resting = [post(client_for(user), side="buy", price="60000.00").json()["id"] for user in (alice, bob)]
    btc_engine.run()
    assert set(SpotOrder.objects.filter(pk__in=resting).values_list("status", flat=True)) == {SpotStatus.OPEN}
    waiting = post(client_for(alice), side="sell", price="70000.00").json()["id"]  # not yet taken by the runner

    response = set_state(ops, scope="symbol", target="BTC", state="halted", reason="halt", cancel_open_orders=True)
    assert response.status_code == 200 and response.json()["cancelled_orders"] == 3
    btc_engine.run()
    statuses = dict(SpotOrder.objects.filter(pk__in=[*resting, waiting]).values_list("id", "status"))
    assert set(statuses.values()) == {SpotStatus.CANCELLED}
    for user in (alice, bob):
        assert client_for(user).get("/api/v1/balances").json()[0]["held"] in ("0", "0.000000")


@pytest.mark.django_db
def test_the_runner_rejects_what_it_had_not_matched_when_a_halt_lands(ops, alice, btc_engine):
    order_id = post(client_for(alice), side="buy", price="65000.00").json()["id"]
    services.trading_state_set(scope="symbol", target="BTC-USDT", state="halted", reason="x", actor=None)
    btc_engine.run()
    order = SpotOrder.objects.get(pk=order_id)
    assert (order.status, order.reject_reason) == (SpotStatus.REJECTED, "trading_halted")
    held = next(row for row in client_for(alice).get("/api/v1/balances").json() if row["asset"] == "USDT")["held"]
    assert D(held) == 0


# --- exact at the commit --------------------------------------------------------------------------


def _thread(target):
    outcome = {}

    def run():
        try:
            outcome["result"] = target()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture
def spot_markets(transactional_db):
    from marketdata.services import instruments_sync

    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


@pytest.mark.django_db(transaction=True)
def test_a_state_change_waits_for_orders_in_flight_and_later_orders_see_it(spot_markets):
    user = funded_trader()
    in_flight, release = threading.Event(), threading.Event()

    def entry_in_flight():
        with transaction.atomic():
            services.state_admit(symbols=("BTC-USDT", "BTC"), user_id=user.pk, reduces=False)
            in_flight.set()
            release.wait(10)
        return "committed"

    entry, entry_outcome = _thread(entry_in_flight)
    assert in_flight.wait(10)
    halt, halt_outcome = _thread(
        lambda: services.trading_state_set(scope="platform", state="halted", reason="x", actor=None)
    )
    halt.join(0.5)
    assert halt.is_alive(), "the halt committed while an order that read 'active' was still open"
    release.set()
    entry.join(10)
    halt.join(10)
    assert entry_outcome == {"result": "committed"} and "error" not in halt_outcome
    with pytest.raises(DomainError) as refused:
        services.state_admit(symbols=("BTC-USDT", "BTC"), user_id=user.pk, reduces=False)
    assert refused.value.code == "trading_halted"


@pytest.mark.django_db(transaction=True)
def test_a_halt_during_a_burst_of_fifty_orders(spot_markets):
    users = [funded_trader() for _ in range(10)]
    start = threading.Barrier(51)
    results = [None] * 50
    halted_at = {}

    def place(n):
        start.wait(10)
        time.sleep(0.01 * n)  # spread over half a second, across the halt
        began = time.monotonic()
        try:
            request = order_request(symbol="BTC-USDT", side="buy", type="limit", quantity="0.01", price="65000.00")
            order, _ = spot_order_place(user=users[n % 10], request=request)
            results[n] = ("accepted", began, time.monotonic(), order.pk)
        except DomainError as exc:
            results[n] = (exc.code, began, time.monotonic(), None)
        finally:
            connection.close()

    threads = [threading.Thread(target=place, args=(n,), daemon=True) for n in range(50)]
    for thread in threads:
        thread.start()
    start.wait(10)
    time.sleep(0.2)
    services.trading_state_set(scope="symbol", target="BTC-USDT", state="halted", reason="burst", actor=None)
    halted_at["t"] = time.monotonic()
    connection.close()
    for thread in threads:
        thread.join(30)
    assert all(result is not None for result in results), results
    codes = {result[0] for result in results}
    assert codes <= {"accepted", "trading_halted"}, codes
    # no order that began after the halt's commit was accepted
    late = [r for r in results if r[1] > halted_at["t"]]
    assert late and all(r[0] == "trading_halted" for r in late)
    accepted = [r[3] for r in results if r[0] == "accepted"]
    assert SpotOrder.objects.filter(symbol="BTC-USDT").count() == len(accepted)
    assert 0 < len(accepted) < 50


@pytest.mark.django_db(transaction=True)
def test_the_order_rate_under_parallel_requests(spot_markets):
    from tests.risk.helpers import limit_set

    user = funded_trader()
    limit_set("order_rate", "5", user=user)
    limit_set("order_burst", "10", user=user)
    other = funded_trader()  # its own budget
    start = threading.Barrier(30)
    results = []
    lock = threading.Lock()

    def place():
        start.wait(10)
        client = client_for(user)
        response = post(client, side="buy", price="60000.00")
        with lock:
            results.append((response.status_code, response.json(), response.headers.get("Retry-After")))
        connection.close()

    began = time.monotonic()
    threads = [threading.Thread(target=place, daemon=True) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.monotonic() - began
    accepted = [r for r in results if r[0] == 201]
    limited = [r for r in results if r[0] == 429]
    assert len(accepted) + len(limited) == 30
    # the burst, plus what the rate refilled while the requests ran
    assert 10 <= len(accepted) <= 10 + int(5 * elapsed) + 1, (len(accepted), elapsed)
    for _, body, retry_after in limited:
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["fields"]["limit"] == ["order_rate"]
        assert retry_after and int(retry_after) >= 1
    assert SpotOrder.objects.filter(user=user).count() == len(accepted)
    assert post(client_for(other), side="buy", price="60000.00").status_code == 201
    assert core.LIMITS["order_rate"].code == "rate_limited"
