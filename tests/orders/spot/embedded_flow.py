"""Run by test_embedded.py in a child process in the embedded mode (SQLite, in-process
workers): two traders' orders meet in the BTC-USDT engine thread, and the books balance.
Prints one JSON line with what it saw."""

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")

from tests.processes import embedded_setup

embedded_setup({"BTC": Decimal("65000"), "ETH": Decimal("3400")})

from accounts.models import User  # noqa: E402
from ledger.selectors import balance_of, ledger_recompute  # noqa: E402
from ledger.services.funding import deposit_credit  # noqa: E402
from marketdata.selectors import spot_market  # noqa: E402
from orders.models import SpotOrder  # noqa: E402
from orders.spot.services import order_request, spot_order_amend, spot_order_cancel, spot_order_place  # noqa: E402
from trading import workers  # noqa: E402

seller = User.objects.create_user(email="seller@example.test", password="x-embedded-Pass-1")
buyer = User.objects.create_user(email="buyer@example.test", password="x-embedded-Pass-1")
deposit_credit(user=seller, asset="BTC", amount=Decimal("1"), txid="embedded-btc")
deposit_credit(user=buyer, asset="USDT", amount=Decimal("10000"), txid="embedded-usdt")
for name in list(workers._registry):
    if not name.startswith("engine:"):
        workers._registry.pop(name)  # only the engine threads: this flow is about them
workers.start_all()

resting, _ = spot_order_place(
    user=seller,
    request=order_request(
        **{"symbol": "BTC-USDT", "side": "sell", "type": "limit", "price": "65000.00", "quantity": "0.1"}
    ),
)
taking, _ = spot_order_place(
    user=buyer, request=order_request(**{"symbol": "BTC-USDT", "side": "buy", "type": "market", "quantity": "0.04"})
)
deadline = time.monotonic() + 20
while time.monotonic() < deadline and SpotOrder.objects.get(pk=taking.pk).status != "filled":
    time.sleep(0.05)
# the rest of the resting sell shrinks (0.1 -> 0.08 in total, 0.04 of it filled): its place is kept
amended, _ = spot_order_amend(user=seller, order_id=resting.pk, quantity="0.08", wait=10)
amend_held = balance_of(user=seller, asset="BTC").held
cancelled = spot_order_cancel(user=seller, order_id=resting.pk, wait=10)
print(
    json.dumps(
        {
            "taker": SpotOrder.objects.get(pk=taking.pk).status,
            "maker": cancelled.status,
            "amend": [amended.status, amended.priority_kept, str(amend_held)],
            "maker_filled": str(cancelled.filled_quantity),
            "buyer_btc": str(balance_of(user=buyer, asset="BTC").available),
            "buyer_usdt": str(balance_of(user=buyer, asset="USDT").available),
            "seller_btc": str(balance_of(user=seller, asset="BTC").available),
            "seller_btc_held": str(balance_of(user=seller, asset="BTC").held),
            "last": spot_market("BTC-USDT")["last"],
            "books_ok": ledger_recompute().ok,
        }
    )
)
