"""Today's PnL and the options session against history from before 00:00 and 08:00 UTC
(transfers and option orders made through the platform, then moved back in time), and the
cached disposals kept in chunks, read back whole even when one is lost."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from ledger.models import Transfer
from ledger.services import deposit_credit
from marketdata.models import Instrument
from marketdata.options import series_price
from orders.options.models import OptionOrder
from portfolio import books, core, history, selectors
from tests.orders.conftest import INDEX, pick_series, print_index

from .world import build, client_for, markets, order, trader

D = Decimal
pytestmark = pytest.mark.django_db


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return response.json()


def test_todays_pnl_is_the_value_now_less_the_value_at_midnight_and_todays_deposits(settings):
    markets(settings)
    now = timezone.now()
    midnight = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    yesterday_noon = midnight - timedelta(hours=12)
    print_index("BTC", D("58000"), ts=yesterday_noon - timedelta(minutes=1))
    print_index("BTC", D("60000"), ts=midnight - timedelta(minutes=1))
    user = trader()
    early = [
        deposit_credit(user=user, asset="BTC", amount=D("1"), txid="early-btc"),
        deposit_credit(user=user, asset="USDT", amount=D("1000"), txid="early-usdt"),
    ]
    Transfer.objects.filter(pk__in=[t.pk for t in early]).update(created_at=yesterday_noon)
    deposit_credit(user=user, asset="USDT", amount=D("500"), txid="today-usdt")

    body = get(client_for(user), "/api/v1/portfolio")
    assert D(body["value_at_day_start_usdt"]) == D("60000") + D("1000")
    assert D(body["net_flows_today_usdt"]) == D("500")
    assert D(body["total_usdt"]) == INDEX["BTC"] + D("1500")
    assert D(body["pnl_today_usdt"]) == INDEX["BTC"] - D("60000")
    # the BTC came in at its price then: it is invested at that value
    assert D(body["net_invested_usdt"]) == D("58000") + D("1500")
    btc = next(line for line in body["assets"] if line["asset"] == "BTC")
    assert D(btc["cost_basis_usdt"]) == D("58000") and D(btc["unrealized_pnl_usdt"]) == INDEX["BTC"] - D("58000")


def test_the_session_pnl_of_an_option_held_since_before_08_00_is_its_value_change(settings):
    markets(settings)
    now = timezone.now()
    start = books.session_start(now)
    index_then = D("62000")
    print_index("BTC", index_then, ts=start - timedelta(minutes=1))
    user = trader(usdt="100000")
    client = client_for(user)
    series = pick_series("BTC", "C", min_days=3).symbol
    quote = client.post("/api/v1/options/quotes", {"series": series, "side": "buy", "contracts": "0.5"}, format="json")
    assert (
        client.post("/api/v1/options/orders", {"quote_id": quote.json()["quote_id"]}, format="json").status_code == 201
    )
    bought = OptionOrder.objects.get(user=user)
    OptionOrder.objects.filter(pk=bought.pk).update(created_at=start - timedelta(hours=1))
    Transfer.objects.filter(pk=bought.transfer_id).update(created_at=start - timedelta(hours=1))

    body = get(client, "/api/v1/portfolio")
    [position] = body["options"]["positions"]
    instrument = Instrument.objects.get(symbol=series)
    mark_then = series_price(instrument=instrument, now=start, index=index_then).mark_usdt
    value_then = (mark_then * D("0.5")).quantize(D("0.000001"), rounding=ROUND_HALF_EVEN)
    assert D(position["session_pnl_usdt"]) == D(position["value_usdt"]) - value_then
    assert body["options"]["session_start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    # bought before the session: the premium is not in the session's PnL, it is in the cost
    assert D(position["cost_usdt"]) == bought.total_usdt
    assert D(position["unrealized_pnl_usdt"]) == D(position["value_usdt"]) - bought.total_usdt


@pytest.fixture
def world(settings, django_capture_on_commit_callbacks, eager_tasks, monkeypatch):
    # chunks of three disposals, so that a handful of trades spans several of them
    monkeypatch.setattr(books, "CHUNK", 3)
    return build(settings, django_capture_on_commit_callbacks)


def test_disposals_kept_in_chunks_read_back_whole_and_a_lost_chunk_is_replayed(world):
    alice = world["alice"]
    for method in core.METHODS:
        assert (
            selectors.book_of(user_id=alice.pk, method=method).disposals
            == core.replay(history.history_of(user_id=alice.pk), method).disposals
        )
    for price in ("65000", "65010", "65020"):
        order(world["b"], side="buy", quantity="0.01", price=price)
        world["engine"].run()
        order(world["a"], side="sell", quantity="0.01", price=price)
        world["engine"].run()
        get(world["a"], "/api/v1/portfolio")  # each new sale booked into the cached book
    replayed = core.replay(history.history_of(user_id=alice.pk), core.FIFO)
    state = cache.get(books._keys(alice.pk, core.FIFO)[0])
    assert state.stored == len(replayed.disposals) > 2 * books.CHUNK
    report = selectors.pnl_of(user=alice, start=None, end=None, method=core.FIFO)
    assert report.disposals == replayed.disposals

    cache.delete(f"{books._keys(alice.pk, core.FIFO)[2]}1")
    report = selectors.pnl_of(user=alice, start=None, end=None, method=core.FIFO)
    assert report.disposals == replayed.disposals


def test_an_exercise_at_expiry_disposes_of_the_contracts_for_the_payout(settings):
    from orders.options.models import OptionExercise, OptionPosition
    from orders.options.services import options_expire

    markets(settings)
    user = trader(usdt="100000")
    client = client_for(user)
    series = pick_series("BTC", "C", min_days=3, offset=-3).symbol  # in the money
    quote = client.post("/api/v1/options/quotes", {"series": series, "side": "buy", "contracts": "0.5"}, format="json")
    assert (
        client.post("/api/v1/options/orders", {"quote_id": quote.json()["quote_id"]}, format="json").status_code == 201
    )
    get(client, "/api/v1/portfolio")  # the book cached before the expiry
    # the series expires a minute ago, the index having stood at its level for the half hour before
    expiry = timezone.now() - timedelta(minutes=1)
    Instrument.objects.filter(symbol=series).update(expiry=expiry)
    for minutes in (40, 20, 5):
        print_index("BTC", INDEX["BTC"], ts=expiry - timedelta(minutes=minutes))
    assert options_expire(now=timezone.now())["exercised"] == 1
    exercise = OptionExercise.objects.get(user=user)
    position = OptionPosition.objects.get(user=user)

    for method in core.METHODS:
        book = selectors.book_of(user_id=user.pk, method=method)
        assert book.holdings[series].quantity == 0
        last = book.disposals[-1]
        assert (last.asset, last.kind, last.quantity, last.proceeds_usdt) == (
            series,
            "option_exercise",
            D("0.5"),
            exercise.payout_usdt,
        )
        assert book.holdings[series].realized == position.realized_pnl_usdt
    body = get(client, "/api/v1/portfolio")
    [line] = body["options"]["positions"]
    assert (line["series"], D(line["contracts"]), D(line["value_usdt"])) == (series, 0, 0)
    # bought and exercised this session: its session PnL is what it realized
    assert D(line["session_pnl_usdt"]) == D(line["realized_pnl_usdt"]) == position.realized_pnl_usdt
    usdt = next(a for a in body["assets"] if a["asset"] == "USDT")
    assert D(usdt["quantity"]) == D("100000") - OptionOrder.objects.get(user=user).total_usdt + exercise.payout_usdt
