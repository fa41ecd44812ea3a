"""Daily snapshots (portfolio/snapshots.py): every trader's value at each UTC close and the
day's deposits minus withdrawals, written set-based for all traders, idempotent, backfilled
from the ledger; checked against balances summed transfer by transfer and the index of each
close. The same file (with the performance API and a past statement) runs on SQLite, the
embedded mode's database, from the last test."""

from __future__ import annotations

import os
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketdata.models import Instrument
from orders.options.models import OptionOrder
from portfolio import snapshots
from portfolio.models import DailySnapshot
from tests.portfolio.report_helpers import (
    balance_at,
    candle,
    closes,
    days_from,
    deposit,
    moment,
    redate,
    trader,
    withdraw,
)

pytestmark = pytest.mark.django_db
SQLITE = bool(os.environ.get("SQLITE_ONLY"))
D = Decimal


def today():
    return timezone.now().date()


def rows_of(user) -> dict:
    return {s.date: (s.value_usdt, s.net_flows_usdt) for s in DailySnapshot.objects.filter(user=user).order_by("date")}


@pytest.fixture
def week():
    """Seven closed days ending a week ago, with BTC and ETH closes on each."""
    days = days_from(today() - timedelta(days=14), 7)
    closes("BTC", {d: 60000 + 1000 * n for n, d in enumerate(days)})
    closes("ETH", {d: D("3000.5") + 10 * n for n, d in enumerate(days)})
    return days


def test_each_day_is_the_closing_balances_at_the_closing_prices(week):
    alice, bob = trader(), trader()
    d0, d1, d2, d3 = week[:4]
    deposit(alice, "USDT", "10000", moment(d0, 9))
    candle("BTC", moment(d1, 10), "61234.5")
    deposit(alice, "BTC", "0.5", moment(d1, 10, 0, 30))  # valued at the index then: that candle's close
    withdraw(alice, "USDT", "2500", moment(d2, 15))
    deposit(bob, "ETH", "2", moment(d1, 23, 59, 59))  # in d1, a second before its close
    deposit(bob, "USDT", "100", moment(d3, 0, 0, 0))  # at d3's first instant: not d2's

    run = snapshots.snapshots_write(days=week)
    assert run.written == 2 * 7 - 1  # bob from d1 on (his accounts are that old)
    assert run.skipped == {}

    for user in (alice, bob):
        for day, (value, flows) in rows_of(user).items():
            close = snapshots.day_end(day)
            btc = D(60000 + 1000 * week.index(day))
            eth = D("3000.5") + 10 * week.index(day)
            expected = balance_at(user, "USDT", close)
            expected += balance_at(user, "BTC", close) * btc + balance_at(user, "ETH", close) * eth
            assert value == expected, (user, day)
            assert flows == {
                (alice.pk, d0): D("10000"),
                (alice.pk, d1): D("0.5") * D("61234.5"),
                (alice.pk, d2): D("-2500"),  # the fee (1 USDT) is a cost, not a flow
                (bob.pk, d1): 2 * (D("3000.5") + 10),  # its minute's candle: d1's close
                (bob.pk, d3): D("100"),
            }.get((user.pk, day), D(0)), (user, day)
    assert rows_of(alice)[d2] == (D("7499") + D("0.5") * 62000, D("-2500"))
    assert d0 not in rows_of(bob)


def test_runs_again_write_nothing_and_change_nothing(week):
    alice = trader()
    deposit(alice, "USDT", "500", moment(week[0]))
    first = snapshots.snapshots_write(days=week)
    before = rows_of(alice)
    deposit(alice, "USDT", "700", moment(week[3]))  # a late correction does not rewrite days
    again = snapshots.snapshots_write(days=week)
    assert (first.written, again.written) == (7, 0)
    assert rows_of(alice) == before


def test_one_day_at_a_time_writes_what_a_backfill_writes(week):
    """The nightly run (one day, the transfers since its close) and a backfill (a range, one
    running total over the transfers since the first close) give the same rows."""
    alice, bob = trader(), trader()
    deposit(alice, "USDT", "1000", moment(week[0]))
    deposit(alice, "BTC", "0.25", moment(week[1], 8))
    deposit(bob, "ETH", "3", moment(week[2], 1))
    withdraw(alice, "BTC", "0.1", moment(week[4], 20))
    deposit(bob, "USDT", "50", moment(week[6], 23, 30))
    deposit(bob, "USDT", "75", timezone.now() - timedelta(hours=1))  # after the whole range
    snapshots.snapshots_write(days=week)
    backfilled = {user.pk: rows_of(user) for user in (alice, bob)}
    DailySnapshot.objects.all().delete()
    for day in week:
        snapshots.snapshots_write(days=[day])
    assert {user.pk: rows_of(user) for user in (alice, bob)} == backfilled
    assert backfilled[bob.pk][week[6]][0] == 50 + 3 * (D("3000.5") + 60)


def test_a_day_without_a_price_is_left_out_and_said(week):
    alice = trader()
    deposit(alice, "USDT", "10", moment(week[0]))
    earlier = week[0] - timedelta(days=3)  # before any BTC or ETH candle
    run = snapshots.snapshots_write(days=[earlier, *week])
    assert run.skipped == {earlier: ["BTC", "ETH"]}
    assert earlier not in rows_of(alice)


def test_a_day_that_has_not_ended_is_refused():
    with pytest.raises(snapshots.ValidationFailed):
        snapshots.snapshots_write(days=[today()])


def test_the_first_run_backfills_from_the_first_transfer_then_only_new_days(week):
    alice = trader()
    deposit(alice, "USDT", "10", moment(week[2]))
    now = snapshots.day_end(week[-1]) + timedelta(minutes=1)
    assert snapshots.days_due(now=now) == week[2:]
    snapshots.snapshots_write(days=snapshots.days_due(now=now))
    assert sorted(rows_of(alice)) == week[2:]
    later = now + timedelta(days=2)
    assert snapshots.days_due(now=later) == [week[-1] + timedelta(days=1), week[-1] + timedelta(days=2)]


def test_open_options_count_at_their_mark_at_the_close(week):
    from marketdata.services import instruments_sync
    from tests.orders.conftest import INDEX, client_for, print_index

    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)
    alice = trader()
    deposit(alice, "USDT", "50000", moment(week[0]))
    day = today() - timedelta(days=1)
    closes("BTC", {day: 64000})
    closes("ETH", {day: 3300})
    live = Instrument.objects.filter(kind="option", base="BTC", option_type="C")
    series = live.filter(expiry__gt=timezone.now() + timedelta(days=3)).order_by("expiry", "strike").first()
    response = client_for(alice).post(
        "/api/v1/options/orders",
        {"series": series.symbol, "side": "buy", "contracts": "0.5", "limit_price_usdt": "100000"},
        format="json",
    )
    assert response.status_code == 201, response.content
    order = OptionOrder.objects.get(user=alice)
    bought = moment(day, 10)
    OptionOrder.objects.filter(pk=order.pk).update(created_at=bought)
    redate([order.transfer_id], bought)

    snapshots.snapshots_write(days=[day])
    close = snapshots.day_end(day)
    mark = snapshots.series_price(instrument=series, now=close, index=D(64000)).mark_usdt
    value, flows = rows_of(alice)[day]
    assert balance_at(alice, "USDT", close) == D(50000) - order.total_usdt
    assert value == D(50000) - order.total_usdt + D("0.5") * mark
    assert flows == 0


def test_the_command_reports_progress_and_refuses_an_open_day(week):
    alice = trader()
    deposit(alice, "USDT", "10", moment(week[0]))
    out = StringIO()
    call_command("portfolio_snapshots", "--date", week[1].isoformat(), stdout=out)
    assert f"{week[1]} .. {week[1]}: 1 days, 1 snapshots written" in out.getvalue()
    out = StringIO()
    call_command("portfolio_snapshots", "--backfill", stdout=out)
    text = out.getvalue()
    assert f"from {week[0]}" in text and "snapshots written" in text
    assert week[0] in rows_of(alice) and week[6] in rows_of(alice)
    with pytest.raises(CommandError, match="has not ended"):
        call_command("portfolio_snapshots", "--date", today().isoformat(), stdout=StringIO())
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("portfolio_snapshots", "--date", "yesterday", stdout=StringIO())


def test_the_midnight_task_is_scheduled_and_writes_yesterday(week, eager_tasks):
    from trading.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["portfolio-daily-snapshots"]
    assert entry["task"] == "portfolio.tasks.daily_snapshots"
    schedule = entry["schedule"]
    assert (schedule.hour, schedule.minute) == ({0}, {0})
    alice = trader()
    deposit(alice, "USDT", "10", moment(today() - timedelta(days=1)))
    closes("BTC", {today() - timedelta(days=1): 60000})
    closes("ETH", {today() - timedelta(days=1): 3000})
    result = app.tasks["portfolio.tasks.daily_snapshots"].apply_async().get()
    assert result["written"] >= 1
    assert rows_of(alice)[today() - timedelta(days=1)] == (D(10), D(10))


def test_the_embedded_mode_catches_up_as_it_starts(week):
    from trading import workers

    alice = trader()
    deposit(alice, "USDT", "10", moment(week[0]))
    workers._registry["portfolio-snapshots"]()  # what the embedded web process starts
    # every day from her first to yesterday (the days after the candles at their last price)
    yesterday = today() - timedelta(days=1)
    assert sorted(rows_of(alice)) == days_from(week[0], (yesterday - week[0]).days + 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not SQLITE, reason="converts an embedded database made before the exact columns")
def test_an_older_embedded_database_keeps_its_snapshots_exact():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    alice = trader()
    executor = MigrationExecutor(connection)
    executor.migrate([("portfolio", "0001_initial")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO portfolio_dailysnapshot (user_id, date, value_usdt, net_flows_usdt, created_at) "
            "VALUES (%s, '2026-01-01', 1234.56789012, -0.30000000000000004, '2026-01-02')",
            [alice.pk],
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert rows_of(alice) == {date(2026, 1, 1): (D("1234.56789012"), D("-0.3"))}


@pytest.mark.slow
@pytest.mark.skipif(SQLITE, reason="this is the SQLite run")
def test_the_same_tests_pass_on_sqlite(tmp_path):
    from tests.processes import pytest_on_sqlite

    here = os.path.dirname(__file__)
    pytest_on_sqlite(
        tmp_path,
        __file__,
        os.path.join(here, "test_performance_api.py"),
        os.path.join(here, "test_statements.py") + "::test_a_past_period_closes_at_the_ledger_then",
        "-k",
        "not sqlite",
        timeout=600,
    )
