"""The trader's history read from the ledger (PostgreSQL, real fills through order entry and
the engine runner, a smart order, an RFQ, options, a withdrawal): every asset's replayed
quantity is its ledger balance, the option positions match the counter's, and the cached
book is extended with only what is new, yet always equals a replay from the start."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db.models import Q

from ledger.models import Transfer
from ledger.services import deposit_credit
from marketdata.models import Candle, CandleSource
from orders.models import SpotOrder
from orders.options.models import OptionPosition
from portfolio import books, core, history, selectors
from tests.orders.conftest import INDEX, print_index

from .world import build, ledger_totals, order

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, django_capture_on_commit_callbacks, eager_tasks):
    return build(settings, django_capture_on_commit_callbacks)


def test_every_kind_of_history_becomes_events_whose_quantities_are_the_ledgers_balances(world):
    alice = world["alice"]
    events = history.history_of(user_id=alice.pk)
    kinds = {(event.kind, event.source) for event in events}
    assert {
        ("deposit", "wallet"),
        ("buy", "book"),
        ("sell", "book"),
        ("sell", "smart"),
        ("buy", "rfq"),
        ("option_open", "option"),
        ("option_close", "option"),
        ("withdrawal", "wallet"),
        ("fee", "wallet"),
    } <= kinds
    assert events == sorted(events, key=lambda event: event.key)
    # the smart order's child on our book is a smart fill too, as its venue child is
    [book_child] = SpotOrder.objects.filter(parent_id=world["smart"]["id"])
    child_events = [e for e in events if e.reference.startswith(f"spot:{book_child.pk}:")]
    assert child_events and {e.source for e in child_events} == {"smart"}

    totals = ledger_totals(alice)
    for method in core.METHODS:
        book = core.replay(events, method)
        for asset, total in totals.items():
            held = book.holdings.get(asset)
            assert (held.quantity if held else D(0)) == total, (method, asset)
            assert sum((lot.quantity for lot in book.open_lots(asset)), D(0)) == total, (method, asset)

    # the BTC deposit is valued at the index when it was credited
    [btc_deposit] = [e for e in events if e.kind == "deposit" and e.asset == "BTC"]
    assert (btc_deposit.quantity, btc_deposit.usdt) == (D("1"), D("65000.120000"))
    # a buy's cost is the USDT it spent: its fee is in the cost (less BTC came in)
    [taker_buy] = [e for e in events if e.kind == "buy" and e.asset == "BTC" and e.source == "book"][:1]
    cash = next(e for e in events if e.reference == taker_buy.reference and e.asset == "USDT")
    assert cash.quantity == -taker_buy.usdt and taker_buy.quantity < D("0.3")


def test_options_are_booked_per_series_and_average_cost_is_the_counters(world):
    alice = world["alice"]
    position = OptionPosition.objects.get(user=alice, series=world["series"])
    average = core.replay(history.history_of(user_id=alice.pk), core.AVERAGE)
    held = average.holdings[world["series"]]
    assert held.quantity == position.contracts == D("0.3")
    assert held.cost == position.cost_usdt
    assert held.realized == position.realized_pnl_usdt
    [close] = [d for d in average.disposals if d.asset == world["series"]]
    assert close.kind == "option_close" and close.quantity == D("0.2")


def test_until_stops_the_history_at_a_moment(world):
    alice = world["alice"]
    events = history.history_of(user_id=alice.pk)
    cut = events[len(events) // 2].at
    assert history.history_of(user_id=alice.pk, until=cut) == [e for e in events if e.at <= cut]


def test_the_cached_book_is_extended_with_what_is_new(world):
    alice, engine = world["alice"], world["engine"]
    for method in core.METHODS:
        selectors.book_of(user_id=alice.pk, method=method)
    state_key, _, _ = books._keys(alice.pk, core.FIFO)
    state = cache.get(state_key)
    fresh = core.replay(history.history_of(user_id=alice.pk), core.FIFO)
    assert state is not None and state.book.holdings == fresh.holdings and state.stored == len(fresh.disposals)
    # a mark only the cached book carries: a replay from the start would not keep it
    state.book.events += 1_000_000
    cache.set(state_key, state)
    booked = state.book.events

    order(world["b"], side="sell", quantity="0.01", price="65000")
    engine.run()
    order(world["a"], side="buy", quantity="0.01", price="65000")
    engine.run()
    book = selectors.book_of(user_id=alice.pk, method=core.FIFO)
    assert book.events == booked + 2  # the BTC and the USDT of one fill, nothing replayed
    fresh = core.replay(history.history_of(user_id=alice.pk), core.FIFO)
    assert (book.holdings, book.disposals, book.net_invested) == (fresh.holdings, fresh.disposals, fresh.net_invested)
    assert book.holdings["BTC"].quantity == ledger_totals(alice)["BTC"]

    # nothing new: the cached book as it is
    assert selectors.book_of(user_id=alice.pk, method=core.FIFO).events == booked + 2


def test_a_transfer_that_commits_behind_the_cursor_makes_the_book_replay(world):
    alice = world["alice"]
    selectors.book_of(user_id=alice.pk, method=core.FIFO)
    first = Transfer.objects.filter(Q(credit_account__user=alice)).order_by("created_at").first().created_at
    # a deposit whose transfer carries a time before everything booked, as a transaction
    # that started early and committed late would
    late = deposit_credit(user=alice, asset="ETH", amount=D("2"), txid="late-eth")
    Transfer.objects.filter(pk=late.pk).update(created_at=first - timedelta(seconds=1))
    book = selectors.book_of(user_id=alice.pk, method=core.FIFO)
    assert book.holdings["ETH"].quantity == D("2")
    assert book == core.replay(history.history_of(user_id=alice.pk), core.FIFO)


def test_a_price_in_the_past_is_the_nearest_before_from_index_prints_or_candles(db):
    now = print_index("BTC", INDEX["BTC"]).ts
    print_index("BTC", D("60000"), ts=now - timedelta(hours=2))
    print_index("BTC", None, stale=True, ts=now - timedelta(hours=1))
    assert history.price_at(asset="BTC", at=now - timedelta(minutes=90)) == D("60000")  # the stale print is skipped
    minute = (now - timedelta(minutes=30)).replace(second=0, microsecond=0)
    Candle.objects.create(
        symbol="BTC-USDT",
        source=CandleSource.INDEX,
        interval="1m",
        open_time=minute,
        open=D("61000"),
        high=D("62000"),
        low=D("60500"),
        close=D("61500"),
    )
    assert history.price_at(asset="BTC", at=minute + timedelta(seconds=30)) == D("61000")  # within the minute: its open
    assert history.price_at(asset="BTC", at=minute + timedelta(minutes=5)) == D("61500")  # after it: its close
    assert history.price_at(asset="BTC", at=now - timedelta(days=1)) == D("60000")  # nothing before: the first after
    assert history.price_at(asset="ETH", at=now) is None
    assert history.price_at(asset="USDT", at=now) == D(1)
