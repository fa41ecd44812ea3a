"""Expiry: at the 30-minute index TWAP, in-the-money long positions are exercised and paid
their intrinsic value in USDT from OPTION_CLEARING, the rest expire; once per position, however
often the run repeats; refused (and retried) while no TWAP exists."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from celery.exceptions import Retry
from celery.schedules import crontab
from django.utils import timezone

from ledger.models import Transfer
from marketdata.models import IndexPrint, Instrument
from marketdata.selectors import index_twap
from orders.models import OptionExercise, OptionPosition
from orders.options.services import SettlementPriceUnavailable, options_expire, options_order_place
from trading.errors import Conflict
from trading.models import OutboxEvent

from ..conftest import FUNDS, clearing_usdt, client_for, pick_series, print_index, trader, usdt_available

pytestmark = pytest.mark.django_db


def buy(user, series, contracts="1"):
    return options_order_place(
        user=user, series=series.symbol, side="buy", contracts=contracts, limit_price_usdt="999999"
    )[0]


def settle_at(underlying: str, expiry, price: Decimal) -> None:
    """A flat index over the whole TWAP window before ``expiry``."""
    print_index(underlying, price, ts=expiry - timedelta(minutes=31))


@pytest.fixture
def book(listed):
    """Two traders: A holds 2 calls and 1 put, B holds 0.5 calls of the same expiry."""
    call = pick_series("BTC", "C")
    put = pick_series("BTC", "P", offset=-1)
    assert call.expiry == put.expiry
    a, b = trader(), trader()
    paid = {
        "a_call": buy(a, call, "2").total_usdt,
        "a_put": buy(a, put, "1").total_usdt,
        "b_call": buy(b, call, "0.5").total_usdt,
    }
    return {"call": call, "put": put, "a": a, "b": b, "paid": paid, "expiry": call.expiry}


def test_in_the_money_positions_are_paid_and_the_rest_expire(book):
    call, put, expiry = book["call"], book["put"], book["expiry"]
    settlement = (call.strike + Decimal("1234.56")).normalize()
    assert settlement > put.strike  # the put ends out of the money
    settle_at("BTC", expiry, settlement)
    clearing_before = clearing_usdt()

    summary = options_expire(now=expiry + timedelta(seconds=5))

    intrinsic = settlement - call.strike
    payout_a, payout_b = intrinsic * 2, intrinsic * Decimal("0.5")
    assert (summary["exercised"], summary["expired"], summary["payout_usdt"]) == (2, 1, payout_a + payout_b)
    assert summary["expiries"] == [
        {
            "underlying": "BTC",
            "expiry": expiry.isoformat().replace("+00:00", "Z"),
            "settlement_price": f"{settlement:f}",
        }
    ]

    a_call = OptionExercise.objects.get(user=book["a"], series=call.symbol)
    assert (a_call.outcome, a_call.contracts, a_call.settlement_price, a_call.intrinsic_usdt, a_call.payout_usdt) == (
        "exercised",
        Decimal(2),
        settlement,
        intrinsic,
        payout_a,
    )
    assert a_call.realized_pnl_usdt == payout_a - book["paid"]["a_call"] and a_call.settlement_state == "pending"
    a_put = OptionExercise.objects.get(user=book["a"], series=put.symbol)
    assert (a_put.outcome, a_put.payout_usdt, a_put.settlement_state) == ("expired", 0, "settled")
    assert a_put.realized_pnl_usdt == -book["paid"]["a_put"]

    # positions are closed out with their result
    statuses = dict(OptionPosition.objects.filter(user=book["a"]).values_list("series", "status"))
    assert statuses == {call.symbol: "exercised", put.symbol: "expired"}
    assert not OptionPosition.objects.filter(status="open").exists()
    position = OptionPosition.objects.get(user=book["a"], series=call.symbol)
    assert (position.contracts, position.cost_usdt, position.realized_pnl_usdt) == (
        0,
        0,
        payout_a - book["paid"]["a_call"],
    )

    # USDT paid from OPTION_CLEARING, the balances API agrees
    a_api, b_api = client_for(book["a"]), client_for(book["b"])
    assert usdt_available(a_api) == FUNDS - book["paid"]["a_call"] - book["paid"]["a_put"] + payout_a
    assert usdt_available(b_api) == FUNDS - book["paid"]["b_call"] + payout_b
    assert clearing_usdt() == clearing_before - payout_a - payout_b
    transfer = Transfer.objects.get(id=f"optex:{position.pk}:{expiry:%Y%m%d}")
    assert (transfer.amount, transfer.code, transfer.reference) == (
        payout_a,
        "option_exercise",
        f"option_exercise:{a_call.pk}",
    )
    assert Transfer.objects.filter(code="option_exercise").count() == 2  # nothing for the worthless put

    # one outbox event per exercise, none for the expired put
    events = {e.key: e.payload for e in OutboxEvent.objects.filter(topic="options.exercise")}
    assert set(events) == {f"option_exercise:{e.pk}" for e in OptionExercise.objects.filter(outcome="exercised")}
    payload = dict(events[f"option_exercise:{a_call.pk}"])
    assert payload.pop("created_at").endswith("Z")
    assert payload == {
        "ref": f"option_exercise:{a_call.pk}",
        "kind": "exercise",
        "order_id": None,
        "exercise_id": a_call.pk,
        "position_id": position.pk,
        "user_id": book["a"].pk,
        "series": call.symbol,
        "underlying": "BTC",
        "contracts": "2.00",
        "usdt": f"{payout_a:.6f}",
        "underlying_qty": f"{(payout_a / settlement).quantize(Decimal('0.00000001'), rounding='ROUND_DOWN'):.8f}",
        "index_price": f"{settlement:f}",
        "settlement_price": f"{settlement:f}",
    }

    # the trader sees it through the API
    exercises = a_api.get("/api/v1/options/exercises").json()
    assert exercises["count"] == 2
    by_series = {row["series"]: row for row in exercises["results"]}
    assert (
        by_series[call.symbol]["payout_usdt"] == f"{payout_a:.6f}"
        and by_series[call.symbol]["settlement_state"] == "pending"
    )
    assert by_series[put.symbol]["outcome"] == "expired"
    assert a_api.get("/api/v1/options/positions").json() == []
    closed = {row["series"]: row for row in a_api.get("/api/v1/options/positions", {"status": "closed"}).json()}
    assert closed[call.symbol]["status"] == "exercised"


def test_running_twice_pays_once(book):
    call, expiry = book["call"], book["expiry"]
    settle_at("BTC", expiry, call.strike + 500)
    first = options_expire(now=expiry + timedelta(minutes=1))
    transfers, events, balance = (
        Transfer.objects.count(),
        OutboxEvent.objects.count(),
        usdt_available(client_for(book["a"])),
    )
    second = options_expire(now=expiry + timedelta(minutes=2))
    third = options_expire(expiry=expiry, now=expiry + timedelta(hours=3))
    assert first["exercised"] == 2 and first["expired"] == 1
    assert (second["exercised"], second["expired"], second["payout_usdt"]) == (0, 0, 0)
    assert (third["exercised"], third["expired"]) == (0, 0)
    assert (Transfer.objects.count(), OutboxEvent.objects.count()) == (transfers, events)
    assert usdt_available(client_for(book["a"])) == balance
    assert OptionExercise.objects.count() == 3


def test_the_settlement_price_is_the_twap_not_the_last_print(book):
    call, expiry = book["call"], book["expiry"]
    low, high = call.strike + 100, call.strike + 900
    print_index("BTC", low, ts=expiry - timedelta(minutes=40))
    print_index("BTC", high, ts=expiry - timedelta(minutes=15))  # half the window at each price
    print_index("BTC", call.strike - 5000, ts=expiry + timedelta(seconds=1))  # after expiry: not counted
    options_expire(now=expiry + timedelta(minutes=1))
    twap = (low + high) / 2
    assert index_twap(underlying="BTC", end=expiry) == twap
    exercise = OptionExercise.objects.get(user=book["b"])
    assert exercise.settlement_price == twap and exercise.payout_usdt == (twap - call.strike) * Decimal("0.5")


def test_partly_closed_and_closed_positions(book):
    call, expiry = book["call"], book["expiry"]
    options_order_place(user=book["a"], series=call.symbol, side="sell", contracts="1.5", limit_price_usdt="0.01")
    options_order_place(user=book["b"], series=call.symbol, side="sell", contracts="0.5", limit_price_usdt="0.01")
    settle_at("BTC", expiry, call.strike + 1000)
    summary = options_expire(now=expiry + timedelta(seconds=1))
    assert (summary["exercised"], summary["expired"]) == (1, 1)
    assert OptionExercise.objects.get(user=book["a"], series=call.symbol).payout_usdt == Decimal(500)  # 0.5 x 1000
    assert not OptionExercise.objects.filter(user=book["b"]).exists()
    assert OptionPosition.objects.get(user=book["b"]).status == "closed"


def test_puts_pay_strike_minus_settlement(listed):
    put = pick_series("ETH", "P", offset=2)
    user = trader()
    paid = buy(user, put, "3").total_usdt
    settle_at("ETH", put.expiry, put.strike - Decimal("42.5"))
    options_expire(now=put.expiry + timedelta(seconds=1))
    exercise = OptionExercise.objects.get(user=user)
    assert (exercise.outcome, exercise.payout_usdt) == ("exercised", Decimal("127.5"))
    assert usdt_available(client_for(user)) == FUNDS - paid + Decimal("127.5")


def test_at_the_strike_a_call_expires_worthless(book):
    settle_at("BTC", book["expiry"], book["call"].strike)
    summary = options_expire(now=book["expiry"] + timedelta(seconds=1))
    assert summary["exercised"] == 0 and summary["payout_usdt"] == 0
    assert not Transfer.objects.filter(code="option_exercise").exists()
    assert not OutboxEvent.objects.filter(topic="options.exercise").exists()


def test_no_twap_refuses_that_expiry_and_settles_the_others(book):
    eth_call = pick_series("ETH", "C")
    eth_user = trader()
    buy(eth_user, eth_call)
    IndexPrint.objects.filter(underlying="BTC").delete()  # no BTC index at all up to expiry
    settle_at("ETH", eth_call.expiry, eth_call.strike + 10)
    later = max(book["expiry"], eth_call.expiry) + timedelta(seconds=1)
    with pytest.raises(SettlementPriceUnavailable) as refused:
        options_expire(now=later)
    assert refused.value.code == "settlement_price_unavailable" and refused.value.status == 503
    assert "BTC" in refused.value.message
    assert OptionPosition.objects.filter(underlying="BTC", status="open").count() == 3
    assert not OptionExercise.objects.filter(underlying="BTC").exists()
    assert OptionExercise.objects.get(user=eth_user).payout_usdt == 10
    # the retry, once the prints exist
    settle_at("BTC", book["expiry"], book["call"].strike + 1)
    summary = options_expire(now=later)
    assert (summary["exercised"], summary["expired"]) == (2, 1)
    assert OptionExercise.objects.count() == 4


def test_only_due_expiries_are_settled(book):
    expiry = book["expiry"]
    settle_at("BTC", expiry, book["call"].strike + 1000)
    assert options_expire(now=expiry - timedelta(seconds=1))["exercised"] == 0  # not yet
    with pytest.raises(Conflict) as early:
        options_expire(expiry=expiry, now=expiry - timedelta(seconds=1))
    assert early.value.code == "not_expired"
    other = expiry + timedelta(days=1)
    assert options_expire(expiry=other, now=other + timedelta(hours=1))["exercised"] == 0  # another expiry only
    assert OptionPosition.objects.filter(status="open").count() == 3
    assert options_expire(expiry=expiry, now=expiry)["exercised"] == 2


def test_an_expired_position_cannot_be_traded_or_reopened(book):
    call, expiry = book["call"], book["expiry"]
    settle_at("BTC", expiry, call.strike + 1)
    options_expire(now=expiry + timedelta(seconds=1))
    client = client_for(book["a"])
    # the series is still live in real time, but the position is settled: nothing to add to or sell
    for side, limit, code in (("buy", "99999", "series_expired"), ("sell", "0.01", "insufficient_position")):
        response = client.post(
            "/api/v1/options/orders",
            {"series": call.symbol, "side": side, "contracts": "1", "limit_price_usdt": limit},
            format="json",
        )
        assert response.status_code == 409 and response.json()["error"]["code"] == code, response.content
    assert OptionPosition.objects.get(user=book["a"], series=call.symbol).status == "exercised"


# --- the Celery task and its schedule ------------------------------------------------------------------


def _expire_now(book):
    """Move the book's expiry into the past (as if the clock had run on)."""
    expiry = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    Instrument.objects.filter(expiry=book["expiry"]).update(expiry=expiry)
    return expiry


def test_the_task_settles_and_returns_a_json_safe_summary(book):
    from orders.tasks import options_expire as task

    expiry = _expire_now(book)
    settle_at("BTC", expiry, book["call"].strike + 1000)
    result = task.apply(kwargs={"expiry": expiry.isoformat()})
    assert result.successful(), result.traceback
    summary = result.get()
    json.dumps(summary)
    assert (summary["exercised"], summary["expired"], summary["payout_usdt"]) == (2, 1, "2500.000000")
    assert task.apply().get()["exercised"] == 0  # the beat's call, without arguments: nothing left


def test_the_task_retries_while_no_twap_exists(book):
    from orders.tasks import options_expire as task

    _expire_now(book)
    IndexPrint.objects.filter(underlying="BTC").delete()
    with mock.patch.object(task, "retry", side_effect=Retry("later")) as retry, pytest.raises(Retry):
        task.run()
    assert retry.call_args.kwargs["countdown"] == 60
    assert isinstance(retry.call_args.kwargs["exc"], SettlementPriceUnavailable)
    assert OptionPosition.objects.filter(status="open").count() == 3
    # run eagerly (the embedded mode), it fails at once instead of re-running in a loop
    with mock.patch.object(task, "retry") as eager_retry:
        result = task.apply()
    assert result.failed() and isinstance(result.result, SettlementPriceUnavailable)
    eager_retry.assert_not_called()
    assert OptionPosition.objects.filter(status="open").count() == 3


def test_beat_runs_the_expiry_at_0800_utc(settings):
    import orders.tasks  # noqa: F401 - registers the task
    from trading.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["options-expire"]
    assert entry["task"] == "orders.tasks.options_expire" and entry["task"] in app.tasks
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    assert schedule.hour == {8} and schedule.minute == {0} and schedule.day_of_week == set(range(7))
    assert settings.CELERY_TIMEZONE == "UTC"
    task = app.tasks["orders.tasks.options_expire"]
    assert task.time_limit and task.max_retries
    purge = settings.CELERY_BEAT_SCHEDULE["options-quotes-purge"]
    assert purge["task"] == "orders.tasks.option_quotes_purge" and purge["task"] in app.tasks
    assert purge["schedule"].hour == set(range(24))
