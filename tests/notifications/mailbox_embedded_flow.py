"""Run by test_embedded_mail.py in a child process in the embedded mode, as ``make run`` runs
the platform (SQLite, in-process workers, the settings' defaults: console email backend,
demo mode): the demo trader takes coins from the faucet, the embedded beat's sweep sends the
deposit's email, which comes out on the console (this process's standard output) and is
listed on the trader's mailbox page. Prints one JSON line with what it saw."""

import io
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")


class Tee(io.TextIOBase):
    """Standard output as it is, kept as well: what the console backend printed."""

    def __init__(self, stream):
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text):
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


console = sys.stdout = Tee(sys.stdout)

from tests.processes import embedded_setup  # noqa: E402

embedded_setup({"BTC": Decimal("64900"), "ETH": Decimal("3400")})

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.demo import DEMO_TRADER  # noqa: E402
from accounts.models import User  # noqa: E402
from notifications.models import Delivery, DeliveryStatus  # noqa: E402
from trading import workers  # noqa: E402

call_command("seed_demo")
for name in list(workers._registry):
    if name != "beat":
        workers._registry.pop(name)  # the embedded beat, whose sweep sends the mail, is this flow's worker
workers.start_all()

# Pages here are served without collectstatic's manifest (make run collects; this test does not).
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
trader = User.objects.get(email=DEMO_TRADER)
client = Client(SERVER_NAME="127.0.0.1")
client.force_login(trader)
faucet = client.post("/api/v1/wallet/faucet", {"asset": "BTC"}, content_type="application/json")

# The trader's deposits (seed_demo's and the faucet's): each is emailed.
deadline = time.monotonic() + 30
sent = Delivery.objects.filter(notification__user=trader, notification__kind="deposit_credited", channel="email")
while time.monotonic() < deadline and sent.exclude(status=DeliveryStatus.SENT).exists():
    time.sleep(0.2)
mailbox = client.get("/notifications/mailbox/")
print(
    json.dumps(
        {
            "email_backend": settings.EMAIL_BACKEND,
            "demo_mode": settings.DEMO_MODE,
            "faucet": faucet.status_code,
            "deliveries": list(sent.order_by("id").values_list("notification__title", "status")),
            "console": console.kept.getvalue(),
            "mailbox_status": mailbox.status_code,
            "mailbox": mailbox.content.decode(),
        }
    ),
    file=console.stream,
)
