"""Portfolio digests (portfolio/digests.py): each trader's daily and weekly summary, told once
per period, its figures the same as the portfolio API's for that period, read set-based for
all traders at once."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.models import LedgerAccount, Transfer
from marketdata.models import Candle, IndexPrint
from marketdata.services import instruments_sync
from notifications.models import Delivery, Notification
from orders.models import OptionExercise, OptionOrder, RfqQuote, SpotOrder, SpotTrade, VenueOrder
from portfolio import digests, statements
from portfolio.models import DailySnapshot
from tests.orders.conftest import INDEX, print_index
from tests.orders.spot.conftest import client_for
from tests.portfolio import trading_world
from tests.portfolio.report_helpers import closes, deposit, moment, trader

D = Decimal
SQLITE = bool(os.environ.get("SQLITE_ONLY"))


def shift_back(delta: timedelta) -> None:
    """Everything the test made happened ``delta`` earlier (so today's trading is a closed day)."""
    for model, fields in (
        (Transfer, ["created_at"]),
        (LedgerAccount, ["created_at"]),
        (SpotTrade, ["created_at"]),
        (SpotOrder, ["created_at"]),
        (OptionOrder, ["created_at"]),
        (OptionExercise, ["created_at"]),
        (VenueOrder, ["created_at", "closed_at"]),
        (RfqQuote, ["created_at"]),
        (IndexPrint, ["ts"]),
        (Candle, ["open_time"]),
    ):
        model.objects.update(**{field: F(field) - delta for field in fields})
    cache.clear()  # the replayed books were cached with the old times


def usdt(text) -> Decimal:
    return D(str(text))


@pytest.fixture
def markets(db):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


@pytest.fixture
def traded_yesterday(settings, markets, eager_tasks):
    """The statement tests' history (fills as maker and taker, a smart order partly at a
    venue, an RFQ block, a withdrawal, an option bought and partly sold), moved back to the
    last Sunday (the last day of the last whole week), with the index at its close and at
    the close of the day before."""
    built = trading_world.build(settings)
    back = timezone.now().date().isoweekday()
    shift_back(timedelta(days=back))
    day = timezone.now().date() - timedelta(days=back)
    closes("BTC", {day - timedelta(days=1): 64000, day: 66000})
    closes("ETH", {day - timedelta(days=1): 3100, day: 3200})
    return {**built, "day": day}


def told(user, kind="digest"):
    return list(Notification.objects.filter(user=user, kind=kind).order_by("id"))


@pytest.mark.django_db(transaction=True)
def test_the_daily_digest_reconciles_with_the_portfolio_api(traded_yesterday):
    day, bob, alice = traded_yesterday["day"], traded_yesterday["bob"], traded_yesterday["alice"]
    run = digests.digests_send(kind="daily", day=day)
    assert run.period.dedupe_key == f"digest:daily:{day.isoformat()}"
    assert run.traders == 2 and run.told == 2  # alice and bob; the market maker is not told
    assert told(traded_yesterday["maker"]) == []

    start, end = moment(day, 0), moment(day + timedelta(days=1), 0)
    for user in (alice, bob):
        (note,) = told(user)
        data = note.data
        assert note.dedupe_key == f"digest:daily:{day.isoformat()}"
        assert note.title == f"Your daily portfolio summary: {day:%a %d %b %Y}"
        client = client_for(user)
        # value at the end: the performance curve's point for the day (none at its start: new traders)
        points = client.get("/api/v1/portfolio/performance", {"period": "7d"}).json()["points"]
        by_date = {p["date"]: p for p in points}
        assert usdt(data["end_value_usdt"]) == usdt(by_date[day.isoformat()]["value_usdt"])
        assert usdt(data["net_flows_usdt"]) == usdt(by_date[day.isoformat()]["net_flows_usdt"])
        opening = by_date.get((day - timedelta(days=1)).isoformat(), {"value_usdt": "0"})["value_usdt"]
        assert usdt(data["start_value_usdt"]) == usdt(opening)
        # realized: the PnL endpoint's for the same period
        pnl = client.get(
            "/api/v1/portfolio/pnl",
            {"start": start.isoformat().replace("+00:00", "Z"), "end": end.isoformat().replace("+00:00", "Z")},
        )
        assert pnl.status_code == 200, pnl.content
        assert usdt(data["realized_pnl_usdt"]) == usdt(pnl.json()["total_usdt"])
        # the period's PnL splits into realized and unrealized
        change = usdt(data["end_value_usdt"]) - usdt(data["start_value_usdt"])
        assert usdt(data["change_usdt"]) == change
        assert usdt(data["pnl_usdt"]) == change - usdt(data["net_flows_usdt"])
        # unrealized: the statement's at the end less the statement's at the start
        at_end = statements.statement_of(user=user, start=start, end=end).unrealized_pnl_usdt
        at_start = statements.statement_of(user=user, start=start - timedelta(days=1), end=start).unrealized_pnl_usdt
        assert usdt(data["unrealized_pnl_usdt"]) == at_end - at_start
        # fills and volume: the statement's trades of the period
        statement = statements.statement_of(user=user, start=start, end=end)
        assert data["fills"] == len(statement.trades) > 0
        # each trade's USDT side before fees
        volume = sum(t.sent_amount if t.kind == "buy" else t.received_amount for t in statement.trades)
        assert usdt(data["volume_usdt"]) == volume
        # the text says the same figures to the cent
        traded = usdt(data["volume_usdt"]).quantize(D("0.01"))
        assert f"Trading: {data['fills']} fills, {traded} USDT traded." in note.body.splitlines()
    # bob sold on the book and closed part of his option: something was realized
    assert told(bob)[0].data["realized_pnl_usdt"] != "0.000000"
    # email is on by default for the digest
    assert Delivery.objects.filter(notification__user=bob, notification__kind="digest", channel="email").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_rerun_tells_nobody_again_and_the_week_is_its_own(traded_yesterday):
    day, bob = traded_yesterday["day"], traded_yesterday["bob"]
    first = digests.digests_send(kind="daily", day=day)
    again = digests.digests_send(kind="daily", day=day)
    assert (first.told, again.told, again.traders) == (2, 0, 2)
    assert len(told(bob)) == 1
    assert (
        Delivery.objects.filter(notification__user=bob, notification__kind="digest").count() == 1
    )  # the email went once

    week = digests.digests_send(kind="weekly")  # the last whole week: the one ending that Sunday
    year, number, _ = day.isocalendar()
    assert week.period.label == f"{year}-W{number:02d}" and week.period.last == day
    assert week.period.first.isoweekday() == 1 and (week.period.last - week.period.first).days == 6
    assert week.told == 2
    daily, weekly = told(bob)
    assert [daily.dedupe_key, weekly.dedupe_key] == [
        f"digest:daily:{day.isoformat()}",
        f"digest:weekly:{year}-W{number:02d}",
    ]
    # everything happened on the week's last day: the week says what the day said
    same = ("end_value_usdt", "net_flows_usdt", "realized_pnl_usdt", "fills", "volume_usdt", "pnl_usdt")
    assert {k: weekly.data[k] for k in same} == {k: daily.data[k] for k in same}
    assert digests.digests_send(kind="weekly", day=day - timedelta(days=3)).told == 0  # the same week again


@pytest.fixture
def clock_week(db):
    """A trader who deposited two weeks ago and did nothing since; one with nothing at all."""
    today = timezone.now().date()
    keeper, empty = trader(), trader()
    long_ago = today - timedelta(days=15)
    for n in range(17):
        closes("BTC", {long_ago + timedelta(days=n - 1): 60000 + n})
        closes("ETH", {long_ago + timedelta(days=n - 1): 3000 + n})
    deposit(keeper, "BTC", "0.5", moment(long_ago, 10))
    return keeper, empty


def test_only_traders_with_holdings_or_activity_are_told(clock_week):
    keeper, empty = clock_week
    run = digests.digests_send(kind="weekly")  # the last whole week
    assert run.period.last <= timezone.now().date() - timedelta(days=1)
    assert run.period.last.isoweekday() == 7
    (note,) = told(keeper)
    assert told(empty) == []
    data = note.data
    start_close = DailySnapshot.objects.get(user=keeper, date=run.period.base_day).value_usdt
    assert usdt(data["start_value_usdt"]) == start_close
    assert data["fills"] == 0 and usdt(data["net_flows_usdt"]) == 0
    assert usdt(data["realized_pnl_usdt"]) == 0
    # held all week: the whole PnL is the BTC's move, unrealized, as the statements say
    start, end = run.period.start, run.period.end
    at_end = statements.statement_of(user=keeper, start=start, end=end).unrealized_pnl_usdt
    at_start = statements.statement_of(user=keeper, start=start - timedelta(days=1), end=start).unrealized_pnl_usdt
    assert usdt(data["unrealized_pnl_usdt"]) == at_end - at_start == usdt(data["pnl_usdt"]) != 0
    assert note.title == f"Your weekly portfolio summary: week {run.period.label}"
    assert "Trading: no fills." in note.body and "Net deposits" not in note.body


def test_reads_are_set_based_not_per_trader(clock_week):
    """The number of queries does not grow with the number of traders."""
    day = timezone.now().date() - timedelta(days=3)
    DailySnapshot.objects.all().delete()
    digests.digests_send(kind="daily", day=day)  # writes the snapshots the period needs
    with CaptureQueriesContext(connection) as few:
        digests.digests_of(digests.period_of("daily", day))
    for n in range(30):
        user = trader()
        deposit(user, "USDT", 100 + n, moment(day - timedelta(days=2), 9))
        deposit(user, "BTC", "0.1", moment(day, 9))
    DailySnapshot.objects.all().delete()
    digests.digests_send(kind="daily", day=day)
    with CaptureQueriesContext(connection) as many:
        found = digests.digests_of(digests.period_of("daily", day))
    assert len(found) == 31
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_command_prints_progress_and_refuses_bad_input(clock_week):
    keeper, _ = clock_week
    day = timezone.now().date() - timedelta(days=2)
    out = StringIO()
    call_command("portfolio_digests", "--period", "daily", "--date", day.isoformat(), stdout=out)
    text = out.getvalue()
    assert f"daily {day.isoformat()}: 1 traders" in text
    assert "1 of 1 written, 1 new" in text
    assert "1 traders, 1 told (0 already told)" in text
    out = StringIO()
    call_command("portfolio_digests", "--period", "daily", "--date", day.isoformat(), stdout=out)
    assert "1 traders, 0 told (1 already told)" in out.getvalue()
    assert len(told(keeper)) == 1
    with pytest.raises(CommandError, match="has not ended"):
        call_command("portfolio_digests", "--period", "daily", "--date", timezone.now().date().isoformat())
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("portfolio_digests", "--period", "weekly", "--date", "last monday")
    with pytest.raises(CommandError):
        call_command("portfolio_digests", "--period", "monthly")


def test_beat_runs_the_digests_after_the_snapshots_in_both_modes():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    daily, weekly = schedule["portfolio-daily-digest"], schedule["portfolio-weekly-digest"]
    assert daily["task"] == weekly["task"] == "portfolio.tasks.digests"
    assert daily["args"] == ("daily",) and weekly["args"] == ("weekly",)
    assert daily["schedule"].minute == {10} and daily["schedule"].hour == {0}
    assert weekly["schedule"].day_of_week == {1}
    snapshots = schedule["portfolio-daily-snapshots"]["schedule"]
    assert snapshots.hour == {0} and max(snapshots.minute) < 10


@pytest.mark.django_db(transaction=True)
def test_the_embedded_beat_runs_an_entry_with_its_arguments(clock_week, settings, eager_tasks):
    import threading

    from trading.beat import run_embedded_beat

    keeper, _ = clock_week
    settings.CELERY_BEAT_SCHEDULE = {
        "digest": {"task": "portfolio.tasks.digests", "schedule": 0.2, "args": ("weekly",)},
    }
    stop = threading.Event()

    def beat_thread():
        try:
            run_embedded_beat(stop=stop, tick=0.05)
        finally:
            connection.close()

    beat = threading.Thread(target=beat_thread)
    beat.start()
    try:
        deadline = timezone.now() + timedelta(seconds=20)
        while not told(keeper) and timezone.now() < deadline:
            stop.wait(0.1)
    finally:
        stop.set()
        beat.join(5)
    (note,) = told(keeper)
    assert note.dedupe_key.startswith("digest:weekly:")


@pytest.mark.slow
@pytest.mark.skipif(SQLITE, reason="this is the SQLite run")
def test_the_same_digests_on_sqlite(tmp_path):
    """The embedded mode's database: the figures still reconcile with the API, a rerun tells
    nobody, the command works."""
    from tests.processes import pytest_on_sqlite

    pytest_on_sqlite(tmp_path, __file__, "-k", "reconciles or rerun or only_traders or command", timeout=600)
