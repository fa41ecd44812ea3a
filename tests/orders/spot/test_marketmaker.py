"""The market maker against PostgreSQL and the real engine runner: it quotes a ladder on both
sides around the index, re-quotes when the index moves or a quote trades without ever
crossing its own quotes, pulls its quotes while the index is stale, and never doubles its
ladder across a restart; ``run_marketmaker`` as a real process quotes the test database."""

from __future__ import annotations

import io
import os
import sys
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from marketdata.models import IndexPrint
from marketdata.selectors import spot_market
from orders import demo
from orders.models import LIVE_STATUSES, SpotOrder, SpotStatus, SpotTrade
from orders.spot.engine import BUY, SELL
from orders.spot.marketmaker import LEASE, MarketMaker, client_order_id, generation_of, market_maker_user
from orders.spot.services import order_request, spot_order_place
from tests.orders.conftest import INDEX, print_index
from tests.processes import Child, test_database_url
from trading.leases import lease_acquire
from trading.models import Lease

from .conftest import Engine, available, funded_trader, held

D = Decimal
BPS = D("0.0001")
SYMBOLS = ("BTC-USDT", "ETH-USDT")
BASES = {"BTC-USDT": "BTC", "ETH-USDT": "ETH"}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def maker(markets):
    demo.seed(io.StringIO())
    return market_maker_user()


@pytest.fixture
def engines(markets):
    return {symbol: Engine(symbol) for symbol in SYMBOLS}


def run(engines) -> None:
    for engine in engines.values():
        engine.run()


def live_quotes(user, symbol: str) -> list[SpotOrder]:
    return list(SpotOrder.objects.filter(user=user, symbol=symbol, status__in=LIVE_STATUSES).order_by("price"))


def sides(orders) -> tuple[list[SpotOrder], list[SpotOrder]]:
    bids = sorted((o for o in orders if o.side == BUY), key=lambda o: -o.price)
    asks = sorted((o for o in orders if o.side == SELL), key=lambda o: o.price)
    return bids, asks


def assert_ladder_around(user, symbol: str, index: Decimal) -> None:
    """A whole ladder of one generation, both sides around ``index`` at the configured
    spread and steps, in the book as the runner published it, never crossing itself."""
    levels = settings.MARKET_MAKER_LEVELS
    half = D(settings.MARKET_MAKER_SPREAD_BPS) / 2
    step = D(settings.MARKET_MAKER_LEVEL_STEP_BPS)
    tick = D("0.01")
    bids, asks = sides(live_quotes(user, symbol))
    assert len(bids) == len(asks) == levels
    assert {o.status for o in bids + asks} == {SpotStatus.OPEN}
    assert len({generation_of(o.client_order_id) for o in bids + asks}) == 1
    assert bids[0].price < index < asks[0].price
    for level, (bid, ask) in enumerate(zip(bids, asks)):
        offset = (half + step * level) * BPS
        assert index * (1 - offset) - tick < bid.price <= index * (1 - offset)
        assert index * (1 + offset) <= ask.price < index * (1 + offset) + tick
        assert bid.client_order_id == client_order_id(symbol, BUY, level, generation_of(bid.client_order_id))
    sizes = {o.quantity for o in bids + asks}
    assert len(sizes) > levels  # sizes vary, not one size per level
    book = spot_market(symbol)
    assert [D(p) for p, _ in book["bids"]] == [o.price for o in bids]
    assert [D(p) for p, _ in book["asks"]] == [o.price for o in asks]
    assert [D(q) for _, q in book["asks"]] == [o.quantity for o in asks]


def test_the_maker_quotes_a_ladder_on_both_sides_of_every_symbol_around_the_index(maker, engines):
    lines = []
    outcome = MarketMaker(announce=lines.append).quote_round()
    assert outcome == {"BTC-USDT": "quoted", "ETH-USDT": "quoted"}
    assert any(line.startswith("QUOTED BTC-USDT gen=1 ") for line in lines), lines
    run(engines)
    for symbol in SYMBOLS:
        assert_ladder_around(maker, symbol, INDEX[BASES[symbol]])
    # its quotes hold its funds like anyone's
    bids, asks = sides(live_quotes(maker, "BTC-USDT"))
    assert held(maker, "BTC") == sum(o.quantity for o in asks)
    eth_bids = sides(live_quotes(maker, "ETH-USDT"))[0]
    assert held(maker, "USDT") == sum(
        (o.price * o.quantity).quantize(D("0.000001"), ROUND_CEILING) for o in bids + eth_bids
    )


def test_a_round_with_nothing_new_changes_nothing(maker, engines):
    mm = MarketMaker(announce=lambda line: None)
    mm.quote_round()
    run(engines)
    before = SpotOrder.objects.count()
    assert mm.quote_round() == {"BTC-USDT": "held", "ETH-USDT": "held"}
    run(engines)
    assert SpotOrder.objects.count() == before


def test_the_maker_requotes_when_the_index_moves_past_the_threshold(maker, engines, settings):
    mm = MarketMaker(announce=lambda line: None)
    mm.quote_round()
    run(engines)
    first = {o.pk for o in live_quotes(maker, "BTC-USDT")}

    small = INDEX["BTC"] * (1 + D(settings.MARKET_MAKER_REQUOTE_BPS) / 2 * BPS)
    print_index("BTC", small.quantize(D("0.01")))
    assert mm.quote_round()["BTC-USDT"] == "held"  # within the threshold: the ladder stays

    moved = (INDEX["BTC"] * (1 + D(settings.MARKET_MAKER_REQUOTE_BPS) * 2 * BPS)).quantize(D("0.01"))
    print_index("BTC", moved)
    assert mm.quote_round() == {"BTC-USDT": "quoted", "ETH-USDT": "held"}
    run(engines)
    assert_ladder_around(maker, "BTC-USDT", moved)
    assert not first & {o.pk for o in live_quotes(maker, "BTC-USDT")}
    assert set(SpotOrder.objects.filter(pk__in=first).values_list("status", "cancel_reason")) == {("cancelled", "user")}


def test_a_jump_never_crosses_its_own_quotes_new_ones_wait_for_the_old_to_leave(maker, engines):
    mm = MarketMaker(announce=lambda line: None)
    mm.quote_round()
    run(engines)
    # 1% up: every new bid is above the old asks, which are only asked to cancel so far
    jumped = (INDEX["BTC"] * D("1.01")).quantize(D("0.01"))
    print_index("BTC", jumped)
    mm.quote_round()
    bids, asks = sides(live_quotes(maker, "BTC-USDT"))
    assert bids and asks and bids[0].price < asks[0].price
    assert all(generation_of(o.client_order_id) == 1 for o in bids)  # the new bids wait
    run(engines)  # the runner takes the old quotes out
    mm.quote_round()
    run(engines)
    assert_ladder_around(maker, "BTC-USDT", jumped)
    assert not SpotTrade.objects.exists()
    reasons = set(
        SpotOrder.objects.filter(user=maker, status=SpotStatus.CANCELLED).values_list("cancel_reason", flat=True)
    )
    assert reasons == {"user"}  # none taken out by self-trade prevention


def test_a_filled_quote_brings_a_fresh_ladder_and_the_book_stays_two_sided(maker, engines):
    mm = MarketMaker(announce=lambda line: None)
    mm.quote_round()
    run(engines)
    taker = funded_trader(usdt="100000", btc="0")
    best_ask = sides(live_quotes(maker, "BTC-USDT"))[1][0]
    spot_order_place(
        user=taker,
        request=order_request(
            **{
                "symbol": "BTC-USDT",
                "side": "buy",
                "type": "limit",
                "time_in_force": "IOC",
                "price": str(best_ask.price),
                "quantity": str(best_ask.quantity),
            }
        ),
    )
    run(engines)
    trade = SpotTrade.objects.get()
    assert (trade.maker_user_id, trade.taker_user_id, trade.price) == (maker.pk, taker.pk, best_ask.price)
    assert available(taker, "BTC") > 0

    assert mm.quote_round()["BTC-USDT"] == "quoted"
    run(engines)
    assert_ladder_around(maker, "BTC-USDT", INDEX["BTC"])
    assert generation_of(live_quotes(maker, "BTC-USDT")[0].client_order_id) == 2


def test_a_stale_index_pulls_the_quotes_of_that_symbol_only_until_it_is_fresh_again(maker, engines):
    lines = []
    mm = MarketMaker(announce=lines.append)
    mm.quote_round()
    run(engines)
    print_index("BTC", None, stale=True)
    assert mm.quote_round() == {"BTC-USDT": "stale", "ETH-USDT": "held"}
    run(engines)
    assert live_quotes(maker, "BTC-USDT") == []
    assert len(live_quotes(maker, "ETH-USDT")) == 2 * settings.MARKET_MAKER_LEVELS
    assert spot_market("BTC-USDT")["bids"] == [] and spot_market("BTC-USDT")["asks"] == []
    assert held(maker, "BTC") == 0
    assert any(line.startswith("PAUSED BTC-USDT") for line in lines)
    assert mm.quote_round()["BTC-USDT"] == "stale"  # quiet while it stays stale
    assert sum(line.startswith("PAUSED BTC-USDT") for line in lines) == 1
    # a feed that stopped printing is as stale as a print marked stale
    IndexPrint.objects.filter(underlying="ETH").update(
        ts=timezone.now() - timedelta(seconds=settings.INDEX_MAX_AGE_SECONDS + 1)
    )
    assert mm.quote_round()["ETH-USDT"] == "stale"
    run(engines)
    assert live_quotes(maker, "ETH-USDT") == []
    print_index("BTC", INDEX["BTC"])
    assert mm.quote_round()["BTC-USDT"] == "quoted"
    run(engines)
    assert_ladder_around(maker, "BTC-USDT", INDEX["BTC"])


def test_a_restarted_maker_adopts_its_whole_ladder_instead_of_doubling_it(maker, engines):
    MarketMaker(announce=lambda line: None).quote_round()
    run(engines)
    orders = SpotOrder.objects.count()
    lines = []
    restarted = MarketMaker(announce=lines.append)
    assert restarted.quote_round() == {"BTC-USDT": "held", "ETH-USDT": "held"}
    run(engines)
    assert SpotOrder.objects.count() == orders
    assert any(line.startswith("ADOPTED BTC-USDT gen=1") for line in lines)
    for symbol in SYMBOLS:
        assert_ladder_around(maker, symbol, INDEX[BASES[symbol]])


def test_a_maker_that_died_mid_ladder_is_replaced_by_one_whole_new_ladder(maker, engines, monkeypatch):
    import orders.spot.marketmaker as module

    placed = []

    def dies_after_three(**kwargs):
        if len(placed) == 3:
            raise SystemExit("killed")
        placed.append(kwargs["request"].client_order_id)
        return spot_order_place(**kwargs)

    monkeypatch.setattr(module, "spot_order_place", dies_after_three)
    with pytest.raises(SystemExit):
        MarketMaker(symbols=["BTC-USDT"], announce=lambda line: None).quote_round()
    monkeypatch.undo()
    run(engines)
    assert len(live_quotes(maker, "BTC-USDT")) == 3

    MarketMaker(symbols=["BTC-USDT"], announce=lambda line: None).quote_round()
    run(engines)
    MarketMaker(symbols=["BTC-USDT"], announce=lambda line: None).quote_round()  # nothing left to do
    run(engines)
    assert_ladder_around(maker, "BTC-USDT", INDEX["BTC"])
    assert generation_of(live_quotes(maker, "BTC-USDT")[0].client_order_id) == 2
    assert set(SpotOrder.objects.filter(client_order_id__in=placed).values_list("status", flat=True)) == {"cancelled"}


def test_two_makers_quoting_the_same_generation_place_each_quote_once(maker, engines):
    """A deposed leader that wakes up mid-round: the same ids with the same terms replay."""
    first, second = MarketMaker(announce=lambda line: None), MarketMaker(announce=lambda line: None)
    first.on_lead()
    second.on_lead()
    first.quote_round()
    second.quote_round()
    run(engines)
    for symbol in SYMBOLS:
        assert_ladder_around(maker, symbol, INDEX[BASES[symbol]])
    assert SpotOrder.objects.filter(user=maker).count() == 2 * 2 * settings.MARKET_MAKER_LEVELS


@pytest.mark.slow
def test_run_marketmaker_as_a_process_quotes_the_database_and_releases_its_lease(maker, engines, tmp_path, settings):
    if not test_database_url().startswith("postgres"):
        pytest.skip("needs PostgreSQL")
    # the fixture's index prints must stay fresh for the whole test, in both processes
    settings.INDEX_MAX_AGE_SECONDS = 300
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "DATABASE_URL": test_database_url(),
        "DEBUG": "0",
        "HTTPS": "0",
        "PYTHONUNBUFFERED": "1",
        "MARKET_MAKER_INTERVAL_SECONDS": "0.2",
        "INDEX_MAX_AGE_SECONDS": "300",
    }
    child = Child("marketmaker", [sys.executable, "manage.py", "run_marketmaker", "--ttl", "2"], env, tmp_path).start()
    try:
        child.wait_for(f"LEADER role={LEASE}", timeout=30)
        child.wait_for("QUOTED BTC-USDT gen=1", timeout=15)
        child.wait_for("QUOTED ETH-USDT gen=1", timeout=15)
        run(engines)  # the in-process runners hold the engine leases
        for symbol in SYMBOLS:
            assert_ladder_around(maker, symbol, INDEX[BASES[symbol]])
        # while it runs, a fill is answered with a new ladder
        taker = funded_trader(usdt="0", btc="5")
        best_bid = sides(live_quotes(maker, "BTC-USDT"))[0][0]
        spot_order_place(
            user=taker,
            request=order_request(
                **{
                    "symbol": "BTC-USDT",
                    "side": "sell",
                    "type": "limit",
                    "time_in_force": "IOC",
                    "price": str(best_bid.price),
                    "quantity": str(best_bid.quantity),
                }
            ),
        )
        run(engines)
        child.wait_for("QUOTED BTC-USDT gen=2", timeout=15)
    finally:
        child.stop()
    assert child.proc.returncode == 0, "".join(child.lines[-40:])
    assert any(f"STOPPED role={LEASE}" in line for line in child.lines)
    # gone for good: its lease is free at once, and another maker takes over from gen 2
    assert lease_acquire(name=LEASE, holder="test", ttl=5) is not None
    assert Lease.objects.get(name=LEASE).holder == "test"
    run(engines)
    lines = []
    MarketMaker(announce=lines.append).quote_round()
    run(engines)
    assert_ladder_around(maker, "BTC-USDT", INDEX["BTC"])
    assert generation_of(live_quotes(maker, "BTC-USDT")[0].client_order_id) == 2


def test_seeding_twice_creates_one_unprivileged_user_funded_once(markets):
    demo.seed(io.StringIO())
    demo.seed(out := io.StringIO())
    user = market_maker_user()
    assert not user.has_usable_password() and not user.is_staff and not user.is_superuser
    assert available(user, "USDT") == D("5000000") and available(user, "BTC") == D("50")
    assert available(user, "ETH") == D("1000")
    assert settings.MARKET_MAKER_EMAIL in out.getvalue()


def test_a_round_longer_than_the_ttl_keeps_the_lease_as_it_goes(maker, engines, monkeypatch):
    import time

    import orders.spot.marketmaker as module

    def slow_entry(**kwargs):
        time.sleep(0.06)  # a busy database: twenty of these outlast the TTL
        return spot_order_place(**kwargs)

    monkeypatch.setattr(module, "spot_order_place", slow_entry)
    mm = MarketMaker(announce=lambda line: None)
    mm.holder, mm.ttl = "mm-test", 0.6
    epoch = lease_acquire(name=LEASE, holder=mm.holder, ttl=mm.ttl)
    mm.on_lead(epoch)
    started = time.monotonic()
    mm.work(epoch)
    assert time.monotonic() - started > mm.ttl
    # still the holder at the same epoch: a standby could not have taken over mid-round
    assert lease_acquire(name=LEASE, holder="standby", ttl=5) is None
    assert Lease.objects.get(name=LEASE).epoch == epoch
    run(engines)
    for symbol in SYMBOLS:
        assert_ladder_around(maker, symbol, INDEX[BASES[symbol]])
