"""GET /api/v1/statements: opening and closing balances (the ledger's), what moved them, fees,
option activity and PnL, as JSON, CSV (parsed back with the csv module) and PDF (opened with
pypdf and its text read); a period in the past closes at the ledger's balance then; bad input
refused."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from pypdf import PdfReader

from ledger.selectors import balances_for
from marketdata.services import instruments_sync
from orders.spot.models import SpotTrade, VenueOrder
from portfolio import selectors, statements
from tests.orders.conftest import INDEX, print_index
from tests.orders.spot.conftest import client_for
from tests.portfolio import trading_world
from tests.portfolio.report_helpers import balance_at, closes, days_from, deposit, moment, trader, withdraw

D = Decimal


@pytest.fixture
def markets(db):
    for underlying, price in INDEX.items():
        print_index(underlying, price)
    instruments_sync(index_prices=INDEX)


@pytest.fixture
def world(settings, markets, eager_tasks):
    started = timezone.now() - timedelta(seconds=1)
    built = trading_world.build(settings)
    built["start"] = started
    return built


def get(user, **params):
    return client_for(user).get("/api/v1/statements", params)


def read_csv(text: str) -> dict:
    """A statement CSV read back with the csv module: the heading as a dict, each section
    (its name alone on a line, then its header and rows) as a list of dicts."""
    heading, sections, current, header = {}, {}, None, None
    for line in csv.reader(io.StringIO(text)):
        if not line:
            current = header = None
        elif current is None and len(line) == 1:
            current, sections[line[0]] = line[0], []
        elif current is not None and header is None:
            header = line
        elif current is not None:
            sections[current].append(dict(zip(header, line)))
        else:
            heading[line[0]] = line[1]
    return {"heading": heading, **sections}


@pytest.mark.django_db(transaction=True)
def test_the_statement_to_date_closes_at_the_ledgers_balances(world):
    bob = world["bob"]
    response = get(bob, start=world["start"].isoformat())
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    ledger = {b.asset: b.total for b in balances_for(user=bob)}
    assert {b["asset"]: D(b["closing"]) for b in body["balances"]} == ledger
    assert {b["asset"]: D(b["opening"]) for b in body["balances"]} == {"USDT": 0, "BTC": 0, "ETH": 0}
    for line in body["movements"]:  # opening + what moved it = closing, nothing unexplained
        assert D(line["other"]) == 0, line
        moved = (
            D(line["deposits"])
            - D(line["withdrawals"])
            - D(line["withdrawal_fees"])
            + D(line["trades_in"])
            - D(line["trades_out"])
            - D(line["trading_fees"])
            + D(line["options_in"])
            - D(line["options_out"])
        )
        assert moved == ledger[line["asset"]]
    # fees: the book fills' taker fees, the venue's, the withdrawal's
    book_btc = sum(t.taker_fee for t in SpotTrade.objects.filter(taker_user=bob, taker_side="buy"))
    book_usdt = sum(t.taker_fee for t in SpotTrade.objects.filter(taker_user=bob, taker_side="sell"))
    venue = sum(v.fee for v in VenueOrder.objects.filter(user=bob))
    fees = {f["asset"]: f for f in body["fees"]}
    assert D(fees["BTC"]["trading"]) == book_btc + venue and D(fees["USDT"]["trading"]) == book_usdt
    assert (D(fees["ETH"]["withdrawal"]), D(fees["ETH"]["total"])) == (D("0.003"), D("0.003"))
    assert [t["kind"] for t in body["options"]] == ["option_buy", "option_sell"]
    assert len(body["trades"]) == 5 and len(body["transfers"]) == 4
    # PnL: the portfolio's own figures
    pnl = selectors.pnl_of(user=bob, start=world["start"], end=timezone.now(), method="fifo")
    assert D(body["realized_pnl_usdt"]) == pnl.total_usdt
    live = selectors.portfolio_of(user=bob, method="fifo")
    assert D(body["unrealized_pnl_usdt"]) == live.unrealized_pnl_usdt
    assert body["method"] == "fifo" and body["email"] == bob.email


@pytest.mark.django_db(transaction=True)
def test_the_csv_parses_and_says_the_same(world):
    bob = world["bob"]
    json_body = get(bob, start=world["start"].isoformat(), method="average").json()
    response = get(bob, start=world["start"].isoformat(), format="csv", method="average")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="statement-')
    parsed = read_csv(response.content.decode())
    assert parsed["heading"]["statement"] == bob.email and parsed["heading"]["method"] == "average"
    ledger = {b.asset: b.total for b in balances_for(user=bob)}
    assert {row["asset"]: D(row["closing"]) for row in parsed["balances"]} == ledger
    assert [row["reference"] for row in parsed["trades"]] == [t["reference"] for t in json_body["trades"]]
    assert {row["asset"]: D(row["other"]) for row in parsed["movements"]} == {"USDT": 0, "BTC": 0, "ETH": 0}
    pnl = {(row["kind"], row["asset"]): D(row["usdt"]) for row in parsed["pnl"]}
    assert pnl[("realized", "total")] == D(json_body["realized_pnl_usdt"])
    assert pnl[("unrealized", "total")] == D(json_body["unrealized_pnl_usdt"])
    assert len(parsed["options"]) == 2 and parsed["deposits_withdrawals"][-1]["type"] == "withdrawal"


@pytest.mark.django_db(transaction=True)
def test_the_pdf_opens_and_shows_the_balances(world):
    bob = world["bob"]
    response = get(bob, start=world["start"].isoformat(), format="pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "account statement" in text and bob.email in text
    for balance in balances_for(user=bob):
        assert statements.amount_text(balance.asset, balance.total) in text
    for heading in ("Balances", "Trades", "Deposits and withdrawals", "Option activity", "Fees", "Profit and loss"):
        assert heading in text
    assert "spot_trade:BTC-USDT" in text and "option_order:" in text


@pytest.mark.django_db
def test_a_past_period_closes_at_the_ledger_then(db):
    today = timezone.now().date()
    d0, d1, d2 = days_from(today - timedelta(days=10), 3)
    closes("BTC", {d0: 60000, d1: 62000, d2: 65000})
    closes("ETH", {d0: 3000, d1: 3000, d2: 3000})
    print_index("BTC", D(70000))
    print_index("ETH", D(3000))
    alice = trader()
    deposit(alice, "USDT", "1000", moment(d0, 9))
    deposit(alice, "BTC", "1", moment(d0, 23, 59, 30))  # at d0's close: 60000
    withdraw(alice, "USDT", "100", moment(d1, 12))
    deposit(alice, "BTC", "0.5", moment(d2, 23, 59, 30))  # after the period
    start, end = moment(d1, 0), moment(d2, 0)
    body = get(alice, start=d1.isoformat(), end=d2.isoformat()).json()
    assert (body["start"], body["end"]) == (f"{d1}T00:00:00Z", f"{d2}T00:00:00Z")
    balances = {b["asset"]: b for b in body["balances"]}
    for asset in ("USDT", "BTC", "ETH"):
        assert D(balances[asset]["opening"]) == balance_at(alice, asset, start)
        assert D(balances[asset]["closing"]) == balance_at(alice, asset, end)
    assert D(balances["USDT"]["closing"]) == D("899") and D(balances["BTC"]["closing"]) == 1
    assert D(balances["BTC"]["closing_price_usdt"]) == 62000  # d1's close
    # unrealized at the end, replayed to then: 1 BTC bought at 60000 worth 62000 then
    assert D(body["unrealized_pnl_usdt"]) == D("2000") and body["unrealized_by_asset"] == {"BTC": "2000.000000"}
    assert D(body["realized_pnl_usdt"]) == D(-1)  # the withdrawal fee
    assert [t["kind"] for t in body["transfers"]] == ["withdrawal"]


@pytest.mark.django_db
def test_bad_input_is_refused_in_the_error_format(user):
    future = (timezone.now() + timedelta(days=3)).date().isoformat()
    for params, field in (
        ({"format": "xls"}, "format"),
        ({"format": "koinly"}, "format"),
        ({"method": "lifo"}, "method"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ({"start": "2026-01-01", "end": "2026-01-01"}, "end"),
        ({"start": "2020-01-01", "end": "2025-06-01"}, "start"),
        ({"start": future}, "end"),
        ({"start": "01/02/2026"}, "start"),
    ):
        response = get(user, **params)
        assert response.status_code == 400, (params, response.content)
        body = response.json()
        assert body["error"]["code"] == "validation_error" and field in body["error"]["fields"], (params, body)
    assert client_for(None).get("/api/v1/statements").status_code == 401
