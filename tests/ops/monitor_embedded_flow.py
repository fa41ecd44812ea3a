"""Run by test_monitor.py in a child process in the embedded mode (SQLite, in-process
workers): the monitor thread probes beside the beat and feed threads. Prints one JSON line
with the checks' states and the incidents."""

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
os.environ["MONITOR_CHECKS"] = "database,redis,celery,beat,feed,settlement"

from tests.processes import embedded_setup

embedded_setup({"BTC": Decimal("64900"), "ETH": Decimal("3400")})

from ops.models import CheckState, Heartbeat, Incident  # noqa: E402
from trading import workers  # noqa: E402

for name in list(workers._registry):
    if name not in ("monitor", "beat", "feed"):
        workers._registry.pop(name)
workers.start_all()
deadline = time.monotonic() + 40
while time.monotonic() < deadline and not (
    Heartbeat.objects.exists() and CheckState.objects.filter(successes__gte=3).count() == 6
):
    time.sleep(0.5)
print(
    json.dumps(
        {
            "checks": {row.name: [row.status, row.successes] for row in CheckState.objects.all()},
            "incidents": list(Incident.objects.values_list("check_name", flat=True)),
            "heartbeat": Heartbeat.objects.filter(name="beat").exists(),
        }
    )
)
