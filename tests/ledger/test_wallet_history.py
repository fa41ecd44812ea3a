"""The wallet's history reads as a trader expects (issue 18, defect 4): labels instead of
ledger codes, signed amounts, a limit order's hold as well as its release, and a link to the
order; the balances at each asset's display places (defect 3), times in one format (defect 5)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from accounts.preferences import user_settings_update
from ledger.history import history_rows, label_for, reference_text
from ledger.selectors import history_for
from orders.links import transfer_links
from orders.spot.services import order_request, spot_order_cancel, spot_order_place
from tests.orders.spot.conftest import Engine, funded_trader, markets  # noqa: F401  (fixture)

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


def _rows(html: str) -> list[dict]:
    rows = []
    for attrs, body in re.findall(r'<tr (data-code="[^"]*"[^>]*)>(.*?)</tr>', html, re.S):
        cells = dict(re.findall(r'data-field="(\w+)">(.*?)</td>', body, re.S))
        row = dict(re.findall(r'data-(\w+)="([^"]*)"', attrs))
        row.update({k: re.sub(r"<[^>]+>", "", v).strip() for k, v in cells.items()})
        row["href"] = (re.search(r'data-field="reference"><a href="([^"]+)"', body) or [None, ""])[1]
        row["time"] = re.search(r"<time [^>]*>([^<]*)</time>", body).group(1)
        rows.append(row)
    return rows


def test_a_cancelled_limit_orders_hold_and_release_with_labels_signs_and_a_link(markets):  # noqa: F811
    trader = funded_trader(usdt="24609.156647", btc="8")
    engine = Engine("BTC-USDT")
    order, _ = spot_order_place(
        user=trader,
        request=order_request(symbol="BTC-USDT", side="buy", type="limit", price="60000.00", quantity="0.01"),
    )
    engine.run()
    spot_order_cancel(user=trader, order_id=order.pk, wait=0)
    engine.run()

    client = Client()
    client.force_login(trader)
    html = client.get("/wallet/").content.decode()
    rows = _rows(html)
    by_kind = {row["kind"]: row for row in rows if row["code"].startswith("spot")}

    # the hold is listed (it was hidden once resolved) and says it was released
    hold = by_kind["pending"]
    assert hold["label"] == "Order hold" and hold["status"] == "released"
    assert hold["amount"] == "−600.00"
    release = by_kind["void_pending"]
    assert release["label"] == "Order hold released" and release["amount"] == "+600.00"
    # both link to the order on its market page, named as an order, not a ledger reference
    for row in (hold, release):
        assert row["href"] == f"/markets/BTC-USDT/?order={order.pk}"
        assert row["reference"] == f"Spot order #{order.pk}"
    # the deposits: a label and a sign, at the asset's display places
    deposits = [row for row in rows if row["code"] == "deposit"]
    assert sorted(row["amount"] for row in deposits) == ["+24,609.16", "+8.00"]
    assert {row["label"] for row in deposits} == {"Deposit"}
    assert "Spot_" not in html and "spot_order:" not in html
    # balances at display places: not 24609.15664700, 0 and 8
    assert re.search(r'data-asset="USDT">.*?data-field="available">24,609.16<', html, re.S)
    assert re.search(r'data-asset="ETH">.*?data-field="total">0.00<', html, re.S)
    assert re.search(r'data-asset="BTC">.*?data-field="total">8.00<', html, re.S)
    # one date format, UTC by default and named
    assert all(re.fullmatch(r"\d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d UTC", row["time"]) for row in rows)

    # in the trader's zone once they choose one
    user_settings_update(user=trader, timezone="Asia/Kolkata")
    rows = _rows(client.get("/wallet/").content.decode())
    assert all(row["time"].endswith(" UTC+5:30") for row in rows)


def test_a_filled_orders_hold_is_used_and_the_fill_is_signed(markets):  # noqa: F811
    seller, buyer = funded_trader(), funded_trader()
    engine = Engine("BTC-USDT")
    for user, side in ((seller, "sell"), (buyer, "buy")):
        spot_order_place(
            user=user,
            request=order_request(symbol="BTC-USDT", side=side, type="limit", price="65000.00", quantity="0.1"),
        )
        engine.run()
    rows = history_rows(history_for(user=buyer))
    hold = next(row for row in rows if row.kind == "pending")
    assert (hold.label, hold.status, hold.signed) == ("Order hold", "used", D("-6500"))
    fills = {row.asset: row for row in rows if row.code == "spot_fill"}
    assert fills["USDT"].label == "Spot fill" and fills["USDT"].signed == D("-6500")
    assert fills["BTC"].signed > 0 and fills["BTC"].link.startswith("/markets/BTC-USDT/?order=")


def test_labels_and_references_for_every_kind_of_movement(db):
    assert label_for("option_open", "posted") == "Option bought"
    assert label_for("option_close", "posted") == "Option sold"
    assert label_for("withdrawal", "pending") == "Withdrawal hold"
    assert label_for("withdrawal", "void_pending") == "Withdrawal hold released"
    assert label_for("withdrawal", "post_pending") == "Withdrawal"
    assert label_for("spot_fee", "posted") == "Fee"
    assert label_for("settlement_step2", "posted") == "Settlement step2"
    assert reference_text("option_order:5") == "Option order #5"
    assert reference_text("0xabc") == "0xabc"
    assert transfer_links(references={"option_order:5", "spot_order:999999", "deposit-tx"}) == {
        "option_order:5": "/options/#option-order-5"
    }
