"""Run by test_metrics.py in a child process on the test's PostgreSQL database, with every
worker a thread as in the embedded mode (engines, relay, feed, market maker, beat, monitor;
no Redis: tasks run in-process): a spot order goes through the API, an option order through
the counter, a websocket client connects to the market stream, the monitor runs its rounds;
then ``GET /metrics`` is scraped. Prints one JSON line with the exposition text."""

import asyncio
import json
import os
import sys
import time
import uuid
from decimal import Decimal
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
# the checks that answer in the embedded mode without outside servers (no web URL to probe)
os.environ["MONITOR_CHECKS"] = "database,redis,beat,relay,engine,feed,marketmaker,settlement"

from tests.processes import embedded_setup

embedded_setup({"BTC": Decimal("65000"), "ETH": Decimal("3400")})

from channels.testing import WebsocketCommunicator  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import KycProfile, KycStatus, User  # noqa: E402
from ledger.services.funding import deposit_credit  # noqa: E402
from marketdata.models import Instrument, InstrumentKind  # noqa: E402
from ops.models import CheckState, Heartbeat  # noqa: E402
from orders import demo  # noqa: E402
from orders.models import OptionOrder, SpotOrder  # noqa: E402
from orders.options.services import options_order_place, options_quote  # noqa: E402
from trading.models import Lease  # noqa: E402

demo.seed(StringIO())  # the market maker's user and funds
run = uuid.uuid4().hex[:8]
trader = User.objects.create_user(email=f"metrics-{run}@example.test", password="x-embedded-Pass-1")
KycProfile.objects.update_or_create(user=trader, defaults={"status": KycStatus.APPROVED})
deposit_credit(user=trader, asset="USDT", amount=Decimal("100000"), txid=f"metrics-usdt-{run}")

from trading import workers  # noqa: E402
from trading.asgi import application  # noqa: E402

workers.start_all()  # what daphne does in the embedded mode

http = Client(HTTP_HOST="127.0.0.1")
http.force_login(trader)
placed = http.post(
    "/api/v1/orders",
    {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "60000.00", "quantity": "0.01"},
    content_type="application/json",
)
assert placed.status_code in (200, 201, 202), placed.content
series = (
    Instrument.objects.filter(
        kind=InstrumentKind.OPTION, base="BTC", option_type="C", expiry__gt=timezone.now() + timezone.timedelta(days=2)
    )
    .order_by("expiry", "strike")
    .first()
    .symbol
)
quote = options_quote(user=trader, series=series, side="buy", contracts="0.10")
options_order_place(user=trader, quote_id=str(quote.pk))


def waiting_for() -> list[str]:
    leases = set(Lease.objects.filter(expires_at__gt=timezone.now()).exclude(holder="").values_list("name", flat=True))
    missing = sorted({"relay", "feed", "marketmaker", "monitor", "engine:BTC-USDT"} - leases)
    if SpotOrder.objects.filter(user=trader, status="new").exists():
        missing.append("the engine to take the order")
    if OptionOrder.objects.filter(user=trader).exclude(settlement_state="settled").exists():
        missing.append("the option order's settlement (the relay's lag)")
    if not Heartbeat.objects.filter(name="beat").exists():
        missing.append("beat's heartbeat")
    if not CheckState.objects.filter(successes__gte=1).exists():
        missing.append("a monitor round")
    return missing


def ready() -> bool:
    return not waiting_for()


started = time.monotonic()
while time.monotonic() - started < 60 and not ready():
    time.sleep(0.5)
waited = time.monotonic() - started


async def scrape_while_connected() -> tuple[str, bool]:
    socket = WebsocketCommunicator(application, "/ws/market/", headers=[(b"origin", b"http://127.0.0.1")])
    connected, _ = await socket.connect()
    try:
        from asgiref.sync import sync_to_async

        response = await sync_to_async(http.get)("/metrics")
        return response.content.decode(), connected
    finally:
        await socket.disconnect()


text, connected = asyncio.run(scrape_while_connected())
after = http.get("/metrics").content.decode()
print(
    json.dumps(
        {
            "ready": ready(),
            "waiting_for": waiting_for(),
            "waited": round(waited, 1),
            "connected": connected,
            "metrics": text,
            "after_disconnect": [line for line in after.splitlines() if line.startswith("websocket_clients{")],
        }
    )
)
