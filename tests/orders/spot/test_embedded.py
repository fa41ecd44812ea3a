"""The embedded mode end to end: SQLite, the engine runners as threads of the process."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_orders_meet_in_the_embedded_engine_thread(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(SQLITE_PATH=str(tmp_path / "embedded.sqlite3"), EMBEDDED_WORKERS="1", DEBUG="0", HTTPS="0")
    result = subprocess.run(
        [sys.executable, str(HERE / "embedded_flow.py")], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert (seen["taker"], seen["maker"], Decimal(seen["maker_filled"])) == ("filled", "cancelled", Decimal("0.04"))
    assert Decimal(seen["buyer_btc"]) == Decimal("0.04") - Decimal("0.00008")  # less the 0.2% taker fee
    assert Decimal(seen["buyer_usdt"]) == Decimal("10000") - Decimal("2600")
    assert Decimal(seen["seller_btc"]) == Decimal("0.96") and Decimal(seen["seller_btc_held"]) == 0
    assert seen["last"] == "65000.00"
    assert seen["books_ok"] is True
