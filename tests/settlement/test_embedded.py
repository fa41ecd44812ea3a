"""The embedded mode end to end: SQLite, the relay as a thread, tasks run in-process."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_an_option_bought_and_closed_in_embedded_mode_is_settled(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(SQLITE_PATH=str(tmp_path / "embedded.sqlite3"), EMBEDDED_WORKERS="1", DEBUG="0", HTTPS="0")
    result = subprocess.run(
        [sys.executable, str(HERE / "embedded_flow.py")], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["states"] == ["settled"]
    assert seen["books_ok"] is True
    # The trader paid the ask and got the bid back, on SQLite's arithmetic too.
    assert Decimal(seen["usdt"]) == Decimal("1000") - Decimal(seen["paid"]) + Decimal(seen["received"])
    assert Decimal(seen["paid"]) > Decimal(seen["received"]) > 0
