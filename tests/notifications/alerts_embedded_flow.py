"""Run by test_alerts_process.py in a child process in the embedded mode (SQLite, in-process
workers): a trade in the BTC-USDT engine thread reaches the price alert thread, which fires
the trader's alert. Prints one JSON line with what it saw."""

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")

from tests.processes import embedded_setup

embedded_setup({"BTC": Decimal("64900"), "ETH": Decimal("3400")})

from accounts.models import User  # noqa: E402
from ledger.services.funding import deposit_credit  # noqa: E402
from notifications.alert_services import price_alert_create  # noqa: E402
from notifications.models import Notification, NotificationPreference, PriceAlert  # noqa: E402
from orders.spot.services import order_request, spot_order_place  # noqa: E402
from trading import workers  # noqa: E402

trader = User.objects.create_user(email="alerts@example.test", password="x-embedded-Pass-1")
NotificationPreference.objects.create(user=trader, kind="price_alert", channel="email", enabled=False)
seller = User.objects.create_user(email="seller@example.test", password="x-embedded-Pass-1")
buyer = User.objects.create_user(email="buyer@example.test", password="x-embedded-Pass-1")
deposit_credit(user=seller, asset="BTC", amount=Decimal("1"), txid="embedded-btc")
deposit_credit(user=buyer, asset="USDT", amount=Decimal("10000"), txid="embedded-usdt")
alert = price_alert_create(user=trader, symbol="BTC-USDT", condition="price_above", value="65000", frequency="once")
for name in list(workers._registry):
    if not (name.startswith("engine:") or name == "price-alerts"):
        workers._registry.pop(name)  # the engine threads and the alert thread: this flow is about them
workers.start_all()
time.sleep(1.0)  # the alert thread loads the alerts

for user, side in ((seller, "sell"), (buyer, "buy")):
    spot_order_place(
        user=user,
        request=order_request(symbol="BTC-USDT", side=side, type="limit", price="65000.00", quantity="0.01"),
    )
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not Notification.objects.filter(user=trader).exists():
    time.sleep(0.1)
alert = PriceAlert.objects.get(pk=alert.pk)
print(
    json.dumps(
        {
            "status": alert.status,
            "last_fired_price": str(alert.last_fired_price),
            "notifications": [[n.kind, n.title, n.data.get("price")] for n in Notification.objects.filter(user=trader)],
        }
    )
)
