"""Run by test_embedded.py in a child process in the embedded mode (SQLite, eager Celery):
a trader buys and closes an option through the counter, the relay thread settles both, and
the books balance. Prints one JSON line with what it saw."""

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)

from django.utils import timezone  # noqa: E402

from accounts.models import KycProfile, KycStatus, User  # noqa: E402
from ledger.selectors import balances_for, ledger_recompute  # noqa: E402
from ledger.services.funding import deposit_credit  # noqa: E402
from marketdata.models import IndexPrint  # noqa: E402
from marketdata.services import instruments_sync  # noqa: E402
from orders.models import OptionOrder  # noqa: E402
from orders.options.services import options_order_place, options_quote  # noqa: E402
from trading import workers  # noqa: E402

index = {"BTC": Decimal("65000"), "ETH": Decimal("3400")}
for underlying, price in index.items():
    IndexPrint.objects.create(underlying=underlying, ts=timezone.now(), price=price, sources={})
instruments_sync(index_prices=index)
user = User.objects.create_user(email="embedded@example.test", password="x-embedded-Pass-1")
KycProfile.objects.update_or_create(user=user, defaults={"status": KycStatus.APPROVED})
deposit_credit(user=user, asset="USDT", amount=Decimal("1000"), txid="embedded-1")

from marketdata.models import Instrument, InstrumentKind  # noqa: E402

series = (
    Instrument.objects.filter(
        kind=InstrumentKind.OPTION, base="BTC", option_type="C", expiry__gt=timezone.now() + timezone.timedelta(days=2)
    )
    .order_by("expiry", "strike")
    .first()
    .symbol
)
workers.register("relay", workers._registry["relay"])  # the relay thread, as daphne starts it
workers.start_all()
buy = options_quote(user=user, series=series, side="buy", contracts="0.10")
bought, _ = options_order_place(user=user, quote_id=str(buy.pk))
sell = options_quote(user=user, series=series, side="sell", contracts="0.10")
sold, _ = options_order_place(user=user, quote_id=str(sell.pk))
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    states = set(OptionOrder.objects.values_list("settlement_state", flat=True))
    if states == {"settled"}:
        break
    time.sleep(0.2)
usdt = next(b for b in balances_for(user=user) if b.asset == "USDT")
print(
    json.dumps(
        {
            "states": sorted(states),
            "usdt": str(usdt.available),
            "paid": str(bought.total_usdt),
            "received": str(sold.total_usdt),
            "books_ok": ledger_recompute().ok,
        }
    )
)
