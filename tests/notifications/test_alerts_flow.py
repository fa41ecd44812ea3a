"""Price alerts end to end: a real trade through order entry and the engine runner, or an
index print from the feed's publisher, reaches the watcher through the realtime tap and
writes the trader's notification, once; a repeating alert respects its cooldown in the
database too, so a redelivered tick or a second evaluator never tells twice."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.models import Candle, IndexPrint
from marketdata.streams import publish_tick
from notifications.alert_services import AlertWatcher, alerts_fire, price_alert_create
from notifications.models import Notification, NotificationPreference, PriceAlert, PriceAlertStatus
from orders.spot.services import order_request, spot_order_place
from tests.factories import UserFactory
from tests.orders.spot.conftest import Engine, funded_trader, markets  # noqa: F401  (fixture)

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def watcher(markets):  # noqa: F811
    watcher = AlertWatcher(cooldown=60).listen()
    yield watcher
    watcher.close()


def trader_():
    """A trader who reads price alerts in the app only: what these tests follow is the
    in-app message (email delivery has its own tests)."""
    user = UserFactory()
    NotificationPreference.objects.create(user=user, kind="price_alert", channel="email", enabled=False)
    return user


def trade(price: str, quantity: str = "0.01"):
    seller, buyer = funded_trader(), funded_trader()
    for user, side in ((seller, "sell"), (buyer, "buy")):
        spot_order_place(
            user=user,
            request=order_request(symbol="BTC-USDT", side=side, type="limit", price=price, quantity=quantity),
        )


def test_a_trade_on_the_book_fires_a_once_alert_at_its_price(watcher):
    trader = trader_()
    hit = price_alert_create(
        user=trader, symbol="BTC-USDT", condition="price_above", value="65100.00", frequency="once"
    )
    miss = price_alert_create(
        user=trader, symbol="BTC-USDT", condition="price_above", value="65100.01", frequency="once"
    )
    below = price_alert_create(
        user=trader, symbol="BTC-USDT", condition="price_below", value="65099.99", frequency="once"
    )
    engine = Engine("BTC-USDT")
    watcher.drain()  # loads the alerts

    trade("65100.00")
    engine.run()
    assert watcher.drain() == 1

    note = Notification.objects.get(user=trader, kind="price_alert")
    assert note.dedupe_key == f"price_alert:{hit.pk}"
    assert note.data["price"] == "65100" and note.data["alert_id"] == hit.pk
    assert "BTC-USDT" in note.title
    hit.refresh_from_db()
    assert hit.status == PriceAlertStatus.TRIGGERED and hit.fire_count == 1
    assert hit.last_fired_price == D("65100.00")
    assert PriceAlert.objects.get(pk=miss.pk).status == PriceAlertStatus.ACTIVE
    assert PriceAlert.objects.get(pk=below.pk).status == PriceAlertStatus.ACTIVE

    # a higher trade later: the once alert stays triggered; the next one up fires now
    trade("65200.00")
    engine.run()
    assert watcher.drain() == 1
    assert set(Notification.objects.filter(user=trader).values_list("dedupe_key", flat=True)) == {
        f"price_alert:{hit.pk}",
        f"price_alert:{miss.pk}",
    }


def test_an_alert_created_after_the_load_is_watched_and_a_deleted_one_is_not(watcher):
    from notifications.alert_services import price_alert_delete

    trader = trader_()
    engine = Engine("BTC-USDT")
    watcher.drain()
    doomed = price_alert_create(
        user=trader, symbol="BTC-USDT", condition="price_below", value="65000.00", frequency="once"
    )
    fresh = price_alert_create(
        user=trader, symbol="BTC-USDT", condition="price_below", value="64990.00", frequency="once"
    )
    watcher.drain()  # the creations are read
    price_alert_delete(user=trader, alert_id=doomed.pk)

    trade("64980.00")
    engine.run()
    assert watcher.drain() == 1
    assert list(Notification.objects.filter(user=trader).values_list("dedupe_key", flat=True)) == [
        f"price_alert:{fresh.pk}"
    ]
    assert PriceAlert.objects.get(pk=doomed.pk).status == PriceAlertStatus.DELETED


def index_print(underlying: str, price: str, at: datetime) -> None:
    printed = IndexPrint.objects.create(underlying=underlying, ts=at, price=D(price), stale=False, sources={})
    publish_tick(prints=[printed], bars=[], tickers={})  # what the feed publishes after its commit


def test_an_index_print_fires_every_time_alerts_after_their_cooldown(watcher):
    trader = trader_()
    alert = price_alert_create(
        user=trader, symbol="index:ETH", condition="price_above", value="3500.00", frequency="every_time"
    )
    watcher.drain()
    t0 = datetime(2026, 12, 6, 6, 0, tzinfo=UTC).timestamp()

    index_print("ETH", "3499.99", datetime.fromtimestamp(t0, UTC))
    assert watcher.drain() == 0
    index_print("ETH", "3500.00", datetime.fromtimestamp(t0 + 1, UTC))
    assert watcher.drain() == 1
    index_print("ETH", "3600.00", datetime.fromtimestamp(t0 + 30, UTC))  # within the 60 s cooldown
    assert watcher.drain() == 0
    index_print("ETH", "3600.00", datetime.fromtimestamp(t0 + 61, UTC))
    assert watcher.drain() == 1
    alert.refresh_from_db()
    assert alert.status == PriceAlertStatus.ACTIVE and alert.fire_count == 2
    assert Notification.objects.filter(user=trader, kind="price_alert").count() == 2

    # a second evaluator (a restarted process, or two running) fed the same tick again
    # finds the alert fired at that time: no second message
    other = AlertWatcher(cooldown=60).listen()
    try:
        other.drain()
        index_print("ETH", "3600.00", datetime.fromtimestamp(t0 + 61, UTC))
        assert other.drain() == 0
        assert watcher.drain() == 0
    finally:
        other.close()
    assert Notification.objects.filter(user=trader, kind="price_alert").count() == 2


def test_firing_rechecks_the_row_so_a_redelivered_firing_tells_once(markets):  # noqa: F811
    from notifications import alerts as core

    trader = trader_()
    row = price_alert_create(
        user=trader, symbol="index:BTC", condition="change_pct", value="-5", window="5m", frequency="once_per_minute"
    )
    alert = core.Alert(row.pk, row.symbol, row.condition, row.value, row.frequency, row.window)
    at = datetime(2026, 12, 6, 6, 0, 30, tzinfo=UTC).timestamp()
    firing = core.Firing(alert, D("61000"), at, D("-6.1"))
    assert len(alerts_fire([firing], cooldown=60)) == 1
    assert alerts_fire([firing], cooldown=60) == []  # the same minute
    later = core.Firing(alert, D("60000"), at + 30, D("-7"))  # the next minute
    assert len(alerts_fire([later], cooldown=60)) == 1
    notes = Notification.objects.filter(user=trader).order_by("id")
    assert [n.data["change_pct"] for n in notes] == ["-6.1", "-7"]
    assert "moved -6.1% in 5m" in notes[0].title


def test_after_a_start_index_moves_are_measured_from_the_stored_prints_and_candles(watcher):
    trader = trader_()
    rise = price_alert_create(
        user=trader, symbol="index:ETH", condition="change_pct", value="5", window="5m", frequency="once"
    )
    fall = price_alert_create(
        user=trader, symbol="index:ETH", condition="change_pct", value="-10", window="24h", frequency="once"
    )
    spot = price_alert_create(
        user=trader, symbol="ETH-USDT", condition="change_pct", value="1", window="5m", frequency="once"
    )
    now = time.time()
    # what the feed stored before this process started: a print 5.5 minutes ago, and the
    # index's 1-minute candle of a day ago
    IndexPrint.objects.create(underlying="ETH", ts=_at(now - 330), price=D("3400"), stale=False, sources={})
    day_ago = _at(now - 86400 - 90)
    Candle.objects.create(
        symbol="ETH-USDT", source="index", interval="1m", open_time=day_ago, open=4000, high=4000, low=4000, close=4000
    )
    watcher.drain()  # loads the alerts and the stored history

    index_print("ETH", "3570.00", _at(now))  # +5 % in 5 minutes, -10.75 % in a day
    assert watcher.drain() == 2
    notes = {n.data["alert_id"]: n.data for n in Notification.objects.filter(user=trader)}
    assert notes[rise.pk]["change_pct"] == "5" and notes[fall.pk]["change_pct"] == "-10.75"
    assert spot.pk not in notes  # a spot pair's move is measured from the trades this process saw


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_the_limit_holds_when_a_trader_creates_alerts_at_the_same_moment(markets, settings):  # noqa: F811
    import threading

    from django.db import connection

    from notifications.alert_services import AlertLimitReached

    settings.PRICE_ALERTS_MAX_ACTIVE = 1
    trader = trader_()
    start, outcomes = threading.Barrier(4), []

    def create(n):
        try:
            start.wait()
            price_alert_create(
                user=trader, symbol="BTC-USDT", condition="price_above", value=f"{70000 + n}", frequency="once"
            )
            outcomes.append("created")
        except AlertLimitReached:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["created", "refused", "refused", "refused"]
    assert PriceAlert.objects.filter(user=trader, status=PriceAlertStatus.ACTIVE).count() == 1
