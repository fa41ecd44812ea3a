"""The embedded mode end to end: SQLite, the engine runners as threads of the process."""

from decimal import Decimal
from pathlib import Path

import pytest

from tests.processes import run_embedded

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_orders_meet_in_the_embedded_engine_thread(tmp_path):
    seen = run_embedded(HERE / "embedded_flow.py", tmp_path)
    assert (seen["taker"], seen["maker"], Decimal(seen["maker_filled"])) == ("filled", "cancelled", Decimal("0.04"))
    assert Decimal(seen["buyer_btc"]) == Decimal("0.04") - Decimal("0.00008")  # less the 0.2% taker fee
    assert Decimal(seen["buyer_usdt"]) == Decimal("10000") - Decimal("2600")
    assert Decimal(seen["seller_btc"]) == Decimal("0.96") and Decimal(seen["seller_btc_held"]) == 0
    assert seen["amend"][:2] == ["applied", True] and Decimal(seen["amend"][2]) == Decimal("0.04")
    assert seen["last"] == "65000.00"
    assert seen["books_ok"] is True
