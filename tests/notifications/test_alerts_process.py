"""Price alerts in their real processes: stack mode's ``run_alerts`` hears an engine's trades
over the channel layer (Redis) and fires; embedded mode's watcher thread hears the engine
thread beside it."""

import os
import time
from decimal import Decimal
from pathlib import Path

import pytest

from notifications.alert_services import price_alert_create
from notifications.models import Notification, NotificationPreference, PriceAlert, PriceAlertStatus
from orders.spot.services import order_request, spot_order_place
from tests.factories import UserFactory
from tests.orders.spot.conftest import Engine, funded_trader, markets  # noqa: F401  (fixture)
from tests.processes import ROOT, ManagePy, run_embedded, test_database_url

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, *, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s\n{log()}")


def trade(price: str):
    seller, buyer = funded_trader(), funded_trader()
    for user, side in ((seller, "sell"), (buyer, "buy")):
        spot_order_place(
            user=user,
            request=order_request(symbol="BTC-USDT", side=side, type="limit", price=price, quantity="0.01"),
        )


@pytest.mark.slow
def test_run_alerts_fires_on_an_engine_trade_heard_over_the_channel_layer(markets, tmp_path):  # noqa: F811
    trader = UserFactory()
    NotificationPreference.objects.create(user=trader, kind="price_alert", channel="email", enabled=False)
    loaded = price_alert_create(
        user=trader, symbol="BTC-USDT", condition="price_above", value="65100.00", frequency="once"
    )
    env = {**os.environ, "DATABASE_URL": test_database_url(), "LOG_LEVEL": "WARNING"}
    child = ManagePy(["run_alerts"], env=env, log_path=tmp_path / "run_alerts.log", cwd=ROOT)
    try:
        wait_for(lambda: "watching 1 active" in child.log(), timeout=60, what="run_alerts started", log=child.log)
        later = price_alert_create(  # created while it runs: it reads it on the change signal
            user=trader, symbol="BTC-USDT", condition="price_below", value="64000.00", frequency="once"
        )
        time.sleep(0.5)
        engine = Engine("BTC-USDT")
        trade("65100.00")
        engine.run()
        wait_for(
            lambda: Notification.objects.filter(user=trader, dedupe_key=f"price_alert:{loaded.pk}").exists(),
            timeout=30,
            what="the alert loaded at start fired",
            log=child.log,
        )
        trade("64000.00")
        engine.run()
        wait_for(
            lambda: Notification.objects.filter(user=trader, dedupe_key=f"price_alert:{later.pk}").exists(),
            timeout=30,
            what="the alert created while running fired",
            log=child.log,
        )
    finally:
        child.stop()
    assert Notification.objects.filter(user=trader, kind="price_alert").count() == 2
    assert set(PriceAlert.objects.filter(user=trader).values_list("status", flat=True)) == {PriceAlertStatus.TRIGGERED}


@pytest.mark.slow
def test_the_embedded_watcher_thread_fires_on_the_engine_threads_trade(tmp_path):
    seen = run_embedded(HERE / "alerts_embedded_flow.py", tmp_path)
    assert seen["status"] == "triggered"
    assert seen["notifications"] == [["price_alert", "BTC-USDT is at or above 65000", "65000"]]
    assert Decimal(seen["last_fired_price"]) == Decimal("65000")
